using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;
using Grpc.Net.Client;
using Orleans.KServe.Grpc;
using Xunit.Abstractions;

namespace Orleans.KServe.FunctionalTests;

/// <summary>Debian's redis-server and three silo processes of the built server forming one cluster in it.</summary>
public sealed class RedisClusterFixture : IAsyncLifetime
{
    private RedisServer? _redis;

    public RedisServer Redis => _redis!;

    public SiloCluster Cluster { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        _redis = await RedisServer.StartAsync();
        Cluster = await SiloCluster.StartAsync("redis", _redis.Connection, 3);
    }

    /// <summary><c>double</c>'s artifact served again as <c>double3</c> with <c>minReplicas: 3</c>.</summary>
    public const string ReplicatedYaml = """
        apiVersion: serving.kserve.io/v1beta1
        kind: InferenceService
        metadata:
          name: double3
        spec:
          predictor:
            minReplicas: 3
            model:
              modelFormat: {name: onnx}
              storageUri: file://double
        """;

    public async Task DisposeAsync()
    {
        if (Cluster is not null)
        {
            await Cluster.DisposeAsync();
        }

        if (_redis is not null)
        {
            await _redis.DisposeAsync();
        }
    }
}

/// <summary>
/// Three silo processes on Redis membership: each lists the others, the model answers through every front end from
/// one replica, a late joiner becomes active and a silo that stops leaves the cluster.
/// </summary>
public sealed class RedisClusterTests(RedisClusterFixture fixture, ITestOutputHelper output) : IClassFixture<RedisClusterFixture>
{
    private SiloCluster Cluster => fixture.Cluster;

    [Fact]
    public async Task Every_silo_lists_the_three_with_their_role_address_and_start_time()
    {
        foreach (var member in Cluster.FrontEnds)
        {
            var view = await SiloCluster.ClusterAsync(member);
            var active = view["silos"]!.AsArray().Where(s => (string)s!["status"]! == "Active").ToList();
            Assert.True(active.Count(s => (string?)s!["role"] == "all") >= 3, view.ToJsonString());
            Assert.All(active, s =>
            {
                Assert.Contains((string?)s!["role"], new[] { "all", "silo" });
                Assert.Equal((string?)s["role"], (string?)s["labels"]!["kserve.role"]);
                Assert.StartsWith("127.0.0.1:", (string)s["address"]!);
                Assert.True(DateTimeOffset.Parse((string)s["since"]!) <= DateTimeOffset.UtcNow);
                Assert.False(string.IsNullOrEmpty((string?)s["name"]));
            });
        }
    }

    [Fact]
    public async Task The_model_answers_through_every_front_end_over_REST_and_gRPC_from_one_replica()
    {
        foreach (var member in Cluster.FrontEnds)
        {
            using var http = new HttpClient { BaseAddress = member.BaseAddress, Timeout = TimeSpan.FromSeconds(30) };
            using var response = await http.PostAsync("/v2/models/double/infer", new StringContent(SiloCluster.DoubleBody, Encoding.UTF8, "application/json"));
            var body = await response.Content.ReadAsStringAsync();
            Assert.True(response.IsSuccessStatusCode, body);
            Assert.Equal([2f, 4f], JsonNode.Parse(body)!["outputs"]![0]!["data"]!.AsArray().Select(v => (float)v!));

            await GrpcInferAsync(member);
        }

        // Every front end reached the one replica of the revision that serves, wherever it was activated.
        foreach (var member in Cluster.FrontEnds)
        {
            var view = await SiloCluster.ClusterAsync(member);
            var replicas = view["replicas"]!.AsArray().Where(r => (string)r!["model"]! == "double").ToList();
            Assert.True(replicas.Count == 1, view.ToJsonString());
            var silos = view["silos"]!.AsArray().Select(s => (string)s!["address"]!).ToHashSet();
            Assert.Contains((string)replicas[0]!["silo"]!, silos);
        }
    }

