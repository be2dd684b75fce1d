using System.Collections.Immutable;
using System.Diagnostics;
using Orleans.KServe.Contracts.Inference;
using Orleans.KServe.Contracts.Models;
using Orleans.KServe.Contracts.Serving;
using Orleans.KServe.Contracts.Tensors;
using Orleans.KServe.Grains.Batching;
using Orleans.KServe.Grains.Runtime;
using Orleans.KServe.Grains.Telemetry;

namespace Orleans.KServe.Grains.Execution;

/// <summary>
/// The execution state of one model replica: its runtime, metadata and status, and the inference path itself.
/// Thread-safe. A <see cref="ModelGrain"/> creates and owns it (loading, lifecycle, deactivation); the gateway on
/// the same silo may call <see cref="InferAsync"/> directly through <see cref="LocalModelDirectory"/> to skip the
/// Orleans message, while remote callers come through the grain.
/// </summary>
public sealed class ModelReplica : ILocalModelEndpoint, IDisposable
{
    private readonly InferenceExecutor _executor;
    private readonly InferenceMetrics _metrics;
    private readonly long _inlineThresholdTicks;
    private IModelRuntime? _runtime;
    private ModelMetadata? _metadata;
    private ImmutableArray<string> _allOutputs;
    private bool _batchedFirstDimension;
    private bool _bytesAreText;
    private volatile ModelStatus _status = new(ModelState.Pending);
    private readonly ModelStatisticsRecorder _statistics = new();
    private ModelBatcher? _batcher;
    private SemaphoreSlim? _instances;
    private string? _batchingNote;
    private int _inFlight;
    private long _averageTicks = long.MaxValue;
    private readonly TaskCompletionSource _settled = new(TaskCreationOptions.RunContinuationsAsynchronously);

    // Set when the replica stops serving (retired or unloaded); completed once no call is in progress.
    private TaskCompletionSource? _drained;

    /// <summary>Creates the replica in state Pending.</summary>
    public ModelReplica(ModelKey key, ModelSpec spec, InferenceExecutor executor, InferenceMetrics metrics)
    {
        Key = key;
        Spec = spec;
        _executor = executor;
        _metrics = metrics;
        _inlineThresholdTicks = (long)(executor.Options.InlineThreshold.TotalSeconds * Stopwatch.Frequency);
    }

    /// <summary>The replica's grain key.</summary>
    public ModelKey Key { get; }

    /// <summary>What it loads.</summary>
    public ModelSpec Spec { get; }

    /// <summary>The current status.</summary>
    public ModelStatus Status => _status;

    /// <summary>True while the replica serves requests.</summary>
    public bool IsLoaded => _status.State == ModelState.Loaded;

    /// <summary>Calls in progress.</summary>
    public int InFlight => Volatile.Read(ref _inFlight);

    /// <summary>Completes once the replica has settled: loaded, failed, unloaded or retired.</summary>
    public Task WhenSettled => _settled.Task;

    /// <summary>Marks the replica as loading.</summary>
    public void MarkLoading() => _status = new ModelStatus(ModelState.Loading);

    /// <summary>Installs a loaded runtime; the replica owns it from now on.</summary>
    public void MarkLoaded(IModelRuntime runtime, TimeSpan loadDuration)
    {
        _runtime = runtime;
        _metadata = new ModelMetadata(Spec.Name, [Spec.Version], runtime.Platform, runtime.Inputs, runtime.Outputs);
        _allOutputs = runtime.Outputs.Select(o => o.Name).ToImmutableArray();
        _bytesAreText = runtime.BytesAreText;
        _batchedFirstDimension = runtime.Inputs.Length > 0 && runtime.Inputs[0].Shape.Length > 0 && runtime.Inputs[0].Shape[0] < 0;
        var batching = Spec.Settings.Batching;
        var instances = batching?.InstanceCount > 0 ? batching.InstanceCount : _executor.Options.EffectiveThreads;
        if (batching is { Enabled: true })
        {
            var dynamic = runtime.Inputs.Concat(runtime.Outputs).All(t => t.Shape.Length > 0 && t.Shape[0] < 0);
            if (dynamic)
            {
                _batcher = new ModelBatcher(
                    Spec.Name, Spec.Version, batching, instances, _executor, PrecisionTimeProvider.Instance, ExecuteBatch,
                    ticks =>
                    {
                        _statistics.RecordQueue(ticks);
                        _metrics.RecordQueue(Spec.Name, Spec.Version, TimeSpan.FromSeconds(ticks / (double)Stopwatch.Frequency));
                    },
                    RecordBatchExecution);
            }
            else
            {
                _batchingNote = "batching is off: the model's batch dimension (the first of every input and output) is not variable";
            }
        }
        else if (batching?.InstanceCount > 0)
        {
            _instances = new SemaphoreSlim(batching.InstanceCount, batching.InstanceCount);
        }

        _status = new ModelStatus(ModelState.Loaded, null, DateTimeOffset.UtcNow, loadDuration);
        _settled.TrySetResult();
    }

