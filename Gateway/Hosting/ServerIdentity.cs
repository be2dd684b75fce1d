namespace Orleans.KServe.Gateway;

/// <summary>
/// Who this server is, for everything that names it: its router in the model registry and its telemetry
/// (OpenTelemetry's <c>service.instance.id</c>). One per server, so that two servers in one process are told apart.
/// </summary>
public sealed class ServerIdentity
{
    /// <summary>The machine, the process and a random part that tells two servers of one process apart.</summary>
    public string InstanceId { get; } = $"{Environment.MachineName}/{Environment.ProcessId}/{Guid.NewGuid().ToString("N")[..12]}";
}
