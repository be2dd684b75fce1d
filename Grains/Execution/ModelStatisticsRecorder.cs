using System.Collections.Concurrent;
using System.Collections.Immutable;
using System.Diagnostics;
using Orleans.KServe.Contracts.Models;

namespace Orleans.KServe.Grains.Execution;

/// <summary>Thread-safe accumulation of one replica's Triton-style statistics; <see cref="Snapshot"/> reads them.</summary>
public sealed class ModelStatisticsRecorder
{
    private readonly ConcurrentDictionary<long, BatchCounters> _batches = new();
    private Duration _success;
    private Duration _fail;
    private Duration _queue;
    private Duration _input;
    private Duration _infer;
    private Duration _output;
    private long _inferences;
    private long _executions;
    private long _lastInference;

    /// <summary>Records a request that succeeded after <paramref name="totalTicks"/>, carrying <paramref name="inferences"/> rows.</summary>
    public void RecordSuccess(long totalTicks, long inferences)
    {
        _success.Add(totalTicks);
        Interlocked.Add(ref _inferences, inferences);
        Volatile.Write(ref _lastInference, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());
    }

    /// <summary>Records a request that failed after <paramref name="totalTicks"/>.</summary>
    public void RecordFailure(long totalTicks) => _fail.Add(totalTicks);

    /// <summary>Records how long one request waited before its execution began, in Stopwatch ticks.</summary>
    public void RecordQueue(long queueTicks) => _queue.Add(queueTicks);

    /// <summary>Records one execution of batch size <paramref name="batchSize"/>: its three phases, in Stopwatch ticks.</summary>
    public void RecordExecution(long batchSize, long inputTicks, long inferTicks, long outputTicks)
    {
        Interlocked.Increment(ref _executions);
        _input.Add(inputTicks);
        _infer.Add(inferTicks);
        _output.Add(outputTicks);
        var batch = _batches.GetOrAdd(batchSize, static _ => new BatchCounters());
        batch.Input.Add(inputTicks);
        batch.Infer.Add(inferTicks);
        batch.Output.Add(outputTicks);
    }

    /// <summary>The statistics so far.</summary>
    public ModelStatistics Snapshot(string name, string version) => new(
        name,
        version,
        Volatile.Read(ref _lastInference),
        Volatile.Read(ref _inferences),
        Volatile.Read(ref _executions),
        _success.Read(),
        _fail.Read(),
        _queue.Read(),
        _input.Read(),
        _infer.Read(),
        _output.Read(),
        _batches.OrderBy(b => b.Key)
            .Select(b => new BatchStatistics(b.Key, b.Value.Input.Read(), b.Value.Infer.Read(), b.Value.Output.Read()))
            .ToImmutableArray());

    private sealed class BatchCounters
    {
        public Duration Input;
        public Duration Infer;
        public Duration Output;
    }

    private struct Duration
    {
        private long _count;
        private long _ticks;

        public void Add(long ticks)
        {
            Interlocked.Increment(ref _count);
            Interlocked.Add(ref _ticks, ticks);
        }

        public readonly StatisticDuration Read() =>
            new(Volatile.Read(in _count), (long)(Volatile.Read(in _ticks) * (1_000_000_000.0 / Stopwatch.Frequency)));
    }
}
