using Grpc.Core;
using Grpc.Net.Client;
using Orleans.KServe.Grpc;

namespace Orleans.KServe.FunctionalTests;

/// <summary>A server of its own: these tests unload, load and add models.</summary>
public sealed class RepositoryServerFixture : ServerFixture;

public sealed class RepositoryTests(RepositoryServerFixture server) : IClassFixture<RepositoryServerFixture>
{
    private const string DoubleBody = """{"inputs":[{"name":"input","shape":[1,2],"datatype":"FP32","data":[1,2]}]}""";

    [Fact]
    public async Task Unload_stops_serving_and_load_serves_again()
    {
        var unload = await server.PostJsonAsync("/v2/repository/models/double/unload", "");
        Assert.Equal(200, unload.Status);
        Assert.True(unload.Body!["unload"]!.GetValue<bool>());

        var index = (await server.PostJsonAsync("/v2/repository/index", "{}")).Body!.AsArray();
        var entry = index.Single(e => e!["name"]!.GetValue<string>() == "double")!;
        Assert.Equal("UNAVAILABLE", entry["state"]!.GetValue<string>());
        Assert.Contains("unloaded", entry["reason"]!.GetValue<string>());

        var infer = await server.PostJsonAsync("/v2/models/double/infer", DoubleBody);
        Assert.Equal(503, infer.Status);
        Assert.Contains("unloaded", Json.Error(infer.Body));
        Assert.Equal(503, (await server.GetJsonAsync("/v2/models/double/ready")).Status);

        var load = await server.PostJsonAsync("/v2/repository/models/double/load", "");
        Assert.Equal(200, load.Status);
        Assert.True(load.Body!["load"]!.GetValue<bool>());
        await WaitForAsync(async () => (await server.PostJsonAsync("/v2/models/double/infer", DoubleBody)).Status == 200, "double to serve again");
        var again = await server.PostJsonAsync("/v2/models/double/infer", DoubleBody);
        Assert.Equal(new[] { 2f, 4f }, Json.Floats(again.Body!["outputs"]![0]!["data"]));
    }

    [Fact]
    public async Task Load_reads_the_repository_folder_again()
    {
        Assert.Equal(404, (await server.PostJsonAsync("/v2/models/late/infer", DoubleBody)).Status);
        File.WriteAllText(Path.Combine(server.Repository, "late.yaml"), $$"""
            apiVersion: serving.kserve.io/v1beta1
            kind: InferenceService
            metadata:
              name: late
            spec:
              predictor:
                onnx:
                  storageUri: file://{{Repo.SampleModels}}/double
            """);

        var load = await server.PostJsonAsync("/v2/repository/models/late/load", "");
        Assert.Equal(200, load.Status);
        await WaitForAsync(async () => (await server.PostJsonAsync("/v2/models/late/infer", DoubleBody)).Status == 200, "the new model to serve");
    }

    [Fact]
    public async Task Load_and_unload_of_unknown_models_are_404()
    {
        var load = await server.PostJsonAsync("/v2/repository/models/never-declared/load", "");
        Assert.Equal(404, load.Status);
        Assert.Contains("never-declared", Json.Error(load.Body));
        Assert.Equal(404, (await server.PostJsonAsync("/v2/repository/models/never-declared/unload", "")).Status);
    }

    [Fact]
    public async Task Grpc_load_and_unload_accept_kserve_and_triton_request_shapes()
    {
        using var channel = GrpcChannel.ForAddress(server.GrpcAddress);
        var client = new GRPCInferenceService.GRPCInferenceServiceClient(channel);

        // Triton puts the model name in field 2; KServe in field 1.
        var unloaded = await client.RepositoryModelUnloadAsync(new RepositoryModelUnloadRequest { TritonModelName = "mlp" });
        Assert.True(unloaded.IsUnloaded);
        Assert.False((await client.ModelReadyAsync(new ModelReadyRequest { Name = "mlp" })).Ready);

        var loaded = await client.RepositoryModelLoadAsync(new RepositoryModelLoadRequest { ModelName = "mlp" });
        Assert.True(loaded.IsLoaded);
        Assert.Equal("mlp", loaded.ModelName);
        await WaitForAsync(async () => (await client.ModelReadyAsync(new ModelReadyRequest { Name = "mlp" })).Ready, "mlp to be ready again");

        var e = await Assert.ThrowsAsync<RpcException>(() => client.RepositoryModelLoadAsync(new RepositoryModelLoadRequest { ModelName = "nothing" }).ResponseAsync);
        Assert.Equal(StatusCode.NotFound, e.StatusCode);
    }

    private static Task WaitForAsync(Func<Task<bool>> condition, string what) => Wait.UntilAsync(condition, what);
}
