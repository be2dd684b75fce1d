using Orleans.KServe.Contracts.Inference;

namespace Orleans.KServe.Gateway.Serving;

/// <summary>
/// The bytes of requests the server holds at once, across every call on both transports: REST bodies as read and
/// as inflated, the tensors decoded from them, and gRPC messages from the moment their frame header declares their
/// length. A call whose next piece would take the total past <see cref="Limit"/> is refused (413 /
/// RESOURCE_EXHAUSTED) before that piece is allocated, so many small requests that inflate cannot add up to more
/// memory than the server has.
/// </summary>
public sealed class RequestBytesBudget(long limit)
{
    private long _held;

    /// <summary>The most request bytes held at once.</summary>
    public long Limit { get; } = limit > 0 ? limit : throw new ArgumentOutOfRangeException(nameof(limit), limit, "the budget must be positive");

    /// <summary>Request bytes held now.</summary>
    public long Held => Volatile.Read(ref _held);

    /// <summary>Takes <paramref name="bytes"/> from the budget, or throws 413 / RESOURCE_EXHAUSTED naming the setting.</summary>
    public void Reserve(long bytes)
    {
        if (bytes <= 0)
        {
            return;
        }

        var held = Interlocked.Add(ref _held, bytes);
        if (held > Limit && held != bytes)
        {
            // A single request larger than the whole budget is still let through alone: the per-request limits bound it.
            Interlocked.Add(ref _held, -bytes);
            throw new InferenceException(InferenceErrorKind.PayloadTooLarge,
                $"the server already holds {held - bytes} bytes of requests and this one needs {bytes} more, past its budget of {Limit} bytes " +
                "(--max-buffered-request-bytes); retry when fewer requests are in flight");
        }
    }

    /// <summary>Gives back bytes taken with <see cref="Reserve"/>.</summary>
    public void Release(long bytes)
    {
        if (bytes > 0)
        {
            Interlocked.Add(ref _held, -bytes);
        }
    }

    /// <summary>The default: a quarter of the memory this process may use (the container's limit where there is one), at least 64 MiB.</summary>
    public static long DefaultLimit()
    {
        var available = GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;
        return Math.Max(64L * 1024 * 1024, available / 4);
    }
}
