using System.IO.Compression;
using System.Net.Sockets;
using System.Text;
using Google.Protobuf;
using Grpc.Core;
using Microsoft.Extensions.DependencyInjection;
using Orleans.KServe.Gateway.Serving;
using Orleans.KServe.Grpc;
using Orleans.KServe.ModelTools;
using Xunit.Abstractions;

namespace Orleans.KServe.FunctionalTests;

/// <summary>A server with small limits: 4 MiB of request bytes held at once, 1 MiB inflated per gRPC message.</summary>
public sealed class LimitsServerFixture : ServerFixture
{
    public const long Budget = 4L * 1024 * 1024;
    public const long Inflate = 1024 * 1024;

    protected override bool WriteSamples => false;

    protected override IEnumerable<string> ExtraArguments =>
        ["--max-buffered-request-bytes", Budget.ToString(), "--grpc-max-decompressed-bytes", Inflate.ToString()];

    protected override void WriteMore(string folder) => WriteDoubleOnly(folder);

    public static void WriteDoubleOnly(string folder)
    {
        DoubleModel.Build().Save(Path.Combine(folder, "double", "model.onnx"));
        File.WriteAllText(Path.Combine(folder, "double.yaml"), """
            apiVersion: serving.kserve.io/v1beta1
            kind: InferenceService
            metadata:
              name: double
            spec:
              predictor:
                model:
                  modelFormat: {name: onnx}
                  storageUri: file://double
            """);
    }

    public RequestBytesBudget RequestBudget => App.Services.GetRequiredService<RequestBytesBudget>();
}

public sealed class RequestLimitsTests(LimitsServerFixture server) : IClassFixture<LimitsServerFixture>
{
    private static ModelInferRequest DoubleRequest()
    {
        var request = new ModelInferRequest { ModelName = "double" };
        var input = new ModelInferRequest.Types.InferInputTensor { Name = "input", Datatype = "FP32" };
        input.Shape.Add([1, 2]);
        request.Inputs.Add(input);
        request.RawInputContents.Add(ByteString.CopyFrom(BitConverter.GetBytes(1f).Concat(BitConverter.GetBytes(2f)).ToArray()));
        return request;
    }

    private static float[] Outputs(byte[] body)
    {
        var response = ModelInferResponse.Parser.ParseFrom(body.AsSpan(5));
        var raw = response.RawOutputContents[0].Span;
        return [BitConverter.ToSingle(raw), BitConverter.ToSingle(raw[4..])];
    }

    [Theory]
    [InlineData(0xFFFFFFFFu)]
    [InlineData(0x80000000u)]
    [InlineData(300u * 1024 * 1024)]
    public async Task A_frame_declaring_more_than_the_message_limit_is_resource_exhausted_from_its_header(uint declared)
    {
        using var grpc = new RawGrpc(server.GrpcAddress);
        var (status, message, _) = await grpc.CallAsync("ModelInfer", [.. RawGrpc.Header(false, declared), 1, 2, 3]);
        Assert.Equal(StatusCode.ResourceExhausted, status);
        Assert.Contains($"declares {declared} bytes", message);
        Assert.Contains("--grpc-max-message-bytes", message);

        var (ok, _, body) = await grpc.CallAsync("ModelInfer", RawGrpc.Frame(DoubleRequest()));
        Assert.Equal(StatusCode.OK, ok);
        Assert.Equal([2f, 4f], Outputs(body));
    }

    [Fact]
    public async Task A_compressed_message_that_inflates_past_the_limit_is_resource_exhausted_while_it_inflates()
    {
        using var grpc = new RawGrpc(server.GrpcAddress);
        var bomb = RawGrpc.GzipBomb("double", 64L * 1024 * 1024);
        Assert.True(bomb.Length < 256 * 1024, $"the bomb is {bomb.Length} bytes");
        var (status, message, _) = await grpc.CallAsync("ModelInfer", RawGrpc.Frame(bomb, compressed: true), "gzip");
        Assert.Equal(StatusCode.ResourceExhausted, status);
        Assert.Contains($"inflates to more than {LimitsServerFixture.Inflate} bytes", message);
        Assert.Contains("--grpc-max-decompressed-bytes", message);
        Assert.Equal(0, server.RequestBudget.Held);
    }

