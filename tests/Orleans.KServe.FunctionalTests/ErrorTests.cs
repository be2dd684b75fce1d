using System.Text;

namespace Orleans.KServe.FunctionalTests;

[Collection(ServerCollection.Name)]
public sealed class ErrorTests(ServerFixture server)
{
    private const string Infer = "/v2/models/double/infer";

    public static TheoryData<string, string> InvalidRequests => new()
    {
        { "{not json", "malformed JSON" },
        { "[1,2]", "JSON object" },
        { "{}", "no 'inputs'" },
        { """{"inputs":[{"name":"input","shape":[1,2],"datatype":"FP32","data":[1,2]}]} trailing""", "malformed JSON" },
        { """{"inputs":[{"shape":[1,2],"datatype":"FP32","data":[1,2]}]}""", "no 'name'" },
        { """{"inputs":[{"name":"input","datatype":"FP32","data":[1,2]}]}""", "no 'shape'" },
        { """{"inputs":[{"name":"input","shape":[1,2],"data":[1,2]}]}""", "no 'datatype'" },
        { """{"inputs":[{"name":"input","shape":[1,2],"datatype":"FP32"}]}""", "no 'data'" },
        { """{"inputs":[{"name":"input","shape":[1,2],"datatype":"FLOAT","data":[1,2]}]}""", "datatype must be one of" },
        { """{"inputs":[{"name":"input","shape":[1,-2],"datatype":"FP32","data":[1,2]}]}""", "non-negative" },
        { """{"inputs":[{"name":"input","shape":[1000000000,1000000000],"datatype":"FP32","data":[1,2]}]}""", "more elements than the request carries" },
        { """{"inputs":[{"name":"input","shape":[1,2],"datatype":"FP32","data":[1,2,3]}]}""", "more data elements" },
        { """{"inputs":[{"name":"input","shape":[2,2],"datatype":"FP32","data":[1,2]}]}""", "has 2 data elements but its shape needs 4" },
        { """{"inputs":[{"name":"input","shape":[1,2],"datatype":"FP32","data":["a","b"]}]}""", "found a string" },
        { """{"inputs":[{"name":"input","shape":[1,2],"datatype":"FP64","data":[1,2]}]}""", "datatype FP64 but the model expects FP32" },
        { """{"inputs":[{"name":"x","shape":[1,2],"datatype":"FP32","data":[1,2]}]}""", "unknown input 'x'" },
        { """{"inputs":[{"name":"input","shape":[1,3],"datatype":"FP32","data":[1,2,3]}]}""", "expects [-1,2]" },
        { """{"inputs":[{"name":"input","shape":[1,2],"datatype":"FP32","data":[1,2]}],"outputs":[{"name":"nope"}]}""", "unknown requested output 'nope'" },
        { """{"inputs":[]}""", "no inputs" },
    };

    [Theory]
    [MemberData(nameof(InvalidRequests))]
    public async Task Invalid_input_is_400_naming_what_is_wrong_and_the_server_keeps_serving(string json, string messagePart)
    {
        var (status, body) = await server.PostJsonAsync(Infer, json);
        Assert.Equal(400, status);
        Assert.Contains(messagePart, Json.Error(body));

        var ok = await server.PostJsonAsync(Infer, """{"inputs":[{"name":"input","shape":[1,2],"datatype":"FP32","data":[1,2]}]}""");
        Assert.Equal(200, ok.Status);
    }

    [Fact]
    public async Task Missing_input_on_a_model_is_400()
    {
        var (status, body) = await server.PostJsonAsync("/v2/models/mlp/infer",
            """{"inputs":[{"name":"other","shape":[1],"datatype":"FP32","data":[1]}]}""");
        Assert.Equal(400, status);
        Assert.Contains("unknown input 'other'", Json.Error(body));
    }

    [Fact]
    public async Task Unknown_model_is_404_and_unknown_path_is_a_json_404()
    {
        var (status, body) = await server.PostJsonAsync("/v2/models/nope/infer", "{}");
        Assert.Equal(404, status);
        Assert.Contains("model 'nope' not found", Json.Error(body));

        var path = await server.GetJsonAsync("/v3/whatever");
        Assert.Equal(404, path.Status);
        Assert.Contains("/v3/whatever", Json.Error(path.Body));
    }

