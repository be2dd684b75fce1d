using System.Net;
using StackExchange.Redis;

namespace Orleans.KServe.Silo;

/// <summary>
/// How this process joins its cluster, resolved from <see cref="SiloOptions"/> and the environment a pod gives it:
/// the provider, its connection (read from the setting or its file, never echoed), the cluster and service ids, the
/// address to advertise and the silo's name.
/// </summary>
public sealed record ClusterSettings(
    string Provider,
    string? Connection,
    string ClusterId,
    string ServiceId,
    IPAddress? AdvertisedAddress,
    string? SiloName,
    string? PodNamespace)
{
    /// <summary>The ids a cluster takes when nothing names them.</summary>
    public const string DefaultId = "kserve";

    /// <summary>
    /// Resolves the settings, adding a sentence to <paramref name="failures"/> for each problem. Precedence for the ids:
    /// <c>--cluster-id</c> / <c>KServe__ClusterId</c>, then Orleans' <c>ORLEANS_CLUSTER_ID</c> (and the same for the
    /// service id), then <see cref="DefaultId"/>; for the address: <c>--advertised-address</c>, then <c>POD_IP</c>.
    /// </summary>
    public static ClusterSettings Resolve(SiloOptions options, Func<string, string?> environment, List<string> failures)
    {
        var connection = ReadConnection(options, failures);
        switch (options.Clustering)
        {
            case "localhost" when connection is not null:
                failures.Add("a clustering connection is set but --clustering is localhost; name the provider it is for (--clustering redis)");
                break;
            case "redis" when connection is null && options.ClusteringConnectionFile is null:
                failures.Add("--clustering redis needs its connection string: set KServe__ClusteringConnection, or --clustering-connection-file naming a file that holds it");
                break;
            case "redis" when connection is not null && !IsRedisConfiguration(connection):
                failures.Add($"the clustering connection ({Source(options)}) is not a Redis configuration string such as host:port,password=...");
                break;
            case "postgres" when connection is null && options.ClusteringConnectionFile is null:
                failures.Add("--clustering postgres needs its connection string: set KServe__ClusteringConnection, or --clustering-connection-file naming a file that holds it");
                break;
            case "postgres" when connection is not null && !IsPostgresConnection(connection):
                failures.Add($"the clustering connection ({Source(options)}) is not a PostgreSQL connection string such as Host=...;Database=...;Username=...");
                break;
        }

        if (options.ClusteringInit && options.Clustering != "postgres")
        {
            failures.Add($"--clustering-init creates PostgreSQL tables; it needs --clustering postgres, not {options.Clustering}");
        }

        var address = Address(options.AdvertisedAddress, "--advertised-address", failures)
            ?? Address(Value(environment("POD_IP")), "POD_IP", failures);
        return new ClusterSettings(
            options.Clustering,
            connection,
            Id(options.ClusterId, environment("ORLEANS_CLUSTER_ID"), "--cluster-id", failures),
            Id(options.ServiceId, environment("ORLEANS_SERVICE_ID"), "--service-id", failures),
            address,
            Value(environment("POD_NAME")),
            Value(environment("POD_NAMESPACE")));
    }

    private static string? ReadConnection(SiloOptions options, List<string> failures)
    {
        var inline = Value(options.ClusteringConnection);
        if (options.ClusteringConnectionFile is not { } file)
        {
            return inline;
        }

        if (inline is not null)
        {
            failures.Add("the clustering connection is set both in KServe__ClusteringConnection and by --clustering-connection-file; set one");
            return null;
        }

        try
        {
            var text = Value(File.ReadAllText(file));
            if (text is null)
            {
                failures.Add($"--clustering-connection-file '{file}' is empty");
            }

            return text;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            failures.Add($"--clustering-connection-file '{file}' cannot be read: {e.GetType().Name}");
            return null;
        }
    }

    private static string Source(SiloOptions options) =>
        options.ClusteringConnectionFile is { } file ? $"in the file '{file}'" : "KServe__ClusteringConnection";

    private static bool IsRedisConfiguration(string connection)
    {
        try
        {
            return ConfigurationOptions.Parse(connection).EndPoints.Count > 0;
        }
        catch (Exception e) when (e is ArgumentException or FormatException or NotSupportedException)
        {
            return false;
        }
    }

    private static bool IsPostgresConnection(string connection)
    {
        try
        {
            var builder = new Npgsql.NpgsqlConnectionStringBuilder(connection);
            return !string.IsNullOrEmpty(builder.Host);
        }
        catch (Exception e) when (e is ArgumentException or FormatException or KeyNotFoundException or InvalidCastException)
        {
            return false;
        }
    }

    private static string Id(string? setting, string? orleans, string name, List<string> failures)
    {
        var id = Value(setting) ?? Value(orleans) ?? DefaultId;
        if (id.Any(c => char.IsWhiteSpace(c) || char.IsControl(c)))
        {
            failures.Add($"{name} must not contain spaces or control characters, not '{id}'");
        }

        return id;
    }

    private static IPAddress? Address(string? text, string name, List<string> failures)
    {
        if (text is null)
        {
            return null;
        }

        if (!IPAddress.TryParse(text, out var address) || address.Equals(IPAddress.Any) || address.Equals(IPAddress.IPv6Any))
        {
            failures.Add($"{name} must be an IP address other silos can reach, not '{text}'");
            return null;
        }

        return address;
    }

    private static string? Value(string? text) => string.IsNullOrWhiteSpace(text) ? null : text.Trim();
}
