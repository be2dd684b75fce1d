using System.Net.Sockets;
using System.Text;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Net.Client;
using Orleans.KServe.Grpc;

namespace Orleans.KServe.FunctionalTests;

/// <summary>
/// Bytes a client gets wrong, on either port: each is a 400 / INVALID_ARGUMENT saying what is wrong, caught before
/// a runtime sees the data, never a 500, UNKNOWN or INTERNAL.
/// </summary>
[Collection(ServerCollection.Name)]
public sealed class MalformedInputTests(ServerFixture server)
{
    /// <summary>Every unary rpc of the service (ModelStreamInfer is tested on its own).</summary>
    public static TheoryData<string> UnaryRpcs => new()
    {
        "ServerLive", "ServerReady", "ModelReady", "ServerMetadata", "ModelMetadata", "ModelInfer", "ModelConfig",
        "ModelStatistics", "RepositoryIndex", "RepositoryModelLoad", "RepositoryModelUnload",
    };

    /// <summary>Bytes that are no protobuf message: a truncated length, a varint of eleven bytes, a field number 0, an end-group tag alone.</summary>
    private static readonly byte[][] NotProtobuf =
    [
        [0x0A, 0xFF],
        [0x08, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01],
        [0x00, 0x01],
        [0x0C],
        [0x0A, 0x05, (byte)'a', (byte)'b'],
    ];

    [Theory]
    [MemberData(nameof(UnaryRpcs))]
    public async Task Unparseable_protobuf_is_invalid_argument_on_every_rpc(string rpc)
    {
        using var grpc = new RawGrpc(server.GrpcAddress);
        foreach (var bytes in NotProtobuf)
        {
            var (status, message, _) = await grpc.CallAsync(rpc, RawGrpc.Frame(bytes));
            Assert.True(status == StatusCode.InvalidArgument, $"{rpc} with {Convert.ToHexString(bytes)}: {status} {message}");
            Assert.Contains("is not a valid", message);
        }
    }

    [Fact]
    public async Task Unparseable_protobuf_on_the_stream_is_invalid_argument()
    {
        using var grpc = new RawGrpc(server.GrpcAddress);
        var (status, message, _) = await grpc.CallAsync("ModelStreamInfer", RawGrpc.Frame(NotProtobuf[0]));
        Assert.Equal(StatusCode.InvalidArgument, status);
        Assert.Contains("is not a valid ModelInferRequest", message);
    }

    [Theory]
    [InlineData(new byte[] { 2, 0, 0, 0, 0 }, "compressed flag is 2")]
    [InlineData(new byte[] { 1, 0, 0, 0, 1, 0 }, "names no grpc-encoding")]
    [InlineData(new byte[] { 0, 0, 0, 0, 9, 0x0A, 0x02 }, "ended 7 bytes before the end of the 9-byte message")]
    [InlineData(new byte[] { 0, 0, 0 }, "ended inside a message header")]
    public async Task Framing_the_caller_got_wrong_is_invalid_argument_naming_it(byte[] body, string expected)
    {
        using var grpc = new RawGrpc(server.GrpcAddress);
        var (status, message, _) = await grpc.CallAsync("ModelMetadata", body);
        Assert.Equal(StatusCode.InvalidArgument, status);
        Assert.Contains(expected, message);
    }

    [Fact]
    public async Task A_gzip_message_that_is_not_gzip_is_invalid_argument()
    {
        using var grpc = new RawGrpc(server.GrpcAddress);
        var (status, message, _) = await grpc.CallAsync("ModelMetadata", RawGrpc.Frame([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], compressed: true), "gzip");
        Assert.Equal(StatusCode.InvalidArgument, status);
        Assert.Contains("cannot be inflated", message);
    }

    private static readonly byte[] NotUtf8 = [(byte)'a', 0xFF, (byte)'b'];

    private static byte[] JsonWithBytes(string before, byte[] inside, string after) =>
        [.. Encoding.UTF8.GetBytes(before), .. inside, .. Encoding.UTF8.GetBytes(after)];

