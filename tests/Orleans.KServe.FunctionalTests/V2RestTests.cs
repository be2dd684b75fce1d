using System.Text.Json.Nodes;
using Orleans.KServe.ModelTools;

namespace Orleans.KServe.FunctionalTests;

[Collection(ServerCollection.Name)]
public sealed class V2RestTests(ServerFixture server)
{
    [Fact]
    public async Task Server_metadata_health_and_model_list_answer()
    {
        var (status, body) = await server.GetJsonAsync("/v2");
        Assert.Equal(200, status);
        Assert.Equal("orleans-kserve", body!["name"]!.GetValue<string>());
        Assert.NotNull(body["version"]);
        Assert.NotNull(body["extensions"]!.AsArray());

        Assert.True((await server.GetJsonAsync("/v2/health/live")).Body!["live"]!.GetValue<bool>());
        var ready = await server.GetJsonAsync("/v2/health/ready");
        Assert.Equal(200, ready.Status);
        Assert.True(ready.Body!["ready"]!.GetValue<bool>());

        var models = (await server.GetJsonAsync("/v2/models")).Body!["models"]!.AsArray().Select(n => n!.GetValue<string>()).ToList();
        Assert.Contains("double", models);
        Assert.Contains("mlp", models);
        Assert.Contains("resnet18", models);
        Assert.DoesNotContain("sklearn-iris", models);
    }

    [Fact]
    public async Task Model_metadata_names_datatypes_and_shapes_with_minus_one_for_dynamic_dims()
    {
        var (status, body) = await server.GetJsonAsync("/v2/models/mlp");
        Assert.Equal(200, status);
        Assert.Equal("mlp", body!["name"]!.GetValue<string>());
        Assert.Equal("onnxruntime_onnx", body["platform"]!.GetValue<string>());
        Assert.Equal(["1"], body["versions"]!.AsArray().Select(v => v!.GetValue<string>()));
        var input = body["inputs"]![0]!;
        Assert.Equal("input", input["name"]!.GetValue<string>());
        Assert.Equal("FP32", input["datatype"]!.GetValue<string>());
        Assert.Equal("[-1,64]", input["shape"]!.ToJsonString());
        var outputs = body["outputs"]!.AsArray();
        Assert.Equal(["probabilities:FP32:[-1,10]", "label:INT64:[-1]"],
            outputs.Select(o => $"{o!["name"]}:{o["datatype"]}:{o["shape"]!.ToJsonString()}"));

        var versioned = await server.GetJsonAsync("/v2/models/mlp/versions/1");
        Assert.Equal(200, versioned.Status);
        Assert.Equal(404, (await server.GetJsonAsync("/v2/models/mlp/versions/7")).Status);
    }

    [Fact]
    public async Task Model_ready_is_200_when_loaded_and_503_with_the_reason_when_it_failed()
    {
        var ready = await server.GetJsonAsync("/v2/models/double/ready");
        Assert.Equal(200, ready.Status);
        Assert.True(ready.Body!["ready"]!.GetValue<bool>());
        Assert.Equal(200, (await server.GetJsonAsync("/v2/models/double/versions/1/ready")).Status);

        var failed = await server.GetJsonAsync("/v2/models/zipmap/ready");
        Assert.Equal(503, failed.Status);
        Assert.False(failed.Body!["ready"]!.GetValue<bool>());
        Assert.Contains("not a tensor", Json.Error(failed.Body));
        Assert.Equal(404, (await server.GetJsonAsync("/v2/models/nothing-here/ready")).Status);
    }

