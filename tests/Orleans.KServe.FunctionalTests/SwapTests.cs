using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using Grpc.Net.Client;
using Microsoft.Extensions.DependencyInjection;
using Orleans.KServe.Contracts.Grains;
using Orleans.KServe.Grpc;
using Orleans.KServe.ModelTools;
using Orleans.Runtime;
using Xunit.Abstractions;

namespace Orleans.KServe.FunctionalTests;

/// <summary>
/// A server of its own serving one model, <c>swap</c>, whose YAML the tests point at a y = 2x or a y = 3x artifact
/// before they ask the repository extension to load it again.
/// </summary>
public class SwapServerFixture : ServerFixture
{
    protected override bool WriteSamples => false;

    public string YamlPath => Path.Combine(Repository, "swap.yaml");

    protected override void WriteMore(string folder)
    {
        DoubleModel.Build(2).Save(Path.Combine(folder, "times2", "model.onnx"));
        DoubleModel.Build(3).Save(Path.Combine(folder, "times3", "model.onnx"));
        PointAt(2);
    }

    /// <summary>Declares <c>swap</c> as the y = <paramref name="factor"/>·x artifact (read at the next load).</summary>
    public void PointAt(int factor) => PointAt($"times{factor}");

    /// <summary>Declares <c>swap</c> as the artifact in <paramref name="folder"/> of the repository.</summary>
    public void PointAt(string folder) => File.WriteAllText(YamlPath, $$"""
        apiVersion: serving.kserve.io/v1beta1
        kind: InferenceService
        metadata:
          name: swap
        spec:
          predictor:
            model:
              modelFormat: {name: onnx}
              storageUri: file://{{folder}}
        """);

    /// <summary>The revision the registry serves for <c>swap</c> now.</summary>
    public async Task<int> ServedRevisionAsync()
    {
        var table = await App.Services.GetRequiredService<IGrainFactory>().GetGrain<IModelRegistryGrain>(IModelRegistryGrain.ClusterKey).GetTableAsync();
        return table.Services.Single(s => s.Name == "swap").Revision;
    }

    /// <summary>The revisions of <c>swap</c> that have an active replica grain in the cluster.</summary>
    public async Task<int[]> ActiveRevisionsAsync()
    {
        var management = App.Services.GetRequiredService<IGrainFactory>().GetGrain<IManagementGrain>(0);
        var grains = await management.GetDetailedGrainStatistics();
        return grains.Select(g => g.GrainId.Key.ToString()!).Where(k => k.StartsWith("default/swap/", StringComparison.Ordinal))
            .Select(k => int.Parse(k.Split('/')[2], CultureInfo.InvariantCulture)).Distinct().Order().ToArray();
    }
}

/// <summary>The same server, whose gateway calls the model grain instead of taking the local fast path.</summary>
public sealed class SwapGrainPathServerFixture : SwapServerFixture
{
    protected override IEnumerable<string> ExtraArguments => ["--local-fast-path", "false"];
}

/// <summary>
/// Make-before-break swaps under load: REST and gRPC clients infer on <c>swap</c> in a loop while the artifact is
/// replaced, one load at a time and many at once. Every answer is one of the two artifacts', every request sent
/// after a load returned is answered by the artifact that load read, the old revision's replicas are gone soon
/// after, and no request fails.
/// </summary>
public abstract class SwapTestsBase(SwapServerFixture server, ITestOutputHelper output)
{
    private const int Clients = 6;

    private readonly record struct Sample(long Start, long End, int Factor, string? Error);