    [Theory]
    [InlineData("gzip")]
    [InlineData("deflate")]
    public async Task A_compressed_message_within_the_limit_is_served(string coding)
    {
        using var grpc = new RawGrpc(server.GrpcAddress);
        using var compressed = new MemoryStream();
        using (Stream compressor = coding == "gzip" ? new GZipStream(compressed, CompressionLevel.Fastest, true) : new ZLibStream(compressed, CompressionLevel.Fastest, true))
        {
            compressor.Write(DoubleRequest().ToByteArray());
        }

        var (status, message, body) = await grpc.CallAsync("ModelInfer", RawGrpc.Frame(compressed.ToArray(), compressed: true), coding);
        Assert.True(status == StatusCode.OK, message);
        Assert.Equal([2f, 4f], Outputs(body));
    }

    [Fact]
    public async Task Requests_past_the_bytes_budget_are_refused_on_both_transports_while_another_holds_it()
    {
        // A REST request whose 3 MiB body is announced and not yet sent holds 3 MiB of the 4 MiB budget.
        var held = 3 * 1024 * 1024;
        using (var socket = new TcpClient())
        {
            await socket.ConnectAsync(server.BaseAddress.Host, server.BaseAddress.Port);
            var head = $"POST /v2/models/double/infer HTTP/1.1\r\nHost: {server.BaseAddress.Authority}\r\nContent-Type: application/json\r\nContent-Length: {held}\r\n\r\n{{\"inputs\":";
            await socket.GetStream().WriteAsync(Encoding.ASCII.GetBytes(head));
            await Wait.UntilAsync(() => server.RequestBudget.Held >= held, "the half-sent request to take its bytes from the budget");

            var (status, body) = await server.PostJsonAsync("/v2/models/double/infer", Padded(2 * 1024 * 1024));
            Assert.Equal(413, status);
            Assert.Contains("--max-buffered-request-bytes", Json.Error(body));

            using var grpc = new RawGrpc(server.GrpcAddress);
            var (grpcStatus, message, _) = await grpc.CallAsync("ModelInfer", RawGrpc.Frame(Padded(DoubleRequest(), 2 * 1024 * 1024)));
            Assert.Equal(StatusCode.ResourceExhausted, grpcStatus);
            Assert.Contains("--max-buffered-request-bytes", message);
        }

        // The client went away: what it held is given back, and the same requests are served.
        await Wait.UntilAsync(() => server.RequestBudget.Held == 0, "the budget to be given back");
        Assert.Equal(200, (await server.PostJsonAsync("/v2/models/double/infer", Padded(2 * 1024 * 1024))).Status);
        using (var grpc = new RawGrpc(server.GrpcAddress))
        {
            var (status, message, body) = await grpc.CallAsync("ModelInfer", RawGrpc.Frame(Padded(DoubleRequest(), 2 * 1024 * 1024)));
            Assert.True(status == StatusCode.OK, message);
            Assert.Equal([2f, 4f], Outputs(body));
        }
    }