    /// <summary>Records why loading failed (<paramref name="failureReason"/>: one of <see cref="FailureReasons"/>).</summary>
    public void MarkFailed(string reason, string failureReason = FailureReasons.ModelLoadFailed)
    {
        _status = new ModelStatus(ModelState.FailedToLoad, reason) { FailureReason = failureReason };
        _settled.TrySetResult();
    }

    /// <summary>The metadata; throws 503 until loaded.</summary>
    public ModelMetadata GetMetadata()
    {
        EnsureLoaded();
        return _metadata!;
    }

    /// <summary>Runs one request. Short executions run inline; longer ones on the bounded executor.</summary>
    public ValueTask<InferenceResponse> InferAsync(InferenceRequest request, CancellationToken cancellationToken = default)
    {
        var started = Stopwatch.GetTimestamp();

        // Counted before the state is read, so that a retirement that begins now waits for this call (see Stop).
        Interlocked.Increment(ref _inFlight);
        if (_status.State == ModelState.Retired)
        {
            // No failure of this replica: the gateway routes the call to the revision that replaced it.
            Leave();
            throw RetiredException();
        }

        try
        {
            EnsureLoaded();
            var outputs = InputValidator.Validate(request, _metadata!, _allOutputs, _bytesAreText);
            if (_batcher is { } batcher)
            {
                return new ValueTask<InferenceResponse>(RunBatchedAsync(batcher, request, outputs, started, cancellationToken));
            }

            if (_instances is not null)
            {
                return new ValueTask<InferenceResponse>(RunOnExecutorAsync(request, outputs, started));
            }

            if (Volatile.Read(ref _averageTicks) <= _inlineThresholdTicks)
            {
                var response = Execute(new Call(this, request, outputs, started));
                Complete(request, started, success: true);
                return new ValueTask<InferenceResponse>(response);
            }

            return new ValueTask<InferenceResponse>(RunOnExecutorAsync(request, outputs, started));
        }
        catch
        {
            Complete(request, started, success: false);
            throw;
        }
    }

    private async Task<InferenceResponse> RunOnExecutorAsync(InferenceRequest request, ImmutableArray<string> outputs, long started)
    {
        var success = false;
        var instances = _instances;
        try
        {
            if (instances is not null)
            {
                await instances.WaitAsync().ConfigureAwait(false);
            }

            try
            {
                var response = await _executor.RunAsync(static call => call.Replica.Execute(call), new Call(this, request, outputs, started)).ConfigureAwait(false);
                success = true;
                return response;
            }
            finally
            {
                instances?.Release();
            }
        }
        finally
        {
            Complete(request, started, success);
        }
    }

    private async Task<InferenceResponse> RunBatchedAsync(
        ModelBatcher batcher, InferenceRequest request, ImmutableArray<string> outputs, long started, CancellationToken cancellationToken)
    {
        var success = false;
        try
        {
            var response = await batcher.EnqueueAsync(request, outputs, cancellationToken).ConfigureAwait(false);
            success = true;
            return response;
        }
        finally
        {
            Complete(request, started, success);
        }
    }

    private RuntimeResult ExecuteBatch(ImmutableArray<Tensor> inputs, ImmutableArray<string> outputs)
    {
        var runtime = _runtime ?? throw InferenceException.Unavailable($"model '{Spec.Name}' is not loaded");
        try
        {
            return runtime.Execute(inputs, outputs);
        }
        catch (Exception e) when (e is not InferenceException)
        {
            throw new InferenceException(InferenceErrorKind.Internal, $"model '{Spec.Name}' failed: {e.Message}");
        }
    }