    [Theory]
    [InlineData("[1,2,3,4]")]
    [InlineData("[[1,2],[3,4]]")]
    public async Task Double_doubles_flat_and_nested_data_and_echoes_the_id(string data)
    {
        var (status, body) = await server.PostJsonAsync("/v2/models/double/infer",
            $$"""{"id":"req-42","inputs":[{"name":"input","shape":[2,2],"datatype":"FP32","data":{{data}}}]}""");
        Assert.Equal(200, status);
        Assert.Equal("double", body!["model_name"]!.GetValue<string>());
        Assert.Equal("1", body["model_version"]!.GetValue<string>());
        Assert.Equal("req-42", body["id"]!.GetValue<string>());
        var output = body["outputs"]![0]!;
        Assert.Equal("output", output["name"]!.GetValue<string>());
        Assert.Equal("FP32", output["datatype"]!.GetValue<string>());
        Assert.Equal("[2,2]", output["shape"]!.ToJsonString());
        Assert.Equal([2f, 4f, 6f, 8f], Json.Floats(output["data"]));
    }

    [Fact]
    public async Task A_request_without_id_gets_a_generated_one_and_versioned_infer_works()
    {
        var first = await server.PostJsonAsync("/v2/models/double/versions/1/infer",
            """{"inputs":[{"name":"input","shape":[1,2],"datatype":"FP32","data":[0.5,-1]}]}""");
        var second = await server.PostJsonAsync("/v2/models/double/infer",
            """{"inputs":[{"name":"input","shape":[1,2],"datatype":"FP32","data":[0.5,-1]}]}""");
        Assert.Equal(200, first.Status);
        Assert.Equal([1f, -2f], Json.Floats(first.Body!["outputs"]![0]!["data"]));
        var id1 = first.Body["id"]!.GetValue<string>();
        Assert.True(Guid.TryParse(id1, out _), id1);
        Assert.NotEqual(id1, second.Body!["id"]!.GetValue<string>());
    }

    [Fact]
    public async Task The_mlp_classifier_matches_an_independent_reference_computation()
    {
        var rows = new float[3][];
        for (var r = 0; r < rows.Length; r++)
        {
            rows[r] = Enumerable.Range(0, MlpModel.InputSize).Select(i => (float)Math.Sin((r + 1) * 0.37 * (i + 1))).ToArray();
        }

        var data = "[" + string.Join(",", rows.Select(Json.Array)) + "]";
        var (status, body) = await server.PostJsonAsync("/v2/models/mlp/infer",
            $$"""{"inputs":[{"name":"input","shape":[3,{{MlpModel.InputSize}}],"datatype":"FP32","data":{{data}}}]}""");
        Assert.Equal(200, status);
        var outputs = body!["outputs"]!.AsArray().ToDictionary(o => o!["name"]!.GetValue<string>(), o => o!);
        Assert.Equal("[3,10]", outputs["probabilities"]["shape"]!.ToJsonString());
        Assert.Equal("INT64", outputs["label"]["datatype"]!.GetValue<string>());
        var probabilities = Json.Floats(outputs["probabilities"]["data"]);
        var labels = outputs["label"]["data"]!.AsArray().Select(n => n!.GetValue<long>()).ToArray();

        for (var r = 0; r < rows.Length; r++)
        {
            var expected = MlpReference.Forward(rows[r]);
            for (var c = 0; c < MlpModel.Classes; c++)
            {
                Assert.InRange(probabilities[(r * MlpModel.Classes) + c], expected[c] - 1e-4, expected[c] + 1e-4);
            }

            Assert.Equal(Array.IndexOf(expected, expected.Max()), labels[r]);
        }
    }

    [Fact]
    public async Task Requested_outputs_limit_the_answer()
    {
        var data = Json.Array(Enumerable.Repeat(0.25f, MlpModel.InputSize));
        var (status, body) = await server.PostJsonAsync("/v2/models/mlp/infer",
            $$"""{"inputs":[{"name":"input","shape":[1,64],"datatype":"FP32","data":{{data}}}],"outputs":[{"name":"label"}]}""");
        Assert.Equal(200, status);
        var output = Assert.Single(body!["outputs"]!.AsArray());
        Assert.Equal("label", output!["name"]!.GetValue<string>());
    }