    [Fact]
    public async Task A_grpc_message_whose_frame_has_arrived_holds_its_bytes_until_the_call_ends()
    {
        using var grpc = new RawGrpc(server.GrpcAddress);
        var frame = RawGrpc.Frame(Padded(DoubleRequest(), 3 * 1024 * 1024));
        var content = new HeldContent(frame[..1024], frame[1024..]);
        var call = grpc.CallAsync("ModelInfer", content);
        await content.FirstSent.Task.WaitAsync(TimeSpan.FromSeconds(30));
        await Wait.UntilAsync(() => server.RequestBudget.Held >= 3 * 1024 * 1024, "the frame's declared length to be taken from the budget");

        var (status, body) = await server.PostJsonAsync("/v2/models/double/infer", Padded(2 * 1024 * 1024));
        Assert.Equal(413, status);
        Assert.Contains("--max-buffered-request-bytes", Json.Error(body));

        content.Release();
        var (grpcStatus, message, answer) = await call;
        Assert.True(grpcStatus == StatusCode.OK, message);
        Assert.Equal([2f, 4f], Outputs(answer));
        await Wait.UntilAsync(() => server.RequestBudget.Held == 0, "the budget to be given back");
    }

    /// <summary>A valid request for <c>double</c> padded with an unknown field to about <paramref name="bytes"/>.</summary>
    private static string Padded(int bytes) =>
        $$"""{"pad":"{{new string('x', bytes)}}","inputs":[{"name":"input","shape":[1,2],"datatype":"FP32","data":[1,2]}]}""";

    private static byte[] Padded(ModelInferRequest request, int bytes) =>
        [.. request.ToByteArray(), .. new UnknownFieldBytes(bytes).Encode()];

    /// <summary>An unknown length-delimited field (number 99): the server's parser skips it.</summary>
    private readonly record struct UnknownFieldBytes(int Length)
    {
        public byte[] Encode()
        {
            var stream = new MemoryStream();
            var output = new CodedOutputStream(stream);
            output.WriteTag(99, WireFormat.WireType.LengthDelimited);
            output.WriteBytes(ByteString.CopyFrom(new byte[Length]));
            output.Flush();
            return stream.ToArray();
        }
    }
}

/// <summary>
/// Decompression bombs against the server in its own process, its peak memory read from /proc by this process: six
/// 250 MiB gzip messages at once (about 1.5 MB sent) must cost the server no more than the inflate limit each.
/// </summary>
public sealed class DecompressionMemoryTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Six_gzip_bombs_at_once_are_refused_without_the_server_allocating_what_they_inflate_to()
    {
        var repository = Directory.CreateTempSubdirectory("kserve-bombs-").FullName;
        try
        {
            LimitsServerFixture.WriteDoubleOnly(repository);
            await using var server = await ServerProcess.StartAsync(
                "--http-port", "0", "--grpc-port", "0", "--silo-port", "0", "--gateway-port", "0", "--model-repository", repository,
                "--grpc-max-decompressed-bytes", (8 * 1024 * 1024).ToString());
            using var grpc = new RawGrpc(server.GrpcAddress);
            var bomb = RawGrpc.Frame(RawGrpc.GzipBomb("double", 250L * 1024 * 1024), compressed: true);

            // One first, so that what the first call of each kind costs once is in the baseline.
            Assert.Equal(StatusCode.ResourceExhausted, (await grpc.CallAsync("ModelInfer", bomb, "gzip")).Status);
            var before = server.PeakResidentBytes;
            var started = System.Diagnostics.Stopwatch.StartNew();
            var answers = await Task.WhenAll(Enumerable.Range(0, 6).Select(_ => grpc.CallAsync("ModelInfer", bomb, "gzip")));
            var elapsed = started.Elapsed;
            var after = server.PeakResidentBytes;
            output.WriteLine($"six bombs of {bomb.Length} bytes each (250 MiB inflated): peak RSS {before / 1048576} MiB before, {after / 1048576} MiB after, answered in {elapsed.TotalMilliseconds:F0} ms");

            Assert.All(answers, a => Assert.Equal(StatusCode.ResourceExhausted, a.Status));
            Assert.All(answers, a => Assert.Contains("inflates to more than 8388608 bytes", a.Message));
            Assert.True(after - before < 256L * 1024 * 1024, $"the server's peak memory grew by {(after - before) / 1048576} MiB");
        }
        finally
        {
            Directory.Delete(repository, recursive: true);
        }
    }
}
