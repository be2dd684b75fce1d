using System.Buffers;
using System.Buffers.Binary;
using System.Collections.Immutable;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using Orleans.KServe.Contracts.Inference;
using Orleans.KServe.Contracts.Models;
using Orleans.KServe.Contracts.Tensors;
using Orleans.KServe.Grains.Execution;
using Orleans.KServe.Grains.Runtime;

namespace Orleans.KServe.Grains.Batching;

/// <summary>
/// The batcher inside one model replica: requests queue in a <see cref="BatchPolicy{T}"/>; a timer wakes it when
/// the oldest request's delay ends; each due batch runs as one execution on the bounded executor (at most
/// <c>instances</c> at once): inputs are concatenated along the batch dimension, outputs split back per request.
/// </summary>
/// <remarks>
/// Buffer ownership: a request's input buffers are read only while its batch is being concatenated, and its call
/// does not return before that copy is done, so a caller may reuse its buffers as soon as its call returns. A
/// caller that leaves (cancellation) while queued is removed and its rows never run. Each batch's concatenated
/// inputs are pooled and returned after the execution; outputs are split as slices of the runtime's output arrays,
/// which the responses then own.
/// </remarks>
public sealed class ModelBatcher : IDisposable
{
    private readonly object _lock = new();
    private readonly BatchPolicy<Pending> _policy;
    private readonly BatchingSettings _settings;
    private readonly ITimer _timer;
    private readonly int _instances;
    private readonly InferenceExecutor _executor;
    private readonly Func<ImmutableArray<Tensor>, ImmutableArray<string>, RuntimeResult> _execute;
    private readonly Action<long> _recordQueue;
    private readonly Action<long, RuntimeResult> _recordExecution;
    private readonly string _model;
    private readonly string _version;
    private readonly SortedDictionary<long, Action> _held = [];
    private readonly TimeProvider _time;
    private DateTimeOffset? _armedFor;
    private long _nextRelease;
    private int _running;
    private bool _disposed;

