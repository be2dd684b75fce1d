using Orleans.KServe.ModelTools;

namespace Orleans.KServe.FunctionalTests;

[Collection(ServerCollection.Name)]
public sealed class V1RestTests(ServerFixture server)
{
    [Fact]
    public async Task Predict_stacks_instances_on_the_batch_dimension()
    {
        var (status, body) = await server.PostJsonAsync("/v1/models/double:predict", """{"instances":[[1,2],[3,4],[5,6]]}""");
        Assert.Equal(200, status);
        Assert.Equal("[[2,4],[6,8],[10,12]]", body!["predictions"]!.ToJsonString());
    }

    [Fact]
    public async Task Predict_with_several_outputs_answers_one_object_per_row()
    {
        var row = Json.Array(Enumerable.Range(0, MlpModel.InputSize).Select(i => (float)Math.Cos(i)));
        var (status, body) = await server.PostJsonAsync("/v1/models/mlp:predict", $$"""{"instances":[{{row}},{{row}}]}""");
        Assert.Equal(200, status);
        var predictions = body!["predictions"]!.AsArray();
        Assert.Equal(2, predictions.Count);
        var expected = MlpReference.Forward(Enumerable.Range(0, MlpModel.InputSize).Select(i => (float)Math.Cos(i)).ToArray());
        foreach (var prediction in predictions)
        {
            Assert.Equal(Array.IndexOf(expected, expected.Max()), prediction!["label"]!.GetValue<long>());
            Assert.Equal(MlpModel.Classes, prediction["probabilities"]!.AsArray().Count);
        }
    }

    [Fact]
    public async Task The_columnar_inputs_form_is_accepted()
    {
        var (status, body) = await server.PostJsonAsync("/v1/models/double:predict", """{"inputs":[[1,1]]}""");
        Assert.Equal(200, status);
        Assert.Equal("[[2,2]]", body!["predictions"]!.ToJsonString());
    }

    [Fact]
    public async Task Model_list_and_model_ready()
    {
        var list = await server.GetJsonAsync("/v1/models");
        Assert.Contains("double", list.Body!["models"]!.AsArray().Select(n => n!.GetValue<string>()));
        var ready = await server.GetJsonAsync("/v1/models/double");
        Assert.Equal(200, ready.Status);
        Assert.Equal("double", ready.Body!["name"]!.GetValue<string>());
        Assert.True(ready.Body["ready"]!.GetValue<bool>());
        Assert.Equal(404, (await server.GetJsonAsync("/v1/models/unknown")).Status);
    }

    [Fact]
    public async Task Explain_answers_501_until_an_explainer_exists()
    {
        var (status, body) = await server.PostJsonAsync("/v1/models/double:explain", """{"instances":[[1,2]]}""");
        Assert.Equal(501, status);
        Assert.Contains("explainer", Json.Error(body));
    }

    [Theory]
    [InlineData("""{"instances":[]}""", "empty")]
    [InlineData("""{"instances":[[1,2],[3]]}""", "")]
    [InlineData("""{"rows":[[1,2]]}""", "instances")]
    [InlineData("""{"instances":[["a","b"]]}""", "FP32")]
    public async Task Bad_predict_bodies_are_400_with_a_message(string json, string messagePart)
    {
        var (status, body) = await server.PostJsonAsync("/v1/models/double:predict", json);
        Assert.Equal(400, status);
        Assert.Contains(messagePart, Json.Error(body));
    }
}