    private void RecordBatchExecution(long rows, RuntimeResult result)
    {
        _statistics.RecordExecution(rows, result.InputTicks, result.InferTicks, result.OutputTicks);
        _metrics.RecordExecution(Spec.Name, Spec.Version, TimeSpan.FromSeconds((result.InputTicks + result.InferTicks + result.OutputTicks) / (double)Stopwatch.Frequency));
        _metrics.RecordBatch(Spec.Name, rows);
    }

    /// <summary>Requests waiting in the batcher's queue (0 when the model does not batch).</summary>
    public int QueueLength => _batcher?.QueueLength ?? 0;

    private InferenceResponse Execute(Call call)
    {
        var runtime = _runtime ?? throw InferenceException.Unavailable($"model '{Spec.Name}' is not loaded");
        var started = Stopwatch.GetTimestamp();
        RuntimeResult result;
        try
        {
            result = runtime.Execute(call.Request.Inputs, call.Outputs);
        }
        catch (Exception e) when (e is not InferenceException)
        {
            // No inner exception: this one crosses grain and process boundaries, the runtime's types do not.
            throw new InferenceException(InferenceErrorKind.Internal, $"model '{Spec.Name}' failed: {e.Message}");
        }

        var elapsed = Stopwatch.GetTimestamp() - started;
        UpdateAverage(elapsed);
        _metrics.RecordExecution(Spec.Name, Spec.Version, Stopwatch.GetElapsedTime(started));
        _metrics.RecordQueue(Spec.Name, Spec.Version, Stopwatch.GetElapsedTime(call.Started, started));
        _metrics.RecordBatch(Spec.Name, Rows(call.Request));
        _statistics.RecordQueue(started - call.Started);
        _statistics.RecordExecution(Rows(call.Request), result.InputTicks, result.InferTicks, result.OutputTicks);
        return new InferenceResponse(Spec.Name, Spec.Version, call.Request.Id, result.Outputs);
    }

    /// <summary>The configuration in effect: no batching yet (max batch size 0), one instance per executor thread.</summary>
    public ModelConfiguration GetConfiguration()
    {
        var metadata = GetMetadata();
        var batching = _batcher is null ? null : Spec.Settings.Batching;
        var instances = Spec.Settings.Batching?.InstanceCount > 0 ? Spec.Settings.Batching.InstanceCount : _executor.Options.EffectiveThreads;

        // Triton's convention: with max_batch_size > 0 the dims leave out the batch dimension.
        ImmutableArray<TensorMetadata> Dims(ImmutableArray<TensorMetadata> tensors) =>
            batching is null ? tensors : tensors.Select(t => t with { Shape = t.Shape.RemoveAt(0) }).ToImmutableArray();
        return new ModelConfiguration(
            Spec.Name, metadata.Platform, metadata.Platform.StartsWith("onnxruntime", StringComparison.Ordinal) ? "onnxruntime" : Spec.Runtime,
            batching?.MaxBatchSize ?? 0, Dims(metadata.Inputs), Dims(metadata.Outputs), instances, metadata.Versions)
        {
            Batching = batching,
            BatchingNote = _batchingNote,
        };
    }

    /// <summary>The replica's statistics (Triton's statistics extension).</summary>
    public ModelStatistics GetStatistics() => _statistics.Snapshot(Spec.Name, Spec.Version);

    // Rows a request carries: its batch dimension when the model has a variable one, else 1.
    private long Rows(InferenceRequest request) =>
        _batchedFirstDimension && !request.Inputs.IsDefaultOrEmpty && request.Inputs[0].Shape.Length > 0 ? request.Inputs[0].Shape[0] : 1;

    // An exponential moving average of execution time decides inline vs executor; racing updates only blur it.
    private void UpdateAverage(long ticks)
    {
        var previous = Volatile.Read(ref _averageTicks);
        var next = previous == long.MaxValue ? ticks : previous + ((ticks - previous) / 8);
        Volatile.Write(ref _averageTicks, next);
    }