    /// <summary>Creates the batcher of one replica.</summary>
    public ModelBatcher(
        string model,
        string version,
        BatchingSettings settings,
        int instances,
        InferenceExecutor executor,
        TimeProvider time,
        Func<ImmutableArray<Tensor>, ImmutableArray<string>, RuntimeResult> execute,
        Action<long> recordQueue,
        Action<long, RuntimeResult> recordExecution)
    {
        _model = model;
        _version = version;
        _settings = settings;
        _instances = Math.Max(1, instances);
        _executor = executor;
        _execute = execute;
        _recordQueue = recordQueue;
        _recordExecution = recordExecution;
        _time = time;
        _policy = new BatchPolicy<Pending>(settings, time);
        _timer = time.CreateTimer(static state => ((ModelBatcher)state!).OnTimer(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
    }

    /// <summary>Requests waiting.</summary>
    public int QueueLength
    {
        get
        {
            lock (_lock)
            {
                return _policy.Count;
            }
        }
    }

    /// <summary>Batches executing now, counted until their answers have been handed out (or held for ordering).</summary>
    public int RunningBatches
    {
        get
        {
            lock (_lock)
            {
                return _running;
            }
        }
    }

    /// <summary>Queues a validated request; completes with its share of a batch's outputs.</summary>
    public Task<InferenceResponse> EnqueueAsync(InferenceRequest request, ImmutableArray<string> outputs, CancellationToken cancellationToken)
    {
        var rows = request.Inputs[0].Shape[0];
        foreach (var input in request.Inputs)
        {
            if (input.Shape[0] != rows)
            {
                throw InferenceException.Invalid(
                    $"inputs disagree on the batch dimension: '{request.Inputs[0].Name}' has {rows} rows, '{input.Name}' has {input.Shape[0]}");
            }
        }

        var pending = new Pending(this, request, outputs, Stopwatch.GetTimestamp());
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            pending.Item = _policy.Enqueue(pending, rows, ShapeKey(request, outputs), Parameter(request, "priority"), Parameter(request, "timeout"));
        }

        if (cancellationToken.CanBeCanceled)
        {
            pending.Registration = cancellationToken.Register(static state => ((Pending)state!).Owner.Cancel((Pending)state!), pending);
        }

        Dispatch();
        return pending.Completion.Task;
    }

    private static long? Parameter(InferenceRequest request, string name)
    {
        if (request.Parameters is null || !request.Parameters.TryGetValue(name, out var value))
        {
            return null;
        }

        return value.TryGetInt64(out var number) ? number : throw InferenceException.Invalid($"parameter '{name}' must be an integer, not '{value}'");
    }

    private static string ShapeKey(InferenceRequest request, ImmutableArray<string> outputs)
    {
        var key = new StringBuilder();
        foreach (var input in request.Inputs.OrderBy(i => i.Name, StringComparer.Ordinal))
        {
            key.Append(input.Name).Append(':').Append(input.DataType.ToProtocolName());
            for (var d = 1; d < input.Shape.Length; d++)
            {
                key.Append(',').Append(input.Shape[d].ToString(CultureInfo.InvariantCulture));
            }

            key.Append(';');
        }

        return key.Append('>').AppendJoin(',', outputs).ToString();
    }

    private void Cancel(Pending pending)
    {
        bool removed;
        lock (_lock)
        {
            removed = _policy.Remove(pending.Item!);
            pending.CancelRequested = true;
        }

        if (removed)
        {
            // Still queued: its rows never run and nothing reads its buffers any more.
            Finish(pending, static p => p.Completion.TrySetCanceled());
        }
    }

    private void OnTimer()
    {
        lock (_lock)
        {
            // The armed wake-up is spent: the next Dispatch arms again for whatever still waits.
            _armedFor = null;
        }

        Dispatch();
    }

    private void Dispatch()
    {
        // Both stay unallocated on the common dispatch that finds nothing expired and no batch due.
        IReadOnlyList<QueuedRequest<Pending>> expired;
        List<List<QueuedRequest<Pending>>>? batches = null;
        lock (_lock)
        {
            if (_disposed)
            {
                return;
            }

            expired = _policy.TakeExpired();
            while (_running < _instances && _policy.TryTakeBatch(out var batch))
            {
                _running++;
                (batches ??= []).Add(batch);
            }

            // Re-armed only when the wake-up time changes (a new head, a batch taken), not on every arrival.
            DateTimeOffset? wake = _running < _instances ? _policy.NextWakeUpAt() : null;
            var now = wake is null ? default : _time.GetUtcNow();
            if (wake != _armedFor || wake <= now)
            {
                _armedFor = wake;
                _timer.Change(wake is { } due ? Max(due - now, TimeSpan.Zero) : Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
            }
        }

        for (var i = 0; i < expired.Count; i++)
        {
            Finish(expired[i].Payload, static p => p.Completion.TrySetException(
                InferenceException.Unavailable("the request timed out in the model's queue before it could run")));
        }

        if (batches is null)
        {
            return;
        }

        foreach (var batch in batches)
        {
            _ = RunAsync(batch);
        }
    }

    private static TimeSpan Max(TimeSpan a, TimeSpan b) => a > b ? a : b;

    private async Task RunAsync(List<QueuedRequest<Pending>> batch)
    {
        try
        {
            await _executor.RunAsync(static state => { state.Owner.Execute(state.Batch); return 0; }, (Owner: this, Batch: batch)).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            var failure = e as InferenceException ?? new InferenceException(InferenceErrorKind.Internal, $"model '{_model}' failed: {e.Message}");
            foreach (var item in batch)
            {
                Finish(item.Payload, p => p.Completion.TrySetException(failure));
            }
        }
        finally
        {
            lock (_lock)
            {
                _running--;
            }

            Dispatch();
        }
    }

    private void Execute(List<QueuedRequest<Pending>> batch)
    {
        var started = Stopwatch.GetTimestamp();
        var first = batch[0].Payload.Request;
        long rows = 0;
        foreach (var item in batch)
        {
            rows += item.Rows;
        }

        var rented = new List<byte[]>(first.Inputs.Length);
        try
        {
            var inputs = ImmutableArray.CreateBuilder<Tensor>(first.Inputs.Length);
            foreach (var template in first.Inputs)
            {
                var size = 0;
                foreach (var item in batch)
                {
                    size += Find(item.Payload.Request, template.Name).Data.Length;
                }

                var buffer = ArrayPool<byte>.Shared.Rent(Math.Max(1, size));
                rented.Add(buffer);
                var offset = 0;
                foreach (var item in batch)
                {
                    var data = Find(item.Payload.Request, template.Name).Data.Span;
                    data.CopyTo(buffer.AsSpan(offset));
                    offset += data.Length;
                }

                inputs.Add(new Tensor(template.Name, template.DataType, template.Shape.SetItem(0, rows), buffer.AsMemory(0, size)));
            }

            // From here on no request's own buffers are read: callers that left may go.
            var live = new List<QueuedRequest<Pending>>(batch.Count);
            foreach (var item in batch)
            {
                _recordQueue(started - item.Payload.Enqueued);
                if (Volatile.Read(ref item.Payload.CancelRequested))
                {
                    Finish(item.Payload, static p => p.Completion.TrySetCanceled());
                }
                else
                {
                    live.Add(item);
                }
            }

            if (live.Count == 0)
            {
                return;
            }

            var result = _execute(inputs.MoveToImmutable(), batch[0].Payload.Outputs);
            _recordExecution(rows, result);
            Split(batch, rows, result.Outputs);
        }
        finally
        {
            foreach (var buffer in rented)
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }
        }
    }

    private void Split(List<QueuedRequest<Pending>> batch, long rows, ImmutableArray<Tensor> outputs)
    {
        foreach (var output in outputs)
        {
            if (output.Shape.Length == 0 || output.Shape[0] != rows)
            {
                throw new InferenceException(InferenceErrorKind.Internal,
                    $"model '{_model}' returned output '{output.Name}' with shape {ShapeMath.Format(output.Shape.AsSpan())}, not {rows} rows: it cannot be batched (set maxBatchSize 0)");
            }
        }

        var offsets = new int[outputs.Length];
        foreach (var item in batch)
        {
            var pieces = ImmutableArray.CreateBuilder<Tensor>(outputs.Length);
            for (var o = 0; o < outputs.Length; o++)
            {
                var output = outputs[o];
                var length = RowBytes(output, offsets[o], item.Rows);
                pieces.Add(new Tensor(output.Name, output.DataType, output.Shape.SetItem(0, item.Rows), output.Data.Slice(offsets[o], length)));
                offsets[o] += length;
            }

            // A caller that left after its inputs were copied still gets its answer delivered (no one reads it).
            var response = new InferenceResponse(_model, _version, item.Payload.Request.Id, pieces.MoveToImmutable());
            Finish(item.Payload, p => p.Completion.TrySetResult(response));
        }
    }

    private static int RowBytes(Tensor output, int offset, long rows)
    {
        var perRow = ShapeMath.ElementCount(output.Shape.AsSpan()[1..]);
        if (output.DataType.IsFixedSize())
        {
            return checked((int)(rows * perRow * output.DataType.ElementSize()));
        }

        var data = output.Data.Span[offset..];
        var length = 0;
        for (long e = 0; e < rows * perRow; e++)
        {
            length += 4 + (int)BinaryPrimitives.ReadUInt32LittleEndian(data[length..]);
        }

        return length;
    }

    private static Tensor Find(InferenceRequest request, string name)
    {
        foreach (var input in request.Inputs)
        {
            if (input.Name == name)
            {
                return input;
            }
        }

        throw new InvalidOperationException($"input '{name}' missing from a batched request");
    }

    private void Finish(Pending pending, Action<Pending> complete)
    {
        if (Interlocked.Exchange(ref pending.Finished, 1) == 1)
        {
            return;
        }

        pending.Registration.Dispose();
        if (!_settings.PreserveOrdering)
        {
            complete(pending);
            return;
        }

        // Answers leave in arrival order: a finished request waits for every earlier one.
        lock (_held)
        {
            _held[pending.Item!.Sequence] = () => complete(pending);
            while (_held.Remove(_nextRelease, out var release))
            {
                release();
                _nextRelease++;
            }
        }
    }

    /// <summary>Fails every queued request (the replica is unloading) and stops the timer.</summary>
    public void Dispose()
    {
        List<QueuedRequest<Pending>> left;
        lock (_lock)
        {
            _disposed = true;
            left = _policy.TakeAll();
        }

        _timer.Dispose();
        foreach (var item in left)
        {
            Finish(item.Payload, static p => p.Completion.TrySetException(InferenceException.Unavailable("the model is unloading")));
        }
    }

    private sealed class Pending(ModelBatcher owner, InferenceRequest request, ImmutableArray<string> outputs, long enqueued)
    {
        public ModelBatcher Owner { get; } = owner;

        public InferenceRequest Request { get; } = request;

        public ImmutableArray<string> Outputs { get; } = outputs;

        public long Enqueued { get; } = enqueued;

        public TaskCompletionSource<InferenceResponse> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public QueuedRequest<Pending>? Item { get; set; }

        public CancellationTokenRegistration Registration { get; set; }

        public bool CancelRequested;

        public int Finished;
    }
}
