using Orleans.KServe.Contracts.Inference;
using Orleans.KServe.Contracts.Models;

namespace Orleans.KServe.Grains.Batching;

/// <summary>One request waiting in a <see cref="BatchPolicy{T}"/>.</summary>
public sealed class QueuedRequest<T>(T payload, long rows, string shapeKey, int priority, long sequence, DateTimeOffset enqueuedAt, DateTimeOffset? deadline)
{
    /// <summary>What the caller queued.</summary>
    public T Payload { get; } = payload;

    /// <summary>Rows it carries on the batch dimension.</summary>
    public long Rows { get; } = rows;

    /// <summary>Requests are batched together only when their keys (names, datatypes, non-batch dims, outputs) are equal.</summary>
    public string ShapeKey { get; } = shapeKey;

    /// <summary>Priority level, 1 the highest.</summary>
    public int Priority { get; } = priority;

    /// <summary>Arrival order.</summary>
    public long Sequence { get; } = sequence;

    /// <summary>When it was queued.</summary>
    public DateTimeOffset EnqueuedAt { get; } = enqueuedAt;

    /// <summary>When it times out in the queue, if it does.</summary>
    public DateTimeOffset? Deadline { get; } = deadline;

    internal LinkedListNode<QueuedRequest<T>>? Node { get; set; }
}

/// <summary>
/// The dynamic batching policy as a pure class: a priority queue of requests and the rule that decides when a
/// batch forms, driven by a <see cref="TimeProvider"/> and by calls, never by threads of its own. A batch forms
/// when the compatible rows waiting reach the maximum batch size or a preferred size, or when the oldest request
/// has waited the maximum queue delay. Requests with different shapes or datatypes never share a batch; a request
/// larger than the maximum runs alone. Not thread-safe: the owner serialises calls.
/// </summary>
public sealed class BatchPolicy<T>
{
    private readonly BatchingSettings _settings;
    private readonly TimeProvider _time;
    private readonly LinkedList<QueuedRequest<T>>[] _levels;
    private long _sequence;

    /// <summary>Creates the policy.</summary>
    public BatchPolicy(BatchingSettings settings, TimeProvider time)
    {
        _settings = settings;
        _time = time;
        _levels = new LinkedList<QueuedRequest<T>>[Math.Max(1, settings.PriorityLevels)];
        for (var i = 0; i < _levels.Length; i++)
        {
            _levels[i] = new LinkedList<QueuedRequest<T>>();
        }
    }

    /// <summary>Requests waiting.</summary>
    public int Count { get; private set; }

    // Queued requests that have a queue timeout: none (the usual case) spares the scans for expired ones.
    private int _withDeadline;

    private TimeSpan Delay => TimeSpan.FromMicroseconds(_settings.MaxQueueDelayMicroseconds);

    /// <summary>
    /// Queues a request. <paramref name="priority"/> and <paramref name="timeoutMicroseconds"/> are the request's
    /// own parameters (null when it named none). Throws <see cref="InferenceException"/>: 400 for a bad priority,
    /// RESOURCE_EXHAUSTED when the queue is full.
    /// </summary>
    public QueuedRequest<T> Enqueue(T payload, long rows, string shapeKey, long? priority, long? timeoutMicroseconds)
    {
        var level = _settings.DefaultPriorityLevel > 0 ? _settings.DefaultPriorityLevel : 1;
        if (priority is > 0)
        {
            if (_settings.PriorityLevels == 0 || priority > _settings.PriorityLevels)
            {
                throw InferenceException.Invalid(_settings.PriorityLevels == 0
                    ? $"priority {priority}: the model has no priority levels"
                    : $"priority {priority} is outside the model's levels 1 to {_settings.PriorityLevels}");
            }

            level = (int)priority.Value;
        }
        else if (priority < 0)
        {
            throw InferenceException.Invalid($"priority {priority} must not be negative");
        }

        if (_settings.MaxQueueSize > 0 && Count >= _settings.MaxQueueSize)
        {
            throw new InferenceException(InferenceErrorKind.ResourceExhausted,
                $"the model's queue is full ({_settings.MaxQueueSize} requests waiting); retry later");
        }

        var timeout = _settings.DefaultQueueTimeoutMicroseconds;
        if (timeoutMicroseconds is { } requested)
        {
            if (requested < 0)
            {
                throw InferenceException.Invalid($"timeout {requested} must not be negative");
            }

            if (_settings.AllowTimeoutOverride)
            {
                timeout = requested;
            }
        }

        var now = _time.GetUtcNow();
        var item = new QueuedRequest<T>(payload, rows, shapeKey, level, _sequence++, now, timeout > 0 ? now + TimeSpan.FromMicroseconds(timeout) : null);
        item.Node = _levels[level - 1].AddLast(item);
        Count++;
        if (item.Deadline is not null)
        {
            _withDeadline++;
        }

        return item;
    }