    private async Task<(int Status, string Error)> PostAsync(string path, byte[] body, string? contentType = "application/json", int? headerLength = null)
    {
        using var content = new ByteArrayContent(body);
        if (contentType is not null)
        {
            content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue(contentType);
        }

        if (headerLength is { } length)
        {
            content.Headers.Add("Inference-Header-Content-Length", length.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }

        using var response = await server.Http.PostAsync(path, content);
        var text = await response.Content.ReadAsStringAsync();
        return ((int)response.StatusCode, text);
    }

    [Fact]
    public async Task Invalid_utf8_in_a_json_string_is_400_before_the_string_model_runs()
    {
        var body = JsonWithBytes("""{"inputs":[{"name":"text","shape":[1],"datatype":"BYTES","data":[" """.TrimEnd(), NotUtf8, "\"]}]}");
        var (status, error) = await PostAsync("/v2/models/uppercase/infer", body);
        Assert.Equal(400, status);
        Assert.Contains("not valid UTF-8", error);

        var v1 = JsonWithBytes("""{"instances":[" """.TrimEnd(), NotUtf8, "\"]}");
        (status, error) = await PostAsync("/v1/models/uppercase:predict", v1);
        Assert.Equal(400, status);
        Assert.Contains("not valid UTF-8", error);
    }

    [Fact]
    public async Task A_json_body_that_is_not_utf8_anywhere_is_400()
    {
        var body = JsonWithBytes("""{"note":" """.TrimEnd(), NotUtf8, "\",\"inputs\":[{\"name\":\"input\",\"shape\":[1,2],\"datatype\":\"FP32\",\"data\":[1,2]}]}");
        var (status, error) = await PostAsync("/v2/models/double/infer", body);
        Assert.Equal(400, status);
        Assert.Contains("byte 10 (0xFF)", error);
    }

    [Fact]
    public async Task Invalid_utf8_in_a_binary_bytes_element_is_400_naming_the_element()
    {
        var header = Encoding.UTF8.GetBytes("""{"inputs":[{"name":"text","shape":[2],"datatype":"BYTES","parameters":{"binary_data_size":15}}]}""");
        byte[] data = [4, 0, 0, 0, .. "okay"u8, 3, 0, 0, 0, .. NotUtf8, 0];
        data = data[..15];
        var (status, error) = await PostAsync("/v2/models/uppercase/infer", [.. header, .. data], "application/octet-stream", header.Length);
        Assert.Equal(400, status);
        Assert.Contains("element 1 is not valid UTF-8", error);
    }

    [Fact]
    public async Task Invalid_utf8_in_grpc_bytes_contents_or_raw_input_is_invalid_argument()
    {
        using var channel = GrpcChannel.ForAddress(server.GrpcAddress);
        var client = new GRPCInferenceService.GRPCInferenceServiceClient(channel);
        var typed = new ModelInferRequest { ModelName = "uppercase" };
        var input = new ModelInferRequest.Types.InferInputTensor { Name = "text", Datatype = "BYTES", Contents = new InferTensorContents() };
        input.Shape.Add(2);
        input.Contents.BytesContents.Add([ByteString.CopyFromUtf8("fine"), ByteString.CopyFrom(NotUtf8)]);
        typed.Inputs.Add(input);
        var e = await Assert.ThrowsAsync<RpcException>(() => client.ModelInferAsync(typed).ResponseAsync);
        Assert.Equal(StatusCode.InvalidArgument, e.StatusCode);
        Assert.Contains("element 1 is not valid UTF-8", e.Status.Detail);

        var raw = new ModelInferRequest { ModelName = "uppercase" };
        var rawInput = new ModelInferRequest.Types.InferInputTensor { Name = "text", Datatype = "BYTES" };
        rawInput.Shape.Add(1);
        raw.Inputs.Add(rawInput);
        raw.RawInputContents.Add(ByteString.CopyFrom([3, 0, 0, 0, .. NotUtf8]));
        e = await Assert.ThrowsAsync<RpcException>(() => client.ModelInferAsync(raw).ResponseAsync);
        Assert.Equal(StatusCode.InvalidArgument, e.StatusCode);
        Assert.Contains("element 0 is not valid UTF-8", e.Status.Detail);

        // Text that is UTF-8 beyond ASCII still serves.
        var fine = new ModelInferRequest { ModelName = "uppercase" };
        var fineInput = new ModelInferRequest.Types.InferInputTensor { Name = "text", Datatype = "BYTES", Contents = new InferTensorContents() };
        fineInput.Shape.Add(1);
        fineInput.Contents.BytesContents.Add(ByteString.CopyFromUtf8("w\u00f6rld"));
        fine.Inputs.Add(fineInput);
        var answer = await client.ModelInferAsync(fine);
        var upper = answer.Outputs[0].Contents?.BytesContents.Count > 0
            ? answer.Outputs[0].Contents.BytesContents[0].ToStringUtf8()
            : Encoding.UTF8.GetString(answer.RawOutputContents[0].Span[4..]);
        Assert.StartsWith("W", upper);
        Assert.EndsWith("RLD", upper);
    }

    [Theory]
    [InlineData("FFFFFFFFFFFFFFFF")]
    [InlineData("80000000")]
    public async Task A_chunk_size_past_what_a_body_can_hold_is_400(string chunkSize)
    {
        using var socket = new TcpClient();
        await socket.ConnectAsync(server.BaseAddress.Host, server.BaseAddress.Port);
        var stream = socket.GetStream();
        var request = $"POST /v2/models/double/infer HTTP/1.1\r\nHost: {server.BaseAddress.Authority}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n{chunkSize}\r\n{{\"inputs\":";
        await stream.WriteAsync(Encoding.ASCII.GetBytes(request));
        var answer = await ReadAnswerAsync(stream);
        Assert.StartsWith("HTTP/1.1 400", answer);
        Assert.Contains("the request body cannot be read", answer);
    }

    private static async Task<string> ReadAnswerAsync(NetworkStream stream)
    {
        var text = new StringBuilder();
        var buffer = new byte[4096];
        while (!text.ToString().Contains("\"error\""))
        {
            var read = await stream.ReadAsync(buffer).AsTask().WaitAsync(TimeSpan.FromSeconds(30));
            if (read == 0)
            {
                break;
            }

            text.Append(Encoding.ASCII.GetString(buffer, 0, read));
        }

        return text.ToString();
    }
}