    [Fact]
    public async Task The_repository_index_names_every_failure_by_its_typed_reason()
    {
        var index = (await server.PostJsonAsync("/v2/repository/index", "{}")).Body!.AsArray()
            .ToDictionary(e => e!["name"]!.GetValue<string>(), e => e!["reason"]!.GetValue<string>());
        Assert.StartsWith("ModelLoadFailed: ", index["zipmap"]);
        Assert.StartsWith("ModelLoadFailed: ", index["external-data"]);
        Assert.StartsWith("NoSupportingRuntime: ", index["sklearn-iris"]);
        Assert.StartsWith("InvalidSpec: ", index["broken.yaml"]);
        Assert.All(index.Values.Where(r => r.Length > 0),
            reason => Assert.Contains(reason[..reason.IndexOf(':')], Orleans.KServe.Contracts.Models.FailureReasons.All));
    }

    [Fact]
    public async Task A_model_that_failed_to_load_is_503_with_its_reason()
    {
        var (status, body) = await server.PostJsonAsync("/v2/models/external-data/infer",
            """{"inputs":[{"name":"input","shape":[1,2],"datatype":"FP32","data":[1,2]}]}""");
        Assert.Equal(503, status);
        Assert.Contains("weights.bin", Json.Error(body));

        var metadata = await server.GetJsonAsync("/v2/models/zipmap");
        Assert.Equal(503, metadata.Status);

        var unservable = await server.PostJsonAsync("/v2/models/sklearn-iris/infer", "{}");
        Assert.Equal(503, unservable.Status);
        Assert.Contains("NoSupportingRuntime", Json.Error(unservable.Body));
    }

    [Fact]
    public async Task A_declared_body_over_the_limit_is_413_before_it_is_sent()
    {
        // The fixture's limit is 8 MiB; the server answers from the headers alone.
        var (status, body) = await RawAsync(
            $"POST {Infer} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {(9 * 1024 * 1024)}\r\n\r\n", chunks: 0);
        Assert.Equal(413, status);
        Assert.Contains("exceeds the limit of 8388608 bytes", body);
    }

    [Fact]
    public async Task A_chunked_body_over_the_limit_is_413()
    {
        var (status, body) = await RawAsync(
            $"POST {Infer} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n", chunks: 10);
        Assert.Equal(413, status);
        Assert.Contains("exceeds the limit", body);
    }

    /// <summary>Sends a head and then 1 MiB chunks (stopping when the server closes), then reads the answer.</summary>
    private async Task<(int Status, string Body)> RawAsync(string head, int chunks)
    {
        using var client = new System.Net.Sockets.TcpClient();
        await client.ConnectAsync(server.BaseAddress.Host, server.BaseAddress.Port);
        var stream = client.GetStream();
        await stream.WriteAsync(Encoding.ASCII.GetBytes(head));
        var chunk = Encoding.ASCII.GetBytes($"{1024 * 1024:x}\r\n" + new string(' ', 1024 * 1024) + "\r\n");
        try
        {
            for (var i = 0; i < chunks; i++)
            {
                await stream.WriteAsync(chunk);
            }
        }
        catch (IOException)
        {
            // The server answered and closed before the whole body was sent: that is the point.
        }

        var text = new StringBuilder();
        var buffer = new byte[8192];
        try
        {
            int read;
            while (!text.ToString().Contains("}") && (read = await stream.ReadAsync(buffer).AsTask().WaitAsync(TimeSpan.FromSeconds(30))) > 0)
            {
                text.Append(Encoding.ASCII.GetString(buffer, 0, read));
            }
        }
        catch (IOException)
        {
        }

        var response = text.ToString();
        Assert.StartsWith("HTTP/1.1 ", response);
        return (int.Parse(response.Split(' ')[1]), response);
    }

    [Fact]
    public async Task Wrong_method_is_405_with_a_json_error()
    {
        var (status, body) = await server.GetJsonAsync(Infer);
        Assert.Equal(405, status);
        Assert.Contains("method GET is not allowed", Json.Error(body));
    }
}