    [Fact]
    public async Task A_silo_that_joins_late_becomes_active_and_one_stopped_by_SIGTERM_leaves_while_the_others_serve()
    {
        var before = Cluster.ActiveSilos;
        var late = await Cluster.AddAsync();
        output.WriteLine($"joined: {late.BaseAddress}");
        using (var http = new HttpClient { BaseAddress = late.BaseAddress, Timeout = TimeSpan.FromSeconds(30) })
        {
            using var response = await http.PostAsync("/v2/models/double/infer", new StringContent(SiloCluster.DoubleBody, Encoding.UTF8, "application/json"));
            Assert.True(response.IsSuccessStatusCode, await response.Content.ReadAsStringAsync());
        }

        var address = (string)(await SiloCluster.ClusterAsync(late))["self"]!;
        late.Signal(ServerProcess.SigTerm);
        using var exited = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await late.Process.WaitForExitAsync(exited.Token);
        Assert.True(late.Process.ExitCode == 0, late.Output);

        await Cluster.WaitForActiveAsync(before);
        foreach (var member in Cluster.FrontEnds)
        {
            var view = await SiloCluster.ClusterAsync(member);
            var left = view["silos"]!.AsArray().Single(s => (string)s!["address"]! == address)!;
            Assert.Equal("Dead", (string?)left["status"]);
            using var http = new HttpClient { BaseAddress = member.BaseAddress, Timeout = TimeSpan.FromSeconds(30) };
            using var response = await http.PostAsync("/v2/models/double/infer", new StringContent(SiloCluster.DoubleBody, Encoding.UTF8, "application/json"));
            Assert.True(response.IsSuccessStatusCode, await response.Content.ReadAsStringAsync());
        }
    }

    [Fact]
    public async Task A_silo_only_process_hosts_models_without_HTTP_ports_and_a_front_end_only_process_serves_without_a_silo()
    {
        var silos = Cluster.ActiveSilos;
        var siloOnly = await Cluster.AddSiloOnlyAsync();
        var frontEnd = await Cluster.AddFrontEndAsync();
        try
        {
            Assert.DoesNotContain("Serving REST", siloOnly.Output);
            Assert.Equal(2, ListeningPorts(siloOnly.Process.Id).Count);

            // The front end is no silo: it lists the silos, the silo-only one with its role, and is none of them.
            var view = await SiloCluster.ClusterAsync(frontEnd);
            Assert.Equal("frontend", (string?)view["self"]);
            var active = view["silos"]!.AsArray().Where(x => (string)x!["status"]! == "Active").ToList();
            Assert.Equal(silos + 1, active.Count);
            Assert.Equal("silo", (string?)active.Single(x => (string)x!["address"]! == siloOnly.SiloAddress)!["role"]);

            await InferAsync(frontEnd, [1f, 2f], [2f, 4f]);
            await GrpcInferAsync(frontEnd);

            // The front end reaches the cluster through whichever silo gateway answers: with one of them gone it serves on.
            siloOnly.Signal(ServerProcess.SigTerm);
            using (var exited = new CancellationTokenSource(TimeSpan.FromSeconds(60)))
            {
                await siloOnly.Process.WaitForExitAsync(exited.Token);
            }

            Assert.True(siloOnly.Process.ExitCode == 0, siloOnly.Output);
            await Cluster.WaitForActiveAsync(silos);
            for (var i = 0; i < 20; i++)
            {
                await InferAsync(frontEnd, [i, 1f], [2f * i, 2f]);
            }
        }
        catch
        {
            output.WriteLine(frontEnd.Output);
            throw;
        }
        finally
        {
            if (!frontEnd.Process.HasExited)
            {
                frontEnd.Signal(ServerProcess.SigTerm);
                using var exited = new CancellationTokenSource(TimeSpan.FromSeconds(60));
                await frontEnd.Process.WaitForExitAsync(exited.Token);
                output.WriteLine($"front end exited with {frontEnd.Process.ExitCode}");
            }
        }

        Assert.True(frontEnd.Process.ExitCode == 0, frontEnd.Output);
    }