    [Fact]
    public async Task Swaps_one_at_a_time_under_load_lose_no_request_and_answer_with_the_new_artifact_once_load_returns()
    {
        using var channel = GrpcChannel.ForAddress(server.GrpcAddress);
        var grpc = new GRPCInferenceService.GRPCInferenceServiceClient(channel);
        await using var load = StartLoad(channel);

        const int swaps = 20;
        var windows = new List<(long From, long To, int Factor)>();
        var factor = 2;
        for (var i = 0; i < swaps; i++)
        {
            var written = Stopwatch.GetTimestamp();
            if (windows.Count > 0)
            {
                windows[^1] = windows[^1] with { To = written };
            }

            factor = factor == 2 ? 3 : 2;
            server.PointAt(factor);
            if (i % 2 == 0)
            {
                var answer = await server.PostJsonAsync("/v2/repository/models/swap/load", "");
                Assert.Equal(200, answer.Status);
                Assert.Equal(200, (await server.GetJsonAsync("/v2/models/swap/ready")).Status);
            }
            else
            {
                // Triton's client asks is_model_ready right after load_model returns.
                Assert.True((await grpc.RepositoryModelLoadAsync(new RepositoryModelLoadRequest { ModelName = "swap" })).IsLoaded);
                Assert.True((await grpc.ModelReadyAsync(new ModelReadyRequest { Name = "swap" })).Ready, $"swap {i}: not ready right after load answered");
            }

            windows.Add((Stopwatch.GetTimestamp(), long.MaxValue, factor));
            await OldRevisionsGoneAsync($"swap {i}");
            await load.WaitForMoreAsync(100);
        }

        await load.WaitForTotalAsync(2000);
        var samples = await load.StopAsync();
        Report("one load at a time", swaps, samples);
        AssertEveryAnswerIsOneOfTheArtifacts(samples);
        foreach (var (from, to, expected) in windows)
        {
            // Sent after this load returned and answered before the next one began: nothing but this artifact could answer.
            var wrong = samples.Where(s => s.Start >= from && s.End < to && s.Factor != expected).ToList();
            Assert.True(wrong.Count == 0, $"{wrong.Count} requests sent after the load of the {expected}x artifact returned were answered {string.Join(", ", wrong.Take(5).Select(w => w.Factor + "x"))}");
            Assert.True(samples.Count(s => s.Start >= from && s.End < to) >= 50, $"fewer than 50 requests were answered after the load of the {expected}x artifact");
        }
    }

    [Fact]
    public async Task Many_loads_at_once_under_load_lose_no_request_and_leave_one_revision()
    {
        using var channel = GrpcChannel.ForAddress(server.GrpcAddress);
        var grpc = new GRPCInferenceService.GRPCInferenceServiceClient(channel);
        await using var load = StartLoad(channel);
        await load.WaitForMoreAsync(50);

        const int rounds = 2;
        const int loadsAtOnce = 50;
        var factor = await CurrentFactorAsync();
        var swaps = 0;
        for (var round = 0; round < rounds; round++)
        {
            factor = factor == 2 ? 3 : 2;
            server.PointAt(factor);
            var loads = Enumerable.Range(0, loadsAtOnce).Select(async i =>
            {
                if (i % 2 == 0)
                {
                    Assert.Equal(200, (await server.PostJsonAsync("/v2/repository/models/swap/load", "")).Status);
                }
                else
                {
                    Assert.True((await grpc.RepositoryModelLoadAsync(new RepositoryModelLoadRequest { ModelName = "swap" })).IsLoaded);
                }
            });
            await Task.WhenAll(loads);
            swaps += loadsAtOnce;
            var returned = Stopwatch.GetTimestamp();
            await OldRevisionsGoneAsync($"round {round}");
            await load.WaitForMoreAsync(400);

            var samples = load.Snapshot();
            var wrong = samples.Where(s => s.Start >= returned && s.Factor != factor).ToList();
            Assert.True(wrong.Count == 0, $"round {round}: {wrong.Count} requests sent after every load returned were not answered {factor}x");
        }

        await load.WaitForTotalAsync(2000);
        var all = await load.StopAsync();
        Report($"{loadsAtOnce} loads at once", swaps, all);
        AssertEveryAnswerIsOneOfTheArtifacts(all);
    }

