using System.Net.Http.Json;
using System.Text.Json.Nodes;

namespace Orleans.KServe.FunctionalTests;

/// <summary>
/// Real silo processes of the built server on 127.0.0.1 forming one cluster in a membership store the caller
/// started (Redis or PostgreSQL), over a model repository of <c>double</c> only. Each process binds free ports;
/// the cluster id is unique, so clusters of different tests never meet even in one store.
/// </summary>
public sealed class SiloCluster : IAsyncDisposable
{
    public const string DoubleBody = """{"inputs":[{"name":"input","shape":[1,2],"datatype":"FP32","data":[1,2]}]}""";

    private readonly string _provider;
    private readonly string _connection;
    private readonly List<ServerProcess> _members = [];

    private SiloCluster(string provider, string connection)
    {
        _provider = provider;
        _connection = connection;
        LimitsServerFixture.WriteDoubleOnly(Repository);
    }

    public string ClusterId { get; } = "test-" + Guid.NewGuid().ToString("N")[..12];

    public string Repository { get; } = Directory.CreateTempSubdirectory("kserve-cluster-").FullName;

    /// <summary>The processes started, in order; a stopped one stays in the list.</summary>
    public IReadOnlyList<ServerProcess> Members => _members;

    /// <summary>Starts <paramref name="count"/> silos at once and waits until every one lists all as active.</summary>
    public static async Task<SiloCluster> StartAsync(string provider, string connection, int count, params string[] extra)
    {
        var cluster = new SiloCluster(provider, connection);
        try
        {
            var starting = Enumerable.Range(0, count).Select(_ => cluster.StartProcessAsync(extra)).ToArray();
            foreach (var server in await Task.WhenAll(starting))
            {
                cluster._members.Add(server);
            }

            await cluster.WaitForActiveAsync(count);
            return cluster;
        }
        catch
        {
            await cluster.DisposeAsync();
            throw;
        }
    }

    /// <summary>The arguments every member gets, before <paramref name="extra"/>.</summary>
    public string[] Arguments(params string[] extra) =>
    [
        "--clustering", _provider, "--cluster-id", ClusterId, "--advertised-address", "127.0.0.1",
        "--http-port", "0", "--grpc-port", "0", "--silo-port", "0", "--gateway-port", "0",
        "--model-repository", Repository, "--drain-delay", "1", .. extra,
    ];

    /// <summary>The environment every member gets: the store's connection string, which has no switch.</summary>
    public IReadOnlyDictionary<string, string> Environment => new Dictionary<string, string> { ["KServe__ClusteringConnection"] = _connection };

    private Task<ServerProcess> StartProcessAsync(string[] extra) => ServerProcess.StartAsync(Arguments(extra), Environment);

    /// <summary>Starts one more member and waits until every running member lists it as active.</summary>
    public async Task<ServerProcess> AddAsync(params string[] extra)
    {
        var server = await StartProcessAsync(extra);
        _members.Add(server);
        await WaitForActiveAsync(ActiveSilos);
        return server;
    }

    /// <summary>Starts a silo-only member (<c>--role silo</c>, no HTTP ports) and waits until the running front ends list it as active.</summary>
    public async Task<ServerProcess> AddSiloOnlyAsync(params string[] extra)
    {
        var server = await ServerProcess.StartSiloOnlyAsync(Arguments(["--role", "silo", .. extra]), Environment);
        _members.Add(server);
        await WaitForActiveAsync(ActiveSilos);
        return server;
    }

    /// <summary>Starts a front-end-only member (<c>--role frontend</c>, an Orleans client).</summary>
    public async Task<ServerProcess> AddFrontEndAsync(params string[] extra)
    {
        var server = await StartProcessAsync(["--role", "frontend", .. extra]);
        _members.Add(server);
        _frontEnds.Add(server);
        return server;
    }

    /// <summary>The running members that host a silo (every role but <c>frontend</c>).</summary>
    public int ActiveSilos => Running.Count(m => !_frontEnds.Contains(m));

    private readonly HashSet<ServerProcess> _frontEnds = [];

    /// <summary>The members whose process still runs.</summary>
    public IReadOnlyList<ServerProcess> Running => _members.Where(m => !m.Process.HasExited).ToList();

    /// <summary>The running members that serve REST and gRPC.</summary>
    public IReadOnlyList<ServerProcess> FrontEnds => Running.Where(m => m.SiloAddress is null).ToList();

    /// <summary>
    /// Waits until every running front end's (or each of <paramref name="on"/>'s) <c>GET /cluster</c> lists exactly
    /// <paramref name="count"/> silos as active.
    /// </summary>
    public async Task WaitForActiveAsync(int count, TimeSpan? timeout = null, IEnumerable<ServerProcess>? on = null)
    {
        foreach (var member in on ?? FrontEnds)
        {
            await Wait.ForAsync(
                async () => await TryStatusesAsync(member),
                statuses => statuses is not null && statuses.Count(s => s == "Active") == count,
                $"{member.BaseAddress} to list {count} active silos", timeout ?? TimeSpan.FromSeconds(60),
                statuses => statuses is null ? "no answer" : string.Join(", ", statuses));
        }
    }

    /// <summary>The member's view of the cluster.</summary>
    public static async Task<JsonObject> ClusterAsync(ServerProcess member)
    {
        using var http = new HttpClient { BaseAddress = member.BaseAddress, Timeout = TimeSpan.FromSeconds(30) };
        return (await http.GetFromJsonAsync<JsonObject>("/cluster"))!;
    }

    private static async Task<string[]?> TryStatusesAsync(ServerProcess member)
    {
        try
        {
            var cluster = await ClusterAsync(member);
            return cluster["silos"]!.AsArray().Select(s => (string)s!["status"]!).ToArray();
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
        {
            return null;
        }
    }

    /// <summary>
    /// The sum of a member's <c>/metrics</c> samples of <paramref name="name"/> (every label set, or only those holding
    /// <paramref name="label"/>, such as <c>model="double"</c>).
    /// </summary>
    public static async Task<double> MetricSumAsync(ServerProcess member, string name, string? label = null)
    {
        using var http = new HttpClient { BaseAddress = member.BaseAddress };
        var sum = 0.0;
        foreach (var line in (await http.GetStringAsync("/metrics")).Split('\n'))
        {
            if (line.StartsWith(name, StringComparison.Ordinal) && line.Length > name.Length && line[name.Length] is '{' or ' '
                && (label is null || line.Contains(label, StringComparison.Ordinal)))
            {
                sum += double.Parse(line[(line.LastIndexOf(' ') + 1)..], System.Globalization.CultureInfo.InvariantCulture);
            }
        }

        return sum;
    }

    /// <summary>Every process's output, for a failed assertion's message.</summary>
    public string Output => string.Join("\n", _members.Select((m, i) => $"--- member {i} (pid {m.Process.Id}) ---\n{m.Output}"));

    public async ValueTask DisposeAsync()
    {
        foreach (var member in _members)
        {
            await member.DisposeAsync();
        }

        Directory.Delete(Repository, recursive: true);
    }
}
