using Grpc.Core;
using Grpc.Net.Client;
using Orleans.KServe.Grpc;
using Orleans.KServe.ModelTools;
using Orleans.KServe.ModelTools.Onnx;

namespace Orleans.KServe.FunctionalTests;

/// <summary>
/// A Triton-layout folder whose versions compute different things (1: identity, 2: y = 2·x, 3: identity), served
/// under several version policies, plus one model made of two InferenceServices, one per version.
/// </summary>
public sealed class VersionServerFixture : ServerFixture
{
    protected override void WriteMore(string folder)
    {
        var multi = Path.Combine(folder, "multi");
        TestModels.BuildIdentity(OnnxDataType.Float).Save(Path.Combine(multi, "1", "model.onnx"));
        DoubleModel.Build().Save(Path.Combine(multi, "2", "model.onnx"));
        TestModels.BuildIdentity(OnnxDataType.Float).Save(Path.Combine(multi, "3", "model.onnx"));

        string Service(string name, string storage, string annotations) => $$"""
            apiVersion: serving.kserve.io/v1beta1
            kind: InferenceService
            metadata:
              name: {{name}}
              annotations:
                {{annotations}}
            spec:
              predictor:
                model:
                  modelFormat:
                    name: onnx
                  storageUri: file://{{storage}}
            ---

            """;

        File.WriteAllText(Path.Combine(folder, "versions.yaml"),
            Service("multi-latest", "multi", "orleans.kserve.io/version-policy: \"latest:2\"")
            + Service("multi-all", "multi", "orleans.kserve.io/version-policy: all")
            + Service("multi-specific", "multi", "orleans.kserve.io/version-policy: \"specific:1,3\"")
            + Service("multi-bad", "multi", "orleans.kserve.io/version-policy: \"specific:7\"")
            + Service("pair-one", "multi/2", "{orleans.kserve.io/model-name: pair, orleans.kserve.io/model-version: \"1\"}")
            + Service("pair-two", "multi/1", "{orleans.kserve.io/model-name: pair, orleans.kserve.io/model-version: \"2\"}"));
    }
}

public sealed class VersionTests(VersionServerFixture server) : IClassFixture<VersionServerFixture>
{
    private const string Body = """{"inputs":[{"name":"input","shape":[1,2],"datatype":"FP32","data":[1,2]}]}""";

    private async Task<float[]> InferAsync(string path)
    {
        var (status, body) = await server.PostJsonAsync(path, Body);
        Assert.True(status == 200, $"{path}: {status} {body?.ToJsonString()}");
        return Json.Floats(body!["outputs"]![0]!["data"]);
    }

    [Fact]
    public async Task Versioned_paths_address_one_version_and_unversioned_calls_go_to_the_newest()
    {
        Assert.Equal(new[] { 1f, 2f }, await InferAsync("/v2/models/multi-latest/infer"));
        Assert.Equal(new[] { 1f, 2f }, await InferAsync("/v2/models/multi-latest/versions/3/infer"));
        Assert.Equal(new[] { 2f, 4f }, await InferAsync("/v2/models/multi-latest/versions/2/infer"));

        var old = await server.PostJsonAsync("/v2/models/multi-latest/versions/1/infer", Body);
        Assert.Equal(404, old.Status);
        Assert.Contains("no version '1'", Json.Error(old.Body));

        var metadata = await server.GetJsonAsync("/v2/models/multi-latest");
        Assert.Equal("[\"3\",\"2\"]", metadata.Body!["versions"]!.ToJsonString());
        Assert.Equal(200, (await server.GetJsonAsync("/v2/models/multi-latest/versions/2/ready")).Status);
    }

    [Fact]
    public async Task Version_policies_all_and_specific_choose_the_versions_served()
    {
        Assert.Equal("[\"3\",\"2\",\"1\"]", (await server.GetJsonAsync("/v2/models/multi-all")).Body!["versions"]!.ToJsonString());
        Assert.Equal(new[] { 1f, 2f }, await InferAsync("/v2/models/multi-all/versions/1/infer"));
        Assert.Equal("[\"3\",\"1\"]", (await server.GetJsonAsync("/v2/models/multi-specific")).Body!["versions"]!.ToJsonString());
        Assert.Equal(404, (await server.PostJsonAsync("/v2/models/multi-specific/versions/2/infer", Body)).Status);

        var config = (await server.GetJsonAsync("/v2/models/multi-specific/config")).Body!;
        Assert.Equal("[1,3]", config["version_policy"]!["specific"]!["versions"]!.ToJsonString());
        Assert.Equal(2, (await server.GetJsonAsync("/v2/models/multi-latest/config")).Body!["version_policy"]!["latest"]!["num_versions"]!.GetValue<int>());

        var index = (await server.PostJsonAsync("/v2/repository/index", "{}")).Body!.AsArray();
        Assert.Equal(["3", "2", "1"], index.Where(e => e!["name"]!.GetValue<string>() == "multi-all").Select(e => e!["version"]!.GetValue<string>()));
        var bad = index.Single(e => e!["name"]!.GetValue<string>() == "multi-bad")!;
        Assert.Contains("version 7", bad["reason"]!.GetValue<string>());
    }

    [Fact]
    public async Task Several_inference_services_can_each_serve_one_version_of_a_model()
    {
        Assert.Equal(new[] { 2f, 4f }, await InferAsync("/v2/models/pair/versions/1/infer"));
        Assert.Equal(new[] { 1f, 2f }, await InferAsync("/v2/models/pair/versions/2/infer"));
        Assert.Equal(new[] { 1f, 2f }, await InferAsync("/v2/models/pair/infer"));
        Assert.Equal(404, (await server.GetJsonAsync("/v2/models/pair-one")).Status);
    }

    [Fact]
    public async Task Grpc_model_version_addresses_one_version()
    {
        using var channel = GrpcChannel.ForAddress(server.GrpcAddress);
        var client = new GRPCInferenceService.GRPCInferenceServiceClient(channel);
        ModelInferRequest Request(string version)
        {
            var request = new ModelInferRequest { ModelName = "multi-all", ModelVersion = version };
            var input = new ModelInferRequest.Types.InferInputTensor { Name = "input", Datatype = "FP32", Contents = new InferTensorContents() };
            input.Shape.Add([1, 2]);
            input.Contents.Fp32Contents.Add([1f, 2f]);
            request.Inputs.Add(input);
            return request;
        }

        var two = await client.ModelInferAsync(Request("2"));
        Assert.Equal("2", two.ModelVersion);
        Assert.Equal([2f, 4f], two.Outputs[0].Contents.Fp32Contents);
        Assert.Equal("3", (await client.ModelInferAsync(Request(""))).ModelVersion);
        var e = await Assert.ThrowsAsync<RpcException>(() => client.ModelInferAsync(Request("9")).ResponseAsync);
        Assert.Equal(StatusCode.NotFound, e.StatusCode);

        var stats = await client.ModelStatisticsAsync(new ModelStatisticsRequest { Name = "multi-all", Version = "2" });
        Assert.Equal("2", stats.ModelStats.Single().Version);
    }
}
