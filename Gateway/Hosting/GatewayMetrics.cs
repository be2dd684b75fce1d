using System.Diagnostics.Metrics;
using Orleans.KServe.Gateway.Routing;

namespace Orleans.KServe.Gateway;

/// <summary>The gateway's own instruments, on the Orleans.KServe meter of its container.</summary>
public sealed class GatewayMetrics : IDisposable
{
    private readonly Meter _meter;
    private readonly Counter<long> _retries;

    /// <summary>Creates the instruments on a meter from <paramref name="meterFactory"/>.</summary>
    public GatewayMetrics(IMeterFactory meterFactory)
    {
        _meter = meterFactory.Create(GatewayHostingExtensions.MeterName);
        _retries = _meter.CreateCounter<long>(
            "kserve_inference_retries", description: "Inference calls sent again because their replica's silo could not be reached or their replica was loading again.");
    }

    /// <summary>Counts one retry of a call to <paramref name="route"/>'s model.</summary>
    public void RecordRetry(ModelRoute route) =>
        _retries.Add(1, new KeyValuePair<string, object?>("model", route.Name), new KeyValuePair<string, object?>("version", route.Version));

    /// <inheritdoc />
    public void Dispose() => _meter.Dispose();
}
