using Orleans.KServe.Contracts.Inference;

namespace Orleans.KServe.Gateway.Routing;

/// <summary>
/// The gateway's global in-flight limit, shared by every transport: past <see cref="GatewayOptions.MaxInFlightRequests"/>
/// inference requests, new ones are refused with 503 / UNAVAILABLE instead of queueing without bound.
/// </summary>
public sealed class RequestAdmission(GatewayOptions options)
{
    private int _inFlight;

    /// <summary>Inference requests in progress.</summary>
    public int InFlight => Volatile.Read(ref _inFlight);

    /// <summary>Admits one request or throws 503; dispose the result when the request ends.</summary>
    public Ticket Enter()
    {
        if (Interlocked.Increment(ref _inFlight) > options.MaxInFlightRequests)
        {
            Interlocked.Decrement(ref _inFlight);
            throw InferenceException.Unavailable(
                $"the server is at its limit of {options.MaxInFlightRequests} inference requests in flight; retry later");
        }

        return new Ticket(this);
    }

    /// <summary>One admitted request.</summary>
    public readonly struct Ticket(RequestAdmission owner) : IDisposable
    {
        /// <summary>Leaves the admitted set.</summary>
        public void Dispose() => Interlocked.Decrement(ref owner._inFlight);
    }
}