    private void Leave()
    {
        if (Interlocked.Decrement(ref _inFlight) == 0 && Volatile.Read(ref _drained) is { } drained)
        {
            drained.TrySetResult();
        }
    }

    private InferenceException RetiredException() =>
        new(InferenceErrorKind.Retired, $"model '{Spec.Name}' revision {Key.Revision} is retired: a newer revision serves in its place");

    private void Complete(InferenceRequest request, long started, bool success)
    {
        Leave();
        var inferences = Rows(request);
        var ticks = Stopwatch.GetTimestamp() - started;
        if (success)
        {
            _statistics.RecordSuccess(ticks, inferences);
        }
        else
        {
            _statistics.RecordFailure(ticks);
        }

        _metrics.RecordRequest(Spec.Name, Spec.Version, success, inferences, Stopwatch.GetElapsedTime(started));
    }

    private void EnsureLoaded()
    {
        var status = _status;
        switch (status.State)
        {
            case ModelState.Loaded:
                return;
            case ModelState.FailedToLoad:
                throw InferenceException.Unavailable($"model '{Spec.Name}' failed to load: {status.Reason}");
            case ModelState.Unloaded:
                throw InferenceException.Unavailable($"model '{Spec.Name}' is unloaded");
            case ModelState.Retired:
                throw RetiredException();
            default:
                throw InferenceException.Unavailable($"model '{Spec.Name}' is loading");
        }
    }

    /// <summary>
    /// Stops serving on request: calls from now on are refused with 503 "unloaded", queued ones fail at once, calls
    /// already executing finish. Answers when they have, or after <paramref name="drain"/>; the runtime is freed once they have.
    /// </summary>
    public Task UnloadAsync(TimeSpan drain)
    {
        if (_status.State != ModelState.Retired)
        {
            _status = new ModelStatus(ModelState.Unloaded);
        }

        _batcher?.Dispose();
        return Stop(drain);
    }

    /// <summary>
    /// Stops serving because the activation leaves (its silo stops, or the grain moves) while its revision still
    /// serves: like <see cref="RetireAsync"/>, later calls are answered <see cref="InferenceErrorKind.Retired"/>, and the
    /// gateway sends them to the grain again, which Orleans activates anew on another silo.
    /// </summary>
    public Task LeaveAsync(TimeSpan drain)
    {
        if (_status.State is ModelState.Loaded or ModelState.Loading)
        {
            _status = new ModelStatus(ModelState.Retired, "its activation is leaving this silo");
        }

        return Stop(drain);
    }

    /// <summary>
    /// Retires the replica (a newer revision serves in its place): calls from now on are answered
    /// <see cref="InferenceErrorKind.Retired"/> for the gateway to route again, while every call already here, queued
    /// ones included, is served. Answers when they have been, or after <paramref name="drain"/>; the batcher and the
    /// runtime are freed once they have.
    /// </summary>
    public Task RetireAsync(TimeSpan drain)
    {
        _status = new ModelStatus(ModelState.Retired, "replaced by a newer revision");
        return Stop(drain);
    }

    private async Task Stop(TimeSpan drain)
    {
        _settled.TrySetResult();

        // The full fence of the exchange orders the state written above before the read of the in-flight count, as
        // InferAsync counts itself before it reads the state: a call either sees the new state or is waited for.
        var drained = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        drained = Interlocked.CompareExchange(ref _drained, drained, null) ?? drained;
        if (InFlight == 0)
        {
            drained.TrySetResult();
        }

        if (!drained.Task.IsCompleted)
        {
            _ = drained.Task.ContinueWith(static (_, state) => ((ModelReplica)state!).Release(), this, CancellationToken.None,
                TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
            await Task.WhenAny(drained.Task, Task.Delay(drain)).ConfigureAwait(false);
            return;
        }

        Release();
    }

    // Frees what the replica holds once no call is in progress; idempotent.
    private void Release()
    {
        _batcher?.Dispose();
        Dispose();
    }

    /// <inheritdoc />
    public void Dispose()
    {
        var runtime = Interlocked.Exchange(ref _runtime, null);
        runtime?.Dispose();
    }

    private readonly record struct Call(ModelReplica Replica, InferenceRequest Request, ImmutableArray<string> Outputs, long Started);
}
