using System.Diagnostics;
using System.Runtime.ExceptionServices;
using System.Runtime.InteropServices;

namespace Orleans.KServe.Grains.Batching;

/// <summary>
/// The system clock with timers that fire within a fraction of a millisecond of their due time, for the batchers'
/// queue delays (Triton's are in microseconds; KServe's 1–5 ms are common).
/// </summary>
/// <remarks>
/// The runtime's own timers fire late by one to several milliseconds on Linux (a 2 ms timer fired after about
/// 4.3 ms at the median on this project's machines), which would double a batch's delay. Here one background thread
/// keeps every timer's due time in a queue; it waits in whole milliseconds until one to two milliseconds are left, then
/// in slices of at most 250 µs with <c>nanosleep</c>, spins the last 60 µs, and runs the callback on that thread. Callbacks must therefore
/// be short and must not block: the batcher's only takes due batches and hands them to the executor.
/// </remarks>
public sealed class PrecisionTimeProvider : TimeProvider
{
    /// <summary>The one instance; its thread starts with the first timer.</summary>
    public static PrecisionTimeProvider Instance { get; } = new();

    private static readonly TimeSpan CoarseLimit = TimeSpan.FromMilliseconds(2);
    private static readonly TimeSpan SleepSlice = TimeSpan.FromMicroseconds(250);
    private static readonly TimeSpan SpinLimit = TimeSpan.FromMicroseconds(60);

    private readonly object _lock = new();
    private readonly PriorityQueue<PrecisionTimer, long> _due = new();
    private Thread? _thread;

    private PrecisionTimeProvider()
    {
    }

    /// <inheritdoc />
    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        ArgumentNullException.ThrowIfNull(callback);
        var timer = new PrecisionTimer(this, callback, state);
        timer.Change(dueTime, period);
        return timer;
    }

    private void Schedule(PrecisionTimer timer, long due)
    {
        lock (_lock)
        {
            _due.Enqueue(timer, due);
            if (_thread is null)
            {
                _thread = new Thread(Run) { IsBackground = true, Name = "kserve-batch-timer", Priority = ThreadPriority.AboveNormal };
                _thread.Start();
            }
            else if (_due.Peek() == timer)
            {
                Monitor.Pulse(_lock);
            }
        }
    }

    private void Run()
    {
        while (true)
        {
            PrecisionTimer? fire = null;
            long fireDue = 0;
            lock (_lock)
            {
                while (fire is null)
                {
                    if (!_due.TryPeek(out var timer, out var due))
                    {
                        Monitor.Wait(_lock);
                        continue;
                    }

                    if (!timer.IsDue(due))
                    {
                        // Changed or disposed since it was queued: its current due time has its own entry.
                        _due.Dequeue();
                        continue;
                    }

                    var remaining = Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), due);
                    if (remaining >= CoarseLimit)
                    {
                        // Whole-millisecond waits wake ~0.15 ms late (more on a busy machine): stop a millisecond short.
                        Monitor.Wait(_lock, (int)Math.Min(remaining.TotalMilliseconds - 1, 60_000));
                        continue;
                    }

                    if (remaining > SpinLimit)
                    {
                        // Short precise sleeps, so that a timer queued meanwhile with an earlier due time waits at most one.
                        Monitor.Exit(_lock);
                        try
                        {
                            SleepPrecisely(TimeSpan.FromTicks(Math.Min((remaining - SpinLimit).Ticks, SleepSlice.Ticks)));
                        }
                        finally
                        {
                            Monitor.Enter(_lock);
                        }

                        continue;
                    }

                    if (remaining > TimeSpan.Zero)
                    {
                        // The last few tens of microseconds: a sleep would overshoot them.
                        Monitor.Exit(_lock);
                        try
                        {
                            var spinner = default(SpinWait);
                            while (Stopwatch.GetTimestamp() < due)
                            {
                                spinner.SpinOnce(sleep1Threshold: -1);
                            }
                        }
                        finally
                        {
                            Monitor.Enter(_lock);
                        }

                        continue;
                    }

                    _due.Dequeue();
                    fire = timer;
                    fireDue = due;
                }
            }

            try
            {
                fire.Fire(fireDue);
            }
            catch (Exception e)
            {
                // As with the runtime's own timers, a callback that throws is a bug that ends the process.
                var failure = ExceptionDispatchInfo.Capture(e);
                ThreadPool.UnsafeQueueUserWorkItem(static f => f.Throw(), failure, preferLocal: false);
            }
        }
    }

    private static void SleepPrecisely(TimeSpan remaining)
    {
        if (OperatingSystem.IsLinux())
        {
            var request = new TimeSpec { Seconds = 0, Nanoseconds = remaining.Ticks * 100 };
            _ = NanoSleep(ref request, IntPtr.Zero);
            return;
        }

        Thread.Yield();
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct TimeSpec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    [DllImport("libc", EntryPoint = "nanosleep", SetLastError = false)]
    private static extern int NanoSleep(ref TimeSpec request, IntPtr remaining);

    private sealed class PrecisionTimer(PrecisionTimeProvider owner, TimerCallback callback, object? state) : ITimer
    {
        private long _due = -1;
        private TimeSpan _period = Timeout.InfiniteTimeSpan;
        private bool _disposed;

        public bool Change(TimeSpan dueTime, TimeSpan period)
        {
            long due;
            lock (owner._lock)
            {
                if (_disposed)
                {
                    return false;
                }

                _period = period;
                if (dueTime == Timeout.InfiniteTimeSpan)
                {
                    _due = -1;
                    return true;
                }

                ArgumentOutOfRangeException.ThrowIfLessThan(dueTime, TimeSpan.Zero);
                due = Stopwatch.GetTimestamp() + (long)(dueTime.TotalSeconds * Stopwatch.Frequency);
                if (due == _due)
                {
                    return true;
                }

                _due = due;
                owner.Schedule(this, due);
            }

            return true;
        }

        /// <summary>Whether <paramref name="due"/> is this timer's current due time (called under the owner's lock).</summary>
        public bool IsDue(long due) => !_disposed && _due == due;

        public void Fire(long due)
        {
            lock (owner._lock)
            {
                if (_disposed || _due != due)
                {
                    return;
                }

                if (_period > TimeSpan.Zero && _period != Timeout.InfiniteTimeSpan)
                {
                    _due += (long)(_period.TotalSeconds * Stopwatch.Frequency);
                    owner._due.Enqueue(this, _due);
                }
                else
                {
                    _due = -1;
                }
            }

            callback(state);
        }

        public void Dispose()
        {
            lock (owner._lock)
            {
                _disposed = true;
                _due = -1;
            }
        }

        public ValueTask DisposeAsync()
        {
            Dispose();
            return ValueTask.CompletedTask;
        }
    }
}
