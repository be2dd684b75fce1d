using Microsoft.Extensions.Options;

namespace Orleans.KServe.Grains.Execution;

/// <summary>Settings of the silo's <see cref="InferenceExecutor"/>.</summary>
public sealed class InferenceExecutorOptions
{
    /// <summary>Dedicated execution threads; 0 (the default) = one per core.</summary>
    public int Threads { get; set; }

    /// <summary>
    /// Executions whose measured average stays under this run inline on the calling thread: a hand-off to the
    /// executor costs more than such a run. Default 100 µs.
    /// </summary>
    public TimeSpan InlineThreshold { get; set; } = TimeSpan.FromMicroseconds(100);

    /// <summary>The thread count in effect.</summary>
    public int EffectiveThreads => Threads > 0 ? Threads : Environment.ProcessorCount;
}

/// <summary>
/// A fixed set of dedicated threads that run model executions. Grain turns and request threads run on the .NET
/// thread pool; a long CPU-bound execution there would starve it, and <c>Task.Run</c> alone bounds nothing. Work
/// queues here instead and at most <see cref="InferenceExecutorOptions.EffectiveThreads"/> executions run at once.
/// </summary>
public sealed class InferenceExecutor : IDisposable
{
    // A plain monitor: idle threads block without the spin-and-yield of SemaphoreSlim, which on a small
    // virtual machine costs more (a scheduler round trip per yield) than the hand-off it tries to save.
    private readonly Queue<WorkItem> _queue = new();
    private readonly object _gate = new();
    private readonly Thread[] _threads;
    private int _idle;
    private bool _stopping;
    private int _pending;

    /// <summary>Starts the threads.</summary>
    public InferenceExecutor(IOptions<InferenceExecutorOptions> options)
    {
        Options = options.Value;
        _threads = new Thread[Options.EffectiveThreads];
        for (var i = 0; i < _threads.Length; i++)
        {
            _threads[i] = new Thread(Work) { IsBackground = true, Name = $"kserve-exec-{i}" };
            _threads[i].Start();
        }
    }

    /// <summary>The options in effect.</summary>
    public InferenceExecutorOptions Options { get; }

    /// <summary>Executions queued or running.</summary>
    public int Pending => Volatile.Read(ref _pending);

    /// <summary>Queues <paramref name="work"/>; the task completes on the thread pool, never on an executor thread.</summary>
    public Task<TResult> RunAsync<TState, TResult>(Func<TState, TResult> work, TState state)
    {
        var item = new WorkItem<TState, TResult>(work, state);
        lock (_gate)
        {
            if (_stopping)
            {
                throw new ObjectDisposedException(nameof(InferenceExecutor), "the executor is shutting down");
            }

            _queue.Enqueue(item);
            Interlocked.Increment(ref _pending);
            if (_idle > 0)
            {
                Monitor.Pulse(_gate);
            }
        }

        return item.Task;
    }

    private void Work()
    {
        while (true)
        {
            WorkItem item;
            lock (_gate)
            {
                while (_queue.Count == 0)
                {
                    if (_stopping)
                    {
                        // Stopping and nothing left: work queued before Dispose has run.
                        return;
                    }

                    _idle++;
                    Monitor.Wait(_gate);
                    _idle--;
                }

                item = _queue.Dequeue();
            }

            item.Execute();
            Interlocked.Decrement(ref _pending);
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        lock (_gate)
        {
            _stopping = true;
            Monitor.PulseAll(_gate);
        }

        foreach (var thread in _threads)
        {
            thread.Join(TimeSpan.FromSeconds(5));
        }
    }

    private abstract class WorkItem
    {
        public abstract void Execute();
    }

    private sealed class WorkItem<TState, TResult>(Func<TState, TResult> work, TState state) : WorkItem
    {
        // Continuations must not run on the executor thread: they write responses and resume grain turns.
        private readonly TaskCompletionSource<TResult> _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Task<TResult> Task => _completion.Task;

        public override void Execute()
        {
            try
            {
                _completion.SetResult(work(state));
            }
            catch (Exception e)
            {
                _completion.SetException(e);
            }
        }
    }
}