    [Fact]
    public async Task ResNet18_serves_a_dynamic_batch_equal_to_single_runs()
    {
        const int size = 3 * 224 * 224;
        float[] Image(int seed) => Enumerable.Range(0, size).Select(i => (float)(((i * 7919) + (seed * 104729)) % 255 / 255.0)).ToArray();
        var a = Image(1);
        var b = Image(2);

        async Task<float[]> Run(int batch, string data)
        {
            var (status, body) = await server.PostJsonAsync("/v2/models/resnet18/infer",
                $$"""{"inputs":[{"name":"Input247","shape":[{{batch}},3,224,224],"datatype":"FP32","data":{{data}}}]}""");
            Assert.Equal(200, status);
            Assert.Equal($"[{batch},512,1,1]", body!["outputs"]![0]!["shape"]!.ToJsonString());
            return Json.Floats(body["outputs"]![0]!["data"]);
        }

        var both = await Run(2, "[" + Json.Array(a) + "," + Json.Array(b) + "]");
        var onlyA = await Run(1, Json.Array(a));
        var onlyB = await Run(1, Json.Array(b));
        Assert.Equal(1024, both.Length);
        for (var i = 0; i < 512; i++)
        {
            Assert.InRange(both[i], onlyA[i] - 1e-3f, onlyA[i] + 1e-3f);
            Assert.InRange(both[512 + i], onlyB[i] - 1e-3f, onlyB[i] + 1e-3f);
        }
    }

    [Fact]
    public async Task The_repository_index_reports_every_declaration_with_its_state_and_reason()
    {
        var (status, body) = await server.PostJsonAsync("/v2/repository/index", "{}");
        Assert.Equal(200, status);
        var entries = body!.AsArray().ToDictionary(e => e!["name"]!.GetValue<string>(), e => e!);
        Assert.Equal("READY", entries["double"]["state"]!.GetValue<string>());
        Assert.Equal("READY", entries["resnet18"]["state"]!.GetValue<string>());
        Assert.Equal("UNAVAILABLE", entries["zipmap"]["state"]!.GetValue<string>());
        Assert.Contains("not a tensor", entries["zipmap"]["reason"]!.GetValue<string>());
        Assert.Contains("weights.bin", entries["external-data"]["reason"]!.GetValue<string>());
        Assert.StartsWith("NoSupportingRuntime", entries["sklearn-iris"]["reason"]!.GetValue<string>());
        var broken = Assert.Single(entries, e => e.Key.StartsWith("broken.yaml", StringComparison.Ordinal)).Value;
        Assert.Contains("InvalidSpec", broken["reason"]!.GetValue<string>());
        Assert.Contains("line", broken["reason"]!.GetValue<string>());

        var viaGet = await server.GetJsonAsync("/v2/repository/index");
        Assert.Equal(entries.Count, viaGet.Body!.AsArray().Count);
    }
}

/// <summary>The MLP's forward pass in double precision with naive loops, from the generator's weights.</summary>
public static class MlpReference
{
    public static double[] Forward(float[] input)
    {
        var x = input.Select(v => (double)v).ToArray();
        for (var layer = 0; layer <= MlpModel.HiddenLayers; layer++)
        {
            var fanIn = MlpModel.LayerInputSize(layer);
            var fanOut = MlpModel.LayerOutputSize(layer);
            var y = new double[fanOut];
            for (var j = 0; j < fanOut; j++)
            {
                var sum = (double)MlpModel.Bias(layer, j);
                for (var i = 0; i < fanIn; i++)
                {
                    sum += x[i] * MlpModel.Weight(layer, i, j);
                }

                y[j] = layer < MlpModel.HiddenLayers ? Math.Max(0, sum) : sum;
            }

            x = y;
        }

        var max = x.Max();
        var exp = x.Select(v => Math.Exp(v - max)).ToArray();
        var total = exp.Sum();
        return exp.Select(v => v / total).ToArray();
    }
}
