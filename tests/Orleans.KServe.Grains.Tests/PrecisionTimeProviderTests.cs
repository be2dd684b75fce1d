using System.Diagnostics;
using Orleans.KServe.Grains.Batching;

namespace Orleans.KServe.Grains.Tests;

public sealed class PrecisionTimeProviderTests
{
    private static readonly TimeProvider Time = PrecisionTimeProvider.Instance;

    private static (ITimer Timer, Task<TimeSpan> Fired) Start(TimeSpan due, long started)
    {
        var fired = new TaskCompletionSource<TimeSpan>(TaskCreationOptions.RunContinuationsAsynchronously);
        var timer = Time.CreateTimer(_ => fired.TrySetResult(Stopwatch.GetElapsedTime(started)), null, due, Timeout.InfiniteTimeSpan);
        return (timer, fired.Task);
    }

    [Fact]
    public async Task A_timer_never_fires_before_its_due_time()
    {
        foreach (var microseconds in new[] { 0, 300, 1000, 1700, 2000, 3500 })
        {
            var due = TimeSpan.FromMicroseconds(microseconds);
            var (timer, fired) = Start(due, Stopwatch.GetTimestamp());
            using (timer)
            {
                Assert.True(await fired.WaitAsync(TimeSpan.FromSeconds(10)) >= due, $"fired early for {microseconds} µs");
            }
        }
    }

    [Fact]
    public async Task Changing_a_timer_moves_it_and_a_disposed_timer_never_fires()
    {
        // Due times far enough off that the test thread, however loaded the machine, changes and disposes the
        // timers before their first due time comes.
        var started = Stopwatch.GetTimestamp();
        var (moved, movedFired) = Start(TimeSpan.FromMilliseconds(100), started);
        moved.Change(TimeSpan.FromMilliseconds(300), Timeout.InfiniteTimeSpan);
        var (disposed, disposedFired) = Start(TimeSpan.FromMilliseconds(100), started);
        disposed.Dispose();
        Assert.False(disposed.Change(TimeSpan.Zero, Timeout.InfiniteTimeSpan));

        // Timers fire in due order on one thread, so once the later one has fired the disposed one had its turn.
        var (later, laterFired) = Start(TimeSpan.FromMilliseconds(200), started);
        using (later)
        using (moved)
        {
            await laterFired.WaitAsync(TimeSpan.FromSeconds(10));
            Assert.False(disposedFired.IsCompleted);
            Assert.True(await movedFired.WaitAsync(TimeSpan.FromSeconds(10)) >= TimeSpan.FromMilliseconds(300));
        }
    }

    [Fact]
    public async Task An_earlier_timer_is_not_held_behind_a_later_one()
    {
        var started = Stopwatch.GetTimestamp();
        var (far, farFired) = Start(TimeSpan.FromSeconds(30), started);
        var (near, nearFired) = Start(TimeSpan.FromMilliseconds(2), started);
        using (far)
        using (near)
        {
            var elapsed = await nearFired.WaitAsync(TimeSpan.FromSeconds(10));
            Assert.True(elapsed >= TimeSpan.FromMilliseconds(2));
            Assert.False(farFired.IsCompleted);
        }
    }

    [Fact]
    public async Task A_periodic_timer_fires_until_disposed()
    {
        var count = 0;
        var three = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var timer = Time.CreateTimer(_ =>
        {
            if (Interlocked.Increment(ref count) == 3)
            {
                three.TrySetResult();
            }
        }, null, TimeSpan.FromMilliseconds(1), TimeSpan.FromMilliseconds(1));
        await three.Task.WaitAsync(TimeSpan.FromSeconds(10));
        timer.Dispose();

        // A callback already running when Dispose returned finishes before the next timer on the same thread.
        await Probe();
        var after = Volatile.Read(ref count);
        await Probe();
        Assert.Equal(after, Volatile.Read(ref count));

        static async Task Probe()
        {
            var (probe, probeFired) = Start(TimeSpan.FromMilliseconds(5), Stopwatch.GetTimestamp());
            using (probe)
            {
                await probeFired.WaitAsync(TimeSpan.FromSeconds(10));
            }
        }
    }

    [Fact]
    public async Task A_due_time_weeks_away_does_not_stop_the_thread()
    {
        var started = Stopwatch.GetTimestamp();
        var (far, farFired) = Start(TimeSpan.FromDays(60), started);
        using (far)
        {
            // Let the thread reach its long wait, then ask for a near one.
            await Task.Yield();
            var (near, nearFired) = Start(TimeSpan.FromMilliseconds(3), Stopwatch.GetTimestamp());
            using (near)
            {
                Assert.True(await nearFired.WaitAsync(TimeSpan.FromSeconds(10)) >= TimeSpan.FromMilliseconds(3));
            }

            Assert.False(farFired.IsCompleted);
        }
    }
}