    [Fact]
    public async Task A_load_whose_artifact_cannot_load_leaves_the_serving_revision_serving()
    {
        var factor = await CurrentFactorAsync();
        var served = await server.ServedRevisionAsync();
        Directory.CreateDirectory(Path.Combine(server.Repository, "not-onnx"));
        File.WriteAllText(Path.Combine(server.Repository, "not-onnx", "model.onnx"), "this is not an ONNX model");
        using var channel = GrpcChannel.ForAddress(server.GrpcAddress);
        await using var load = StartLoad(channel);
        try
        {
            server.PointAt("not-onnx");
            var (status, body) = await server.PostJsonAsync("/v2/repository/models/swap/load", "");
            Assert.Equal(400, status);
            Assert.Contains("failed to load", Json.Error(body));
            Assert.Contains("keeps serving", Json.Error(body));
            await load.WaitForMoreAsync(200);
        }
        finally
        {
            server.PointAt(factor);
        }

        var samples = await load.StopAsync();
        Assert.Equal(served, await server.ServedRevisionAsync());
        Assert.All(samples, s => Assert.True(s.Factor == factor, $"an answer of {s.Factor}x ({s.Error}) while {factor}x served"));
        var index = (await server.PostJsonAsync("/v2/repository/index", "{}")).Body!.AsArray();
        Assert.Equal("READY", index.Single(e => e!["name"]!.GetValue<string>() == "swap")!["state"]!.GetValue<string>());
        await OldRevisionsGoneAsync("the failed load");
    }

    private async Task<int> CurrentFactorAsync()
    {
        var (status, body) = await server.PostJsonAsync("/v2/models/swap/infer", Body);
        Assert.Equal(200, status);
        return (int)Json.Floats(body!["outputs"]![0]!["data"])[0];
    }

    private async Task OldRevisionsGoneAsync(string what)
    {
        var served = await server.ServedRevisionAsync();
        await Wait.ForAsync(server.ActiveRevisionsAsync, active => active.All(r => r == served),
            $"{what}: only revision {served} of 'swap' to have active replicas", TimeSpan.FromSeconds(10), active => string.Join(",", active));
    }

    private void Report(string kind, int swaps, IReadOnlyList<Sample> samples)
    {
        var failures = samples.Count(s => s.Factor == 0);
        output.WriteLine($"{kind}: {swaps} loads, {samples.Count} requests, {failures} failures, " +
            $"{samples.Count(s => s.Factor == 2)} answered 2x, {samples.Count(s => s.Factor == 3)} answered 3x");
    }

    private static void AssertEveryAnswerIsOneOfTheArtifacts(IReadOnlyList<Sample> samples)
    {
        var failures = samples.Where(s => s.Factor == 0).ToList();
        Assert.True(failures.Count == 0, $"{failures.Count} of {samples.Count} requests failed during the swaps; first: {failures.FirstOrDefault().Error}");
        Assert.All(samples, s => Assert.True(s.Factor is 2 or 3, $"an answer of {s.Factor}x"));
        Assert.True(samples.Count >= 2000, $"only {samples.Count} requests ran during the swaps");
    }

    private const string Body = """{"inputs":[{"name":"input","shape":[1,2],"datatype":"FP32","data":[1,2]}]}""";

    private Load StartLoad(GrpcChannel channel) => new(server, channel);

    /// <summary>REST and gRPC clients inferring in a loop, every answer recorded with when it was sent.</summary>
    private sealed class Load : IAsyncDisposable
    {
        private readonly CancellationTokenSource _stop = new();
        private readonly ConcurrentQueue<Sample> _samples = new();
        private readonly List<Task> _clients = [];
        private readonly HttpClient _http;