    [Fact]
    public async Task A_model_loaded_into_the_cluster_with_minReplicas_3_gets_one_replica_per_silo_and_load_through_one_front_end_reaches_all_three()
    {
        // Declared once the three silos are up (the repository extension's load), so that placement sees all three.
        var frontEnd = Cluster.FrontEnds[0];
        File.WriteAllText(Path.Combine(Cluster.Repository, "double3.yaml"), RedisClusterFixture.ReplicatedYaml);
        using (var load = new HttpClient { BaseAddress = frontEnd.BaseAddress, Timeout = TimeSpan.FromSeconds(60) })
        {
            using var loaded = await load.PostAsync("/v2/repository/models/double3/load", null);
            Assert.True(loaded.IsSuccessStatusCode, await loaded.Content.ReadAsStringAsync());
        }

        var view = await SiloCluster.ClusterAsync(frontEnd);
        var replicas = view["replicas"]!.AsArray().Where(r => (string)r!["model"]! == "double3").ToList();
        Assert.True(replicas.Count == 3, view.ToJsonString());
        Assert.Equal([0, 1, 2], replicas.Select(r => (int)r!["replica"]!).Order());
        Assert.Equal(3, replicas.Select(r => (string)r!["silo"]!).Distinct().Count());

        var before = new Dictionary<ServerProcess, double>();
        foreach (var member in Cluster.FrontEnds.Take(3))
        {
            before[member] = await SuccessesAsync(member, "double3");
        }

        // Eight at a time through one front end: the choice spreads them over the three replicas.
        using var http = new HttpClient { BaseAddress = frontEnd.BaseAddress, Timeout = TimeSpan.FromSeconds(30) };
        for (var round = 0; round < 40; round++)
        {
            var calls = Enumerable.Range(0, 8).Select(async _ =>
            {
                using var response = await http.PostAsync("/v2/models/double3/infer", new StringContent(SiloCluster.DoubleBody, Encoding.UTF8, "application/json"));
                Assert.True(response.IsSuccessStatusCode, await response.Content.ReadAsStringAsync());
            });
            await Task.WhenAll(calls);
        }

        foreach (var member in before.Keys)
        {
            var grown = await SuccessesAsync(member, "double3") - before[member];
            output.WriteLine($"{member.BaseAddress}: {grown} calls of double3 executed on its silo");
            Assert.True(grown > 0, $"no call reached the replica on {member.BaseAddress}");
        }
    }

    /// <summary>The silo's own count of successful inferences of <paramref name="model"/> (Triton's nv_inference_request_success).</summary>
    private static Task<double> SuccessesAsync(ServerProcess member, string model) =>
        SiloCluster.MetricSumAsync(member, "nv_inference_request_success_total", $"model=\"{model}\"");

    private static async Task InferAsync(ServerProcess member, float[] input, float[] expected)
    {
        using var http = new HttpClient { BaseAddress = member.BaseAddress, Timeout = TimeSpan.FromSeconds(30) };
        var body = $$"""{"inputs":[{"name":"input","shape":[1,2],"datatype":"FP32","data":[{{input[0]}},{{input[1]}}]}]}""";
        using var response = await http.PostAsync("/v2/models/double/infer", new StringContent(body, Encoding.UTF8, "application/json"));
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, text);
        Assert.Equal(expected, JsonNode.Parse(text)!["outputs"]![0]!["data"]!.AsArray().Select(v => (float)v!));
    }

    private static async Task GrpcInferAsync(ServerProcess member)
    {
        using var channel = GrpcChannel.ForAddress(member.GrpcAddress);
        var request = new ModelInferRequest { ModelName = "double" };
        var input = new ModelInferRequest.Types.InferInputTensor { Name = "input", Datatype = "FP32", Contents = new InferTensorContents() };
        input.Shape.AddRange([1, 2]);
        input.Contents.Fp32Contents.AddRange([3f, 5f]);
        request.Inputs.Add(input);
        var answer = await new GRPCInferenceService.GRPCInferenceServiceClient(channel).ModelInferAsync(request);
        Assert.Equal([6f, 10f], answer.Outputs[0].Contents.Fp32Contents.Count > 0
            ? answer.Outputs[0].Contents.Fp32Contents
            : Floats(answer.RawOutputContents[0].ToByteArray()));
    }

    /// <summary>The TCP ports process <paramref name="pid"/> listens on, from its socket descriptors and /proc/net/tcp{,6}.</summary>
    private static List<int> ListeningPorts(int pid)
    {
        var inodes = new HashSet<string>();
        foreach (var fd in Directory.EnumerateFiles($"/proc/{pid}/fd"))
        {
            var target = new FileInfo(fd).LinkTarget;
            if (target is not null && target.StartsWith("socket:[", StringComparison.Ordinal))
            {
                inodes.Add(target[8..^1]);
            }
        }

        var ports = new List<int>();
        foreach (var table in new[] { "/proc/net/tcp", "/proc/net/tcp6" })
        {
            foreach (var line in File.ReadLines(table).Skip(1))
            {
                var fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                if (fields[3] == "0A" && inodes.Contains(fields[9]))
                {
                    ports.Add(Convert.ToInt32(fields[1][(fields[1].LastIndexOf(':') + 1)..], 16));
                }
            }
        }

        return ports.Distinct().ToList();
    }

    private static float[] Floats(byte[] raw)
    {
        var values = new float[raw.Length / 4];
        Buffer.BlockCopy(raw, 0, values, 0, raw.Length);
        return values;
    }
}
