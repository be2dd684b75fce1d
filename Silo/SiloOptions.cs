using Microsoft.Extensions.Options;
using Orleans.KServe.Gateway;

namespace Orleans.KServe.Silo;

/// <summary>
/// The silo process's own settings: how it joins a cluster, what it runs, how long it takes to stop. Bound from the
/// <c>KServe</c> configuration section like every other setting.
/// </summary>
public sealed class SiloOptions
{
    /// <summary>The clustering providers this build offers.</summary>
    public static readonly IReadOnlyList<string> ClusteringProviders = ["localhost", "redis", "postgres"];

    /// <summary>The roles a process may take.</summary>
    public static readonly IReadOnlyList<string> Roles = ServerRoles.Names;

    /// <summary>
    /// How the silo finds the others: <c>localhost</c> (one process, the default), <c>redis</c> (membership in Redis)
    /// or <c>postgres</c> (Orleans' ADO.NET membership in PostgreSQL), for several processes on one or several machines.
    /// </summary>
    public string Clustering { get; set; } = "localhost";

    /// <summary>
    /// The membership store's connection string (<c>KServe__ClusteringConnection</c> in the environment, or
    /// appsettings; it has no command-line switch, so that it stays out of process listings). Never echoed.
    /// </summary>
    public string? ClusteringConnection { get; set; }

    /// <summary>
    /// With <c>postgres</c>: create or update the membership and registry tables and queries at start (idempotent,
    /// safe from many processes at once). Default false: the tables were made by <c>psql -f Silo/Clustering/postgres-schema.sql</c>.
    /// </summary>
    public bool ClusteringInit { get; set; }

    /// <summary>A file holding the connection string instead (a mounted secret); surrounding whitespace is ignored.</summary>
    public string? ClusteringConnectionFile { get; set; }

    /// <summary>The cluster's id: silos with the same id and store form one cluster. Wins over <c>ORLEANS_CLUSTER_ID</c>.</summary>
    public string? ClusterId { get; set; }

    /// <summary>The service's id, which outlives clusters (Orleans keys persisted state by it). Wins over <c>ORLEANS_SERVICE_ID</c>.</summary>
    public string? ServiceId { get; set; }

    /// <summary>
    /// The IP address other silos and clients reach this silo at. Default: <c>POD_IP</c> when set, else the address
    /// Orleans picks for the host name.
    /// </summary>
    public string? AdvertisedAddress { get; set; }

    /// <summary>
    /// What this process runs, comma-separated: <c>all</c> (silo and REST/gRPC front end, the default), <c>silo</c>
    /// (hosts models, no HTTP ports) or <c>frontend</c> (an Orleans client serving REST and gRPC, hosting no models).
    /// </summary>
    public string Role { get; set; } = "all";

    /// <summary>Orleans silo-to-silo port. Default 11111; 0 = any free port.</summary>
    public int SiloPort { get; set; } = 11111;

    /// <summary>Orleans client gateway port. Default 30000; 0 = any free port.</summary>
    public int GatewayPort { get; set; } = 30000;

    /// <summary>
    /// How long the server waits for requests in flight once its listeners have closed, seconds. Default 20: with the
    /// default drain delay the whole stop fits in Kubernetes' default grace period of 30 s.
    /// </summary>
    public int ShutdownTimeoutSeconds { get; set; } = 20;

    /// <summary>The command-line switch of each setting, and the property it sets.</summary>
    public static IReadOnlyDictionary<string, string> Switches { get; } = new Dictionary<string, string>
    {
        ["--clustering"] = nameof(Clustering),
        ["--clustering-connection-file"] = nameof(ClusteringConnectionFile),
        ["--clustering-init"] = nameof(ClusteringInit),
        ["--cluster-id"] = nameof(ClusterId),
        ["--service-id"] = nameof(ServiceId),
        ["--advertised-address"] = nameof(AdvertisedAddress),
        ["--role"] = nameof(Role),
        ["--silo-port"] = nameof(SiloPort),
        ["--gateway-port"] = nameof(GatewayPort),
        ["--shutdown-timeout"] = nameof(ShutdownTimeoutSeconds),
    };
}

/// <summary>Reports every invalid silo setting at once, each by its switch.</summary>
public sealed class SiloOptionsValidator : IValidateOptions<SiloOptions>
{
    /// <inheritdoc />
    public ValidateOptionsResult Validate(string? name, SiloOptions options)
    {
        var failures = new List<string>();
        if (!SiloOptions.ClusteringProviders.Contains(options.Clustering))
        {
            failures.Add($"--clustering '{options.Clustering}' is not available; this server offers {string.Join(", ", SiloOptions.ClusteringProviders)}");
        }

        foreach (var role in options.Role.Split(',', StringSplitOptions.TrimEntries))
        {
            if (role == "operator")
            {
                failures.Add("--role 'operator' is not offered yet: the Kubernetes operator runs in no process of this build");
            }
            else if (!SiloOptions.Roles.Contains(role))
            {
                failures.Add($"--role '{role}' is not a role of this server; it takes {string.Join(", ", SiloOptions.Roles)}, comma-separated");
            }
        }

        ClusterSettings.Resolve(options, Environment.GetEnvironmentVariable, failures);
        Ports.Check(failures, "--silo-port", options.SiloPort);
        Ports.Check(failures, "--gateway-port", options.GatewayPort);
        if (options.ShutdownTimeoutSeconds is < 0 or > 3600)
        {
            failures.Add($"--shutdown-timeout must be between 0 and 3600 seconds, not {options.ShutdownTimeoutSeconds}");
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
