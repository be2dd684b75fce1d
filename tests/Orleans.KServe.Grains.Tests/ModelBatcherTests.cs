using System.Collections.Immutable;
using System.Runtime.InteropServices;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using Orleans.KServe.Contracts.Inference;
using Orleans.KServe.Contracts.Models;
using Orleans.KServe.Contracts.Tensors;
using Orleans.KServe.Grains.Batching;
using Orleans.KServe.Grains.Execution;
using Orleans.KServe.Grains.Runtime;

namespace Orleans.KServe.Grains.Tests;

public sealed class ModelBatcherTests : IDisposable
{
    private readonly InferenceExecutor _executor = new(Options.Create(new InferenceExecutorOptions { Threads = 2 }));
    private readonly FakeTimeProvider _time = new();
    private readonly ManualResetEventSlim[] _gates = [new(false), new(false)];
    private int _executions;

    public void Dispose()
    {
        foreach (var gate in _gates)
        {
            gate.Set();
        }

        _executor.Dispose();
    }

    private static InferenceRequest Request(string id, float value) =>
        new(id, [new Tensor("input", TensorDataType.FP32, [1, 1], MemoryMarshal.AsBytes(new[] { value }.AsSpan()).ToArray())], []);

    // Identity over FP32 [rows, 1]; the request with value v waits on gate v - 1.
    private RuntimeResult Execute(ImmutableArray<Tensor> inputs, ImmutableArray<string> outputs)
    {
        Interlocked.Increment(ref _executions);
        var value = (int)MemoryMarshal.Cast<byte, float>(inputs[0].Data.Span)[0];
        _gates[value - 1].Wait(TimeSpan.FromSeconds(30));
        return new RuntimeResult([new Tensor("output", TensorDataType.FP32, inputs[0].Shape, inputs[0].Data.ToArray())], 0, 0, 0);
    }

    private ModelBatcher Batcher(bool preserveOrdering) => new(
        "m", "1", new BatchingSettings { MaxBatchSize = 1, MaxQueueDelayMicroseconds = 0, PreserveOrdering = preserveOrdering },
        instances: 2, _executor, _time, Execute, _ => { }, (_, _) => { });

    [Fact]
    public async Task With_preserve_ordering_a_later_batch_that_finishes_first_waits_for_the_earlier_one()
    {
        using var batcher = Batcher(preserveOrdering: true);
        var first = batcher.EnqueueAsync(Request("1", 1), ["output"], default);
        var second = batcher.EnqueueAsync(Request("2", 2), ["output"], default);
        await ClusterFixture.WaitUntilAsync(() => Volatile.Read(ref _executions) == 2, "both batches to run");

        // Once the second batch has run to its end its answer has been handed out or held: it must be held.
        _gates[1].Set();
        await Wait.UntilAsync(() => batcher.RunningBatches == 1, "the second batch to finish");
        Assert.False(second.IsCompleted, "the second answer left before the first");

        _gates[0].Set();
        Assert.Equal("1", (await first).Id);
        Assert.Equal("2", (await second).Id);
    }

    [Fact]
    public async Task Without_preserve_ordering_answers_leave_as_they_finish()
    {
        using var batcher = Batcher(preserveOrdering: false);
        var first = batcher.EnqueueAsync(Request("1", 1), ["output"], default);
        var second = batcher.EnqueueAsync(Request("2", 2), ["output"], default);
        await ClusterFixture.WaitUntilAsync(() => Volatile.Read(ref _executions) == 2, "both batches to run");

        _gates[1].Set();
        Assert.Equal("2", (await second.WaitAsync(TimeSpan.FromSeconds(30))).Id);
        Assert.False(first.IsCompleted);
        _gates[0].Set();
        Assert.Equal(1f, MemoryMarshal.Cast<byte, float>((await first).Outputs[0].Data.Span)[0]);
    }

    [Fact]
    public async Task A_priority_on_a_model_without_levels_is_invalid()
    {
        using var batcher = Batcher(preserveOrdering: false);
        var request = Request("p", 1) with { Parameters = InferParameters.Empty.Add("priority", InferParameter.Of(2L)) };
        var e = await Assert.ThrowsAsync<InferenceException>(() => batcher.EnqueueAsync(request, ["output"], default));
        Assert.Equal(InferenceErrorKind.InvalidInput, e.Kind);
        Assert.Contains("no priority levels", e.Message);
    }

    [Fact]
    public async Task Each_batch_leaves_when_its_oldest_request_has_waited_the_delay_and_no_sooner()
    {
        var executed = new List<int>();
        using var batcher = new ModelBatcher(
            "m", "1", new BatchingSettings { MaxBatchSize = 8, MaxQueueDelayMicroseconds = 1000 },
            instances: 1, _executor, _time,
            (inputs, _) =>
            {
                lock (executed)
                {
                    executed.Add((int)inputs[0].Shape[0]);
                }

                return new RuntimeResult([new Tensor("output", TensorDataType.FP32, inputs[0].Shape, inputs[0].Data.ToArray())], 0, 0, 0);
            },
            _ => { }, (_, _) => { });

        var first = batcher.EnqueueAsync(Request("a", 1), ["output"], default);
        _time.Advance(TimeSpan.FromMicroseconds(400));
        var second = batcher.EnqueueAsync(Request("b", 2), ["output"], default);
        _time.Advance(TimeSpan.FromMicroseconds(599));
        Assert.Equal(2, batcher.QueueLength);

        // The first request's delay ends: both go as one batch of 2.
        _time.Advance(TimeSpan.FromMicroseconds(1));
        await Task.WhenAll(first, second).WaitAsync(TimeSpan.FromSeconds(30));

        // A later lone request waits its own full delay, counted from its arrival.
        var third = batcher.EnqueueAsync(Request("c", 3), ["output"], default);
        _time.Advance(TimeSpan.FromMicroseconds(999));
        Assert.Equal(1, batcher.QueueLength);
        _time.Advance(TimeSpan.FromMicroseconds(1));
        Assert.Equal("c", (await third.WaitAsync(TimeSpan.FromSeconds(30))).Id);
        lock (executed)
        {
            Assert.Equal(new[] { 2, 1 }, executed.ToArray());
        }
    }
}
