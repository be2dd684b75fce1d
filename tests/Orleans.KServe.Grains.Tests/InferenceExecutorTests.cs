using Microsoft.Extensions.Options;
using Orleans.KServe.Grains.Execution;

namespace Orleans.KServe.Grains.Tests;

public sealed class InferenceExecutorTests
{
    [Fact]
    public async Task Results_complete_off_the_executor_threads()
    {
        using var executor = new InferenceExecutor(Options.Create(new InferenceExecutorOptions { Threads = 1 }));
        var workerThread = await executor.RunAsync(static _ => Environment.CurrentManagedThreadId, 0);
        var continuationThread = Environment.CurrentManagedThreadId;
        Assert.NotEqual(workerThread, continuationThread);
    }

    [Fact]
    public async Task Failures_surface_as_the_task_exception()
    {
        using var executor = new InferenceExecutor(Options.Create(new InferenceExecutorOptions { Threads = 1 }));
        var e = await Assert.ThrowsAsync<InvalidOperationException>(() => executor.RunAsync<int, int>(static _ => throw new InvalidOperationException("boom"), 0));
        Assert.Equal("boom", e.Message);
        Assert.Equal(5, await executor.RunAsync(static x => x + 1, 4));
    }

    [Fact]
    public async Task At_most_the_configured_number_of_items_run_at_once()
    {
        using var executor = new InferenceExecutor(Options.Create(new InferenceExecutorOptions { Threads = 2 }));
        using var gate = new ManualResetEventSlim();
        var running = 0;
        var maxRunning = 0;
        int Work(int i)
        {
            var now = Interlocked.Increment(ref running);
            lock (gate)
            {
                maxRunning = Math.Max(maxRunning, now);
            }

            gate.Wait();
            Interlocked.Decrement(ref running);
            return i;
        }

        var tasks = Enumerable.Range(0, 5).Select(i => executor.RunAsync(Work, i)).ToList();
        await ClusterFixture.WaitUntilAsync(() => Volatile.Read(ref running) == 2, "two items running");
        Assert.Equal(5, executor.Pending);
        gate.Set();
        Assert.Equal(new[] { 0, 1, 2, 3, 4 }, await Task.WhenAll(tasks));
        Assert.Equal(2, maxRunning);
        Assert.Equal(0, executor.Pending);
    }

    [Fact]
    public async Task Work_queued_before_dispose_still_runs_and_later_work_is_refused()
    {
        var executor = new InferenceExecutor(Options.Create(new InferenceExecutorOptions { Threads = 1 }));
        using var gate = new ManualResetEventSlim();
        var tasks = Enumerable.Range(0, 4).Select(i => executor.RunAsync(x => { gate.Wait(); return x; }, i)).ToList();

        // RunAsync refuses synchronously once Dispose has begun; until then a probe is queued like any item.
        string? refusal = null;
        bool Refused()
        {
            try
            {
                tasks.Add(executor.RunAsync(static x => x, 0));
                return false;
            }
            catch (ObjectDisposedException e)
            {
                refusal = e.Message;
                return true;
            }
        }

        var disposing = Task.Run(executor.Dispose);
        await ClusterFixture.WaitUntilAsync(Refused, "dispose has begun");
        gate.Set();

        var results = await Task.WhenAll(tasks).WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(new[] { 0, 1, 2, 3 }, results[..4]);
        await disposing;
        Assert.Contains("shutting down", refusal);
    }
}
