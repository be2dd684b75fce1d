using System.Collections.Immutable;

namespace Orleans.KServe.Contracts.Models;

/// <summary>
/// Dynamic batching of one model, in Triton's terms (KServe's <c>batcher</c> maps onto it: <c>maxBatchSize</c>,
/// <c>maxLatency</c> in milliseconds as the queue delay). Durations are microseconds, as Triton users write them.
/// </summary>
[GenerateSerializer, Immutable]
[Alias("Orleans.KServe.Contracts.BatchingSettings")]
public sealed record BatchingSettings
{
    /// <summary>Most rows in one execution; 0 turns batching off.</summary>
    [Id(0)] public int MaxBatchSize { get; init; }

    /// <summary>How long the oldest request may wait for others, µs.</summary>
    [Id(1)] public long MaxQueueDelayMicroseconds { get; init; }

    /// <summary>Batch sizes to form as soon as that many rows wait (ascending).</summary>
    [Id(2)] public ImmutableArray<int> PreferredBatchSizes { get; init; } = ImmutableArray<int>.Empty;

    /// <summary>Most requests waiting; more are refused (RESOURCE_EXHAUSTED). 0 = no limit.</summary>
    [Id(3)] public int MaxQueueSize { get; init; }

    /// <summary>Priority levels (1 is the highest); 0 = no priorities.</summary>
    [Id(4)] public int PriorityLevels { get; init; }

    /// <summary>The level of requests that name none.</summary>
    [Id(5)] public int DefaultPriorityLevel { get; init; }

    /// <summary>How long a request may wait in the queue before it is rejected, µs; 0 = for ever.</summary>
    [Id(6)] public long DefaultQueueTimeoutMicroseconds { get; init; }

    /// <summary>Whether a request's own <c>timeout</c> parameter may replace the default.</summary>
    [Id(7)] public bool AllowTimeoutOverride { get; init; } = true;

    /// <summary>Answer requests in the order they arrived even when executions finish out of order.</summary>
    [Id(8)] public bool PreserveOrdering { get; init; }

    /// <summary>Executions of this model that may run at once (Triton's instance count); 0 = one per executor thread.</summary>
    [Id(9)] public int InstanceCount { get; init; }

    /// <summary>True when requests of this model are batched.</summary>
    public bool Enabled => MaxBatchSize > 0;

    /// <summary>Value equality including the preferred sizes.</summary>
    public bool SameAs(BatchingSettings? other) =>
        other is not null && MaxBatchSize == other.MaxBatchSize && MaxQueueDelayMicroseconds == other.MaxQueueDelayMicroseconds
        && PreferredBatchSizes.SequenceEqual(other.PreferredBatchSizes) && MaxQueueSize == other.MaxQueueSize
        && PriorityLevels == other.PriorityLevels && DefaultPriorityLevel == other.DefaultPriorityLevel
        && DefaultQueueTimeoutMicroseconds == other.DefaultQueueTimeoutMicroseconds && AllowTimeoutOverride == other.AllowTimeoutOverride
        && PreserveOrdering == other.PreserveOrdering && InstanceCount == other.InstanceCount;
}
