using System.Collections.Immutable;
using System.Globalization;
using Orleans.KServe.Contracts.Models;
using Orleans.KServe.Contracts.Resources;

namespace Orleans.KServe.Operator.Reconcile;

/// <summary>
/// Reads a component's batching: KServe's <c>batcher</c> (<c>maxBatchSize</c> rows, <c>maxLatency</c> in
/// milliseconds) with Triton's extras as <c>orleans.kserve.io/*</c> annotations (delays and timeouts in
/// microseconds), over the runtime's defaults. Reports every invalid value at once.
/// </summary>
public static class BatchingReader
{
    /// <summary>Annotation: rows that form a batch at once, e.g. <c>4,8</c>.</summary>
    public const string PreferredBatchSizes = InferenceServiceReconciler.AnnotationPrefix + "preferred-batch-sizes";

    /// <summary>Annotation: the queue delay in µs (replaces <c>maxLatency</c>).</summary>
    public const string MaxQueueDelay = InferenceServiceReconciler.AnnotationPrefix + "max-queue-delay-us";

    /// <summary>Annotation: requests that may wait before new ones are refused.</summary>
    public const string MaxQueueSize = InferenceServiceReconciler.AnnotationPrefix + "max-queue-size";

    /// <summary>Annotation: priority levels (1 is the highest).</summary>
    public const string PriorityLevels = InferenceServiceReconciler.AnnotationPrefix + "priority-levels";

    /// <summary>Annotation: the level of requests that name none.</summary>
    public const string DefaultPriorityLevel = InferenceServiceReconciler.AnnotationPrefix + "default-priority-level";

    /// <summary>Annotation: how long a request may wait in the queue, µs (timeout action: reject).</summary>
    public const string DefaultQueueTimeout = InferenceServiceReconciler.AnnotationPrefix + "default-queue-timeout-us";

    /// <summary>Annotation: whether a request's <c>timeout</c> parameter may replace the default.</summary>
    public const string AllowTimeoutOverride = InferenceServiceReconciler.AnnotationPrefix + "allow-timeout-override";

    /// <summary>Annotation: answer in arrival order.</summary>
    public const string PreserveOrdering = InferenceServiceReconciler.AnnotationPrefix + "preserve-ordering";

    /// <summary>Annotation: executions of the model that may run at once.</summary>
    public const string InstanceCount = InferenceServiceReconciler.AnnotationPrefix + "instance-count";

    private static readonly string[] BatchOnly = [PreferredBatchSizes, MaxQueueDelay, MaxQueueSize, PriorityLevels, DefaultPriorityLevel, DefaultQueueTimeout, AllowTimeoutOverride, PreserveOrdering];

    /// <summary>The defaults a runtime gives a <c>batcher</c> that leaves fields out: 32 rows, 5 ms.</summary>
    public static BatchingSettings RuntimeDefaults { get; } = new() { MaxBatchSize = 32, MaxQueueDelayMicroseconds = 5000 };

    /// <summary>Reads the batching of a component; null when it neither batches nor limits its instances.</summary>
    public static BatchingSettings? Read(ComponentSpec component, IReadOnlyDictionary<string, string> annotations, BatchingSettings defaults, out IReadOnlyList<string> errors)
    {
        var problems = new List<string>();
        errors = problems;
        var instances = Int(annotations, InstanceCount, 1, 1024, problems);
        var batcher = component.Batcher;
        if (batcher is null)
        {
            foreach (var key in BatchOnly.Where(annotations.ContainsKey))
            {
                problems.Add($"annotation {key} needs spec.predictor.batcher (with maxBatchSize) to turn batching on");
            }

            return instances is > 0 ? new BatchingSettings { InstanceCount = instances.Value } : null;
        }

        var settings = defaults;
        if (batcher.MaxBatchSize is { } max)
        {
            if (max < 0 || max > 1_000_000)
            {
                problems.Add($"batcher.maxBatchSize must be between 0 (off) and 1000000, not {max}");
            }

            settings = settings with { MaxBatchSize = max };
        }

        if (batcher.MaxLatencyMilliseconds is { } latency)
        {
            if (latency < 0 || latency > 3_600_000)
            {
                problems.Add($"batcher.maxLatency must be between 0 and 3600000 milliseconds, not {latency}");
            }

            settings = settings with { MaxQueueDelayMicroseconds = latency * 1000L };
        }

        if (Long(annotations, MaxQueueDelay, 0, 3_600_000_000, problems) is { } delay)
        {
            settings = settings with { MaxQueueDelayMicroseconds = delay };
        }

        if (annotations.TryGetValue(PreferredBatchSizes, out var preferredText))
        {
            var sizes = preferredText.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
            var parsed = sizes.Select(t => int.TryParse(t, NumberStyles.None, CultureInfo.InvariantCulture, out var v) ? v : -1).ToList();
            if (parsed.Count == 0 || parsed.Any(v => v < 1 || v > settings.MaxBatchSize))
            {
                problems.Add($"annotation {PreferredBatchSizes} must list sizes from 1 to maxBatchSize ({settings.MaxBatchSize}), not '{preferredText}'");
            }
            else
            {
                settings = settings with { PreferredBatchSizes = parsed.Distinct().Order().ToImmutableArray() };
            }
        }

        if (Int(annotations, MaxQueueSize, 1, int.MaxValue, problems) is { } queue)
        {
            settings = settings with { MaxQueueSize = queue };
        }

        if (Int(annotations, PriorityLevels, 1, 1000, problems) is { } levels)
        {
            settings = settings with { PriorityLevels = levels, DefaultPriorityLevel = levels };
        }

        if (Int(annotations, DefaultPriorityLevel, 1, 1000, problems) is { } level)
        {
            if (level > settings.PriorityLevels)
            {
                problems.Add($"annotation {DefaultPriorityLevel} ({level}) must not exceed {PriorityLevels} ({settings.PriorityLevels})");
            }

            settings = settings with { DefaultPriorityLevel = level };
        }

        if (Long(annotations, DefaultQueueTimeout, 0, 3_600_000_000, problems) is { } timeout)
        {
            settings = settings with { DefaultQueueTimeoutMicroseconds = timeout };
        }

        if (Bool(annotations, AllowTimeoutOverride, problems) is { } allow)
        {
            settings = settings with { AllowTimeoutOverride = allow };
        }

        if (Bool(annotations, PreserveOrdering, problems) is { } preserve)
        {
            settings = settings with { PreserveOrdering = preserve };
        }

        if (instances is { } count)
        {
            settings = settings with { InstanceCount = count };
        }

        return settings;
    }

    private static long? Long(IReadOnlyDictionary<string, string> annotations, string key, long min, long max, List<string> problems)
    {
        if (!annotations.TryGetValue(key, out var text))
        {
            return null;
        }

        if (long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var value) && value >= min && value <= max)
        {
            return value;
        }

        problems.Add($"annotation {key} must be an integer from {min} to {max}, not '{text}'");
        return null;
    }

    private static int? Int(IReadOnlyDictionary<string, string> annotations, string key, int min, int max, List<string> problems) =>
        (int?)Long(annotations, key, min, max, problems);

    private static bool? Bool(IReadOnlyDictionary<string, string> annotations, string key, List<string> problems)
    {
        if (!annotations.TryGetValue(key, out var text))
        {
            return null;
        }

        if (bool.TryParse(text, out var value))
        {
            return value;
        }

        problems.Add($"annotation {key} must be true or false, not '{text}'");
        return null;
    }
}
