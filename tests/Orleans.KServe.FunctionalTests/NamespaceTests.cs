using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Google.Protobuf;
using Grpc.Core;
using Orleans.KServe.Grpc;
using Orleans.KServe.ModelTools;

namespace Orleans.KServe.FunctionalTests;

/// <summary>
/// Two namespaces that each declare a model named <c>double</c> (team-a's doubles, team-b's triples), and a model
/// only team-a declares.
/// </summary>
public sealed class NamespaceServerFixture : ServerFixture
{
    protected override bool WriteSamples => false;

    protected override void WriteMore(string folder)
    {
        DoubleModel.Build(2).Save(Path.Combine(folder, "times2", "model.onnx"));
        DoubleModel.Build(3).Save(Path.Combine(folder, "times3", "model.onnx"));
        File.WriteAllText(Path.Combine(folder, "teams.yaml"), """
            apiVersion: serving.kserve.io/v1beta1
            kind: InferenceService
            metadata:
              name: double
              namespace: team-a
            spec:
              predictor:
                model: {modelFormat: {name: onnx}, storageUri: file://times2}
            ---
            apiVersion: serving.kserve.io/v1beta1
            kind: InferenceService
            metadata:
              name: double
              namespace: team-b
            spec:
              predictor:
                model: {modelFormat: {name: onnx}, storageUri: file://times3}
            ---
            apiVersion: serving.kserve.io/v1beta1
            kind: InferenceService
            metadata:
              name: solo
              namespace: team-a
            spec:
              predictor:
                model: {modelFormat: {name: onnx}, storageUri: file://times2}
            """);
    }
}

/// <summary>Addressing a model of a namespace as KServe users do: by Host, by path prefix, or by a bare name while it is unique.</summary>
public sealed class NamespaceTests(NamespaceServerFixture server) : IClassFixture<NamespaceServerFixture>
{
    private const string V2Body = """{"inputs":[{"name":"input","shape":[1,2],"datatype":"FP32","data":[1,2]}]}""";

    private async Task<(HttpStatusCode Status, JsonNode? Body)> SendAsync(string path, string? host = null, string body = V2Body)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        if (host is not null)
        {
            request.Headers.Host = host;
        }

        using var response = await server.Http.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        return (response.StatusCode, text.Length > 0 ? JsonNode.Parse(text) : null);
    }

    private static float First(JsonNode? body) => body!["outputs"]![0]!["data"]![0]!.GetValue<float>();

    [Theory]
    [InlineData("double-team-a.example.com", 2f)]
    [InlineData("double-team-b.example.com", 3f)]
    [InlineData("double-team-b.models.example.com:8080", 3f)]
    [InlineData("double.team-a.example.com", 2f)]
    [InlineData("double.team-b.svc.cluster.local", 3f)]
    public async Task A_host_in_kserves_or_knatives_domain_form_names_the_namespace(string host, float expected)
    {
        var (status, body) = await SendAsync("/v2/models/double/infer", host);
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal(expected, First(body));
    }

    [Fact]
    public async Task A_path_prefix_in_kserves_path_template_names_the_namespace_and_is_stripped()
    {
        var (status, body) = await SendAsync("/serving/team-a/double/v2/models/double/infer");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal(2f, First(body));

        var (v1Status, v1Body) = await SendAsync("/serving/team-b/double/v1/models/double:predict", body: """{"instances":[[1,2]]}""");
        Assert.Equal(HttpStatusCode.OK, v1Status);
        Assert.Equal("[[3,6]]", v1Body!["predictions"]!.ToJsonString());

        Assert.Equal(HttpStatusCode.OK, (await server.Http.GetAsync("/serving/team-b/double/v2/models/double/ready")).StatusCode);
        var (missing, error) = await SendAsync("/serving/team-c/double/v2/models/double/infer");
        Assert.Equal(HttpStatusCode.NotFound, missing);
        Assert.Contains("not found in namespace 'team-c'", error!["error"]!.GetValue<string>());
    }

    [Fact]
    public async Task A_bare_name_two_namespaces_declare_is_400_naming_them_and_a_unique_one_serves()
    {
        var (status, body) = await SendAsync("/v2/models/double/infer");
        Assert.Equal(HttpStatusCode.BadRequest, status);
        var error = body!["error"]!.GetValue<string>();
        Assert.Contains("declared in namespaces 'team-a', 'team-b'", error);
        Assert.Contains("{name}-{namespace}.{domain}", error);
        Assert.Contains("/serving/{namespace}/{name}", error);

        var (soloStatus, soloBody) = await SendAsync("/v2/models/solo/infer");
        Assert.Equal(HttpStatusCode.OK, soloStatus);
        Assert.Equal(2f, First(soloBody));

        // A Host that names another model leaves the bare name to decide.
        Assert.Equal(HttpStatusCode.OK, (await SendAsync("/v2/models/solo/infer", "double-team-b.example.com")).Status);
    }

    [Fact]
    public async Task Grpc_names_the_namespace_by_its_authority()
    {
        var request = new ModelInferRequest { ModelName = "double" };
        var input = new ModelInferRequest.Types.InferInputTensor { Name = "input", Datatype = "FP32" };
        input.Shape.Add([1, 2]);
        request.Inputs.Add(input);
        request.RawInputContents.Add(ByteString.CopyFrom([.. BitConverter.GetBytes(1f), .. BitConverter.GetBytes(2f)]));
        using var grpc = new RawGrpc(server.GrpcAddress);

        var (status, message, answer) = await grpc.CallAsync("ModelInfer", RawGrpc.Frame(request), authority: "double-team-b.example.com");
        Assert.True(status == StatusCode.OK, message);
        Assert.Equal(3f, BitConverter.ToSingle(ModelInferResponse.Parser.ParseFrom(answer.AsSpan(5)).RawOutputContents[0].Span));

        var (ambiguous, why, _) = await grpc.CallAsync("ModelInfer", RawGrpc.Frame(request));
        Assert.Equal(StatusCode.InvalidArgument, ambiguous);
        Assert.Contains("declared in namespaces 'team-a', 'team-b'", why);
    }
}