    /// <summary>Takes a request out of the queue (its caller left); false when it is no longer queued.</summary>
    public bool Remove(QueuedRequest<T> item)
    {
        if (item.Node?.List is not { } list)
        {
            return false;
        }

        list.Remove(item.Node);
        item.Node = null;
        Count--;
        if (item.Deadline is not null)
        {
            _withDeadline--;
        }

        return true;
    }

    /// <summary>Removes and returns every waiting request.</summary>
    public List<QueuedRequest<T>> TakeAll()
    {
        var all = new List<QueuedRequest<T>>(Count);
        foreach (var level in _levels)
        {
            all.AddRange(level);
            foreach (var item in level)
            {
                item.Node = null;
            }

            level.Clear();
        }

        Count = 0;
        _withDeadline = 0;
        return all;
    }

    /// <summary>Removes and returns the requests whose queue timeout has passed.</summary>
    public IReadOnlyList<QueuedRequest<T>> TakeExpired()
    {
        // Called on every dispatch: nothing is allocated unless something has expired.
        if (_withDeadline == 0)
        {
            return [];
        }

        List<QueuedRequest<T>>? expired = null;
        var now = _time.GetUtcNow();
        foreach (var level in _levels)
        {
            for (var node = level.First; node is not null;)
            {
                var next = node.Next;
                if (node.Value.Deadline <= now)
                {
                    (expired ??= []).Add(node.Value);
                    Remove(node.Value);
                }

                node = next;
            }
        }

        return expired is null ? [] : expired;
    }

    /// <summary>
    /// Takes the next batch when one is due: highest priority first, first come first served within a level, only
    /// requests compatible with the first one.
    /// </summary>
    public bool TryTakeBatch(out List<QueuedRequest<T>> batch)
    {
        batch = [];
        var head = First();
        if (head is null)
        {
            return false;
        }

        var max = _settings.MaxBatchSize;
        if (head.Rows >= max)
        {
            batch.Add(head);
            Remove(head);
            return true;
        }

        long rows = 0;
        var full = false;
        foreach (var level in _levels)
        {
            foreach (var item in level)
            {
                if (item.ShapeKey != head.ShapeKey)
                {
                    continue;
                }

                if (rows + item.Rows > max)
                {
                    full = true;
                    continue;
                }

                batch.Add(item);
                rows += item.Rows;
            }
        }

        full |= rows >= max;
        var due = full || _time.GetUtcNow() - head.EnqueuedAt >= Delay;
        if (!due && !_settings.PreferredBatchSizes.IsDefaultOrEmpty)
        {
            // A preferred size that the waiting rows reach goes at once, trimmed to that size.
            var preferred = _settings.PreferredBatchSizes.Where(p => p <= rows).DefaultIfEmpty(0).Max();
            if (preferred > 0)
            {
                long taken = 0;
                var trimmed = new List<QueuedRequest<T>>();
                foreach (var item in batch)
                {
                    if (taken + item.Rows > preferred)
                    {
                        break;
                    }

                    trimmed.Add(item);
                    taken += item.Rows;
                }

                if (taken == preferred)
                {
                    batch = trimmed;
                    due = true;
                }
            }
        }

        if (!due)
        {
            batch = [];
            return false;
        }

        foreach (var item in batch)
        {
            Remove(item);
        }

        return true;
    }

    /// <summary>How long until the policy may act without a new request (the oldest's delay or a deadline), or null when nothing waits.</summary>
    public TimeSpan? NextWakeUp()
    {
        if (NextWakeUpAt() is not { } wake)
        {
            return null;
        }

        var now = _time.GetUtcNow();
        return wake <= now ? TimeSpan.Zero : wake - now;
    }

    /// <summary>When the next batch falls due or the next queued request times out (null: nothing queued).</summary>
    public DateTimeOffset? NextWakeUpAt()
    {
        var head = First();
        if (head is null)
        {
            return null;
        }

        var wake = head.EnqueuedAt + Delay;
        if (_withDeadline == 0)
        {
            return wake;
        }

        foreach (var level in _levels)
        {
            foreach (var item in level)
            {
                if (item.Deadline is { } deadline && deadline < wake)
                {
                    wake = deadline;
                }
            }
        }

        return wake;
    }

    private QueuedRequest<T>? First()
    {
        foreach (var level in _levels)
        {
            if (level.First is { } first)
            {
                return first.Value;
            }
        }

        return null;
    }
}
