using System.Net;
using System.Text;
using System.Text.Json.Nodes;

namespace Orleans.KServe.FunctionalTests;

/// <summary>
/// Each call KServe's Python REST client (<c>kserve.InferenceRESTClient</c>) and KServe ModelServer's probes make,
/// replayed as the client sends it — its path, httpx's headers, its body with or without a Content-Type (releases
/// before 0.20 send JSON bodies without one) — and the field the client reads from the answer.
/// </summary>
[Collection(ServerCollection.Name)]
public sealed class KServeClientTests(ServerFixture server) : IDisposable
{
    private readonly HttpClient _http = new(new SocketsHttpHandler { AutomaticDecompression = DecompressionMethods.All }) { BaseAddress = server.BaseAddress };

    public void Dispose() => _http.Dispose();

    private async Task<(HttpStatusCode Status, JsonNode? Body, HttpResponseMessage Response)> SendAsync(HttpMethod method, string path, byte[]? body = null, string? contentType = null)
    {
        using var request = new HttpRequestMessage(method, path);
        request.Headers.TryAddWithoutValidation("Accept", "*/*");
        request.Headers.TryAddWithoutValidation("Accept-Encoding", "gzip, deflate");
        request.Headers.TryAddWithoutValidation("User-Agent", "python-httpx/0.27.2");
        if (body is not null)
        {
            request.Content = new ByteArrayContent(body);
            if (contentType is not null)
            {
                request.Content.Headers.TryAddWithoutValidation("Content-Type", contentType);
            }
        }

        var response = await _http.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        return (response.StatusCode, text.Length > 0 && text[0] is '{' or '[' ? JsonNode.Parse(text) : null, response);
    }

    [Fact]
    public async Task V1_is_server_live_reads_status_alive_from_the_root()
    {
        var (status, body, _) = await SendAsync(HttpMethod.Get, "/");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("alive", body!["status"]!.GetValue<string>().ToLowerInvariant());
    }

    [Fact]
    public async Task V2_is_server_live_and_is_server_ready_read_live_and_ready()
    {
        Assert.True((await SendAsync(HttpMethod.Get, "/v2/health/live")).Body!["live"]!.GetValue<bool>());
        var (status, body, _) = await SendAsync(HttpMethod.Get, "/v2/health/ready");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.True(body!["ready"]!.GetValue<bool>());
    }

    [Fact]
    public async Task V1_is_model_ready_reads_ready_and_takes_503_as_not_ready()
    {
        var (status, body, _) = await SendAsync(HttpMethod.Get, "/v1/models/double");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.True(body!["ready"]!.GetValue<bool>());

        // The client answers False on 503 and raises on anything else that is not 2xx.
        Assert.Equal(HttpStatusCode.ServiceUnavailable, (await SendAsync(HttpMethod.Get, "/v1/models/zipmap")).Status);
        Assert.Equal(HttpStatusCode.NotFound, (await SendAsync(HttpMethod.Get, "/v1/models/never-declared")).Status);
    }

    [Fact]
    public async Task V2_is_model_ready_reads_the_status_code()
    {
        Assert.Equal(HttpStatusCode.OK, (await SendAsync(HttpMethod.Get, "/v2/models/double/ready")).Status);
        Assert.False((await SendAsync(HttpMethod.Get, "/v2/models/zipmap/ready")).Response.IsSuccessStatusCode);
        Assert.False((await SendAsync(HttpMethod.Get, "/v2/models/never-declared/ready")).Response.IsSuccessStatusCode);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("application/json")]
    public async Task V1_infer_posts_instances_and_reads_predictions(string? contentType)
    {
        var (status, body, _) = await SendAsync(HttpMethod.Post, "/v1/models/double:predict", """{"instances":[[1.0,2.0],[3.0,4.0]]}"""u8.ToArray(), contentType);
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("[[2,4],[6,8]]", body!["predictions"]!.ToJsonString());
    }

    [Theory]
    [InlineData(null)]
    [InlineData("application/json")]
    public async Task V2_infer_posts_json_and_reads_the_whole_answer_as_json_when_it_has_no_header_length(string? contentType)
    {
        var request = """{"id":"kserve-client","inputs":[{"name":"input","shape":[1,2],"datatype":"FP32","data":[1.0,2.0]}]}"""u8.ToArray();
        var (status, body, response) = await SendAsync(HttpMethod.Post, "/v2/models/double/infer", request, contentType);
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.False(response.Headers.Contains("inference-header-content-length"));
        Assert.Equal("kserve-client", body!["id"]!.GetValue<string>());
        Assert.Equal("[2,4]", body["outputs"]![0]!["data"]!.ToJsonString());
    }

    [Fact]
    public async Task V2_infer_with_binary_data_sends_the_header_length_and_reads_it_back()
    {
        var json = Encoding.UTF8.GetBytes("""{"inputs":[{"name":"input","shape":[1,2],"datatype":"FP32","parameters":{"binary_data_size":8}}],"outputs":[{"name":"output","parameters":{"binary_data":true}}]}""");
        byte[] body = [.. json, .. BitConverter.GetBytes(1f), .. BitConverter.GetBytes(2f)];
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v2/models/double/infer") { Content = new ByteArrayContent(body) };
        request.Content.Headers.TryAddWithoutValidation("Content-Type", "application/octet-stream");
        request.Content.Headers.TryAddWithoutValidation("inference-header-content-length", json.Length.ToString(System.Globalization.CultureInfo.InvariantCulture));
        request.Headers.TryAddWithoutValidation("Accept-Encoding", "gzip, deflate");
        using var response = await _http.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var content = await response.Content.ReadAsByteArrayAsync();

        // InferResponse.from_bytes(content, int(header or len(content))).
        var headerLength = int.Parse(response.Headers.GetValues("inference-header-content-length").Single(), System.Globalization.CultureInfo.InvariantCulture);
        var header = JsonNode.Parse(content.AsSpan(0, headerLength))!;
        Assert.Equal(8, header["outputs"]![0]!["parameters"]!["binary_data_size"]!.GetValue<long>());
        Assert.Equal([2f, 4f], [BitConverter.ToSingle(content, headerLength), BitConverter.ToSingle(content, headerLength + 4)]);
    }

    [Fact]
    public async Task V1_explain_without_an_explainer_is_a_json_501_the_client_raises_on()
    {
        var (status, body, _) = await SendAsync(HttpMethod.Post, "/v1/models/double:explain", """{"instances":[[1.0,2.0]]}"""u8.ToArray());
        Assert.Equal(HttpStatusCode.NotImplemented, status);
        Assert.Contains("no explainer", body!["error"]!.GetValue<string>());
    }

    [Fact]
    public async Task The_model_server_routes_a_client_or_probe_may_call_answer()
    {
        var metadata = (await SendAsync(HttpMethod.Get, "/v2")).Body!;
        Assert.Equal("orleans-kserve", metadata["name"]!.GetValue<string>());
        Assert.NotNull(metadata["extensions"]!.AsArray());
        Assert.Contains("double", (await SendAsync(HttpMethod.Get, "/v2/models")).Body!["models"]!.AsArray().Select(m => m!.GetValue<string>()));
        Assert.Contains("double", (await SendAsync(HttpMethod.Get, "/v1/models")).Body!["models"]!.AsArray().Select(m => m!.GetValue<string>()));
        Assert.Equal(HttpStatusCode.OK, (await SendAsync(HttpMethod.Get, "/metrics")).Status);
    }
}
