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
    public static readonly IReadOnlyList<string> ClusteringProviders = ["localhost"];

    /// <summary>The roles a process may take.</summary>
    public static readonly IReadOnlyList<string> Roles = ["all"];

    /// <summary>How the silo finds the others: <c>localhost</c> (one process, the default).</summary>
    public string Clustering { get; set; } = "localhost";

    /// <summary>What this process runs, comma-separated: <c>all</c> (silo and REST/gRPC front end, the default).</summary>
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
            if (!SiloOptions.Roles.Contains(role))
            {
                failures.Add($"--role '{role}' is not a role of this server; it takes {string.Join(", ", SiloOptions.Roles)}");
            }
        }

        Ports.Check(failures, "--silo-port", options.SiloPort);
        Ports.Check(failures, "--gateway-port", options.GatewayPort);
        if (options.ShutdownTimeoutSeconds is < 0 or > 3600)
        {
            failures.Add($"--shutdown-timeout must be between 0 and 3600 seconds, not {options.ShutdownTimeoutSeconds}");
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