        public Load(ServerFixture server, GrpcChannel channel)
        {
            _http = new HttpClient { BaseAddress = server.BaseAddress, Timeout = TimeSpan.FromSeconds(30) };
            var grpc = new GRPCInferenceService.GRPCInferenceServiceClient(channel);
            for (var i = 0; i < Clients; i++)
            {
                _clients.Add(i % 3 == 2 ? Task.Run(() => GrpcLoopAsync(grpc)) : Task.Run(RestLoopAsync));
            }
        }

        private async Task RestLoopAsync()
        {
            while (!_stop.IsCancellationRequested)
            {
                var start = Stopwatch.GetTimestamp();
                try
                {
                    using var content = new StringContent(Body, Encoding.UTF8, "application/json");
                    using var response = await _http.PostAsync("/v2/models/swap/infer", content);
                    var text = await response.Content.ReadAsStringAsync();
                    var factor = response.IsSuccessStatusCode ? (int)JsonNode.Parse(text)!["outputs"]![0]!["data"]![0]!.GetValue<float>() : 0;
                    _samples.Enqueue(new Sample(start, Stopwatch.GetTimestamp(), factor, factor == 0 ? $"{(int)response.StatusCode} {text}" : null));
                }
                catch (Exception e)
                {
                    _samples.Enqueue(new Sample(start, Stopwatch.GetTimestamp(), 0, e.Message));
                }
            }
        }

        private async Task GrpcLoopAsync(GRPCInferenceService.GRPCInferenceServiceClient grpc)
        {
            while (!_stop.IsCancellationRequested)
            {
                var start = Stopwatch.GetTimestamp();
                try
                {
                    var request = new ModelInferRequest { ModelName = "swap" };
                    var input = new ModelInferRequest.Types.InferInputTensor { Name = "input", Datatype = "FP32", Contents = new InferTensorContents() };
                    input.Shape.Add([1, 2]);
                    input.Contents.Fp32Contents.Add([1f, 2f]);
                    request.Inputs.Add(input);
                    var response = await grpc.ModelInferAsync(request, deadline: DateTime.UtcNow.AddSeconds(30));
                    var value = BitConverter.ToSingle(response.RawOutputContents.Count > 0
                        ? response.RawOutputContents[0].Span
                        : BitConverter.GetBytes(response.Outputs[0].Contents.Fp32Contents[0]));
                    _samples.Enqueue(new Sample(start, Stopwatch.GetTimestamp(), (int)value, null));
                }
                catch (Exception e)
                {
                    _samples.Enqueue(new Sample(start, Stopwatch.GetTimestamp(), 0, e.Message));
                }
            }
        }

        /// <summary>Waits until <paramref name="count"/> more answers have arrived, so that every window sees traffic.</summary>
        public Task WaitForMoreAsync(int count)
        {
            var target = _samples.Count + count;
            return Wait.UntilAsync(() => _samples.Count >= target, $"{count} more answers under load");
        }

        /// <summary>Waits until <paramref name="count"/> answers have arrived in all.</summary>
        public Task WaitForTotalAsync(int count) => Wait.UntilAsync(() => _samples.Count >= count, $"{count} answers under load in all");

        public IReadOnlyList<Sample> Snapshot() => _samples.ToArray();

        public async Task<IReadOnlyList<Sample>> StopAsync()
        {
            _stop.Cancel();
            await Task.WhenAll(_clients);
            return _samples.ToArray();
        }

        public async ValueTask DisposeAsync()
        {
            if (!_stop.IsCancellationRequested)
            {
                await StopAsync();
            }

            _http.Dispose();
            _stop.Dispose();
        }
    }
}

public sealed class SwapTests(SwapServerFixture server, ITestOutputHelper output)
    : SwapTestsBase(server, output), IClassFixture<SwapServerFixture>;

public sealed class SwapGrainPathTests(SwapGrainPathServerFixture server, ITestOutputHelper output)
    : SwapTestsBase(server, output), IClassFixture<SwapGrainPathServerFixture>;
