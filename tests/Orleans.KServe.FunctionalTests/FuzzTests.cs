using System.Diagnostics;
using System.Text;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Net.Client;
using Orleans.KServe.Grpc;

namespace Orleans.KServe.FunctionalTests;

/// <summary>
/// Mutation fuzzing from valid requests with a fixed seed and a time budget: every mutant must get a 2xx or 4xx
/// (INVALID_ARGUMENT / NOT_FOUND on gRPC), never a 5xx, a dropped connection or a hang, and the server must
/// still answer a valid request afterwards.
/// </summary>
[Collection(ServerCollection.Name)]
public sealed class FuzzTests(ServerFixture server)
{
    private static readonly TimeSpan Budget = TimeSpan.FromSeconds(6);
    private const int Seed = 20261127;

    private static readonly string[] Seeds =
    [
        """{"id":"a","inputs":[{"name":"input","shape":[2,2],"datatype":"FP32","data":[[1,2],[3,4]]}]}""",
        """{"inputs":[{"name":"input","shape":[1,3],"datatype":"BYTES","data":["a","bc","\u00e9"]}],"outputs":[{"name":"output"}]}""",
        """{"inputs":[{"name":"input","shape":[2,1],"datatype":"INT8","data":[-1,7]}],"parameters":{"p":1}}""",
        """{"inputs":[{"name":"input","shape":[1,2],"datatype":"FP16","data":[0.5,2]}]}""",
        """{"inputs":[{"name":"input","shape":[1,2],"datatype":"BOOL","data":[true,false]}]}""",
    ];

    private static readonly string[] Paths =
    [
        "/v2/models/double/infer", "/v2/models/identity-bytes/infer", "/v2/models/identity-int8/infer",
        "/v2/models/identity-fp16/infer", "/v2/models/identity-bool/infer",
    ];

    private static readonly string[] Datatypes = ["BOOL", "UINT8", "INT64", "FP16", "FP32", "FP64", "BYTES", "BF16", "fp32", "", "X"];

    private static readonly string[] Numbers = ["-1", "0", "1", "3", "65536", "2147483648", "9223372036854775807", "1e300", "-0", "1.5", "null", "\"2\""];

    [Fact]
    public async Task Rest_json_mutants_get_4xx_never_5xx()
    {
        var random = new Random(Seed);
        var count = 0;
        var watch = Stopwatch.StartNew();
        while (watch.Elapsed < Budget)
        {
            var pick = random.Next(Seeds.Length);
            var mutant = Mutate(Seeds[pick], random);
            using var content = new ByteArrayContent(mutant);
            content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/json");
            using var response = await server.Http.PostAsync(Paths[pick], content).WaitAsync(TimeSpan.FromSeconds(30));
            var status = (int)response.StatusCode;
            Assert.True(status is >= 200 and < 500, $"mutant {count} of seed {pick} got {status}: {Encoding.UTF8.GetString(mutant)}\n{await response.Content.ReadAsStringAsync()}");
            count++;
        }

        Assert.True(count > 50, $"only {count} mutants ran in the budget");
        Assert.Equal(200, (await server.PostJsonAsync(Paths[0], Seeds[0])).Status);
    }

    private static byte[] Mutate(string seed, Random random)
    {
        var text = seed;
        var rounds = 1 + random.Next(3);
        for (var r = 0; r < rounds; r++)
        {
            switch (random.Next(7))
            {
                case 0:
                    // Replace one number with another (dims, data, sizes).
                    var digits = Enumerable.Range(0, text.Length).Where(i => char.IsAsciiDigit(text[i])).ToList();
                    if (digits.Count > 0)
                    {
                        var at = digits[random.Next(digits.Count)];
                        text = text[..at] + Numbers[random.Next(Numbers.Length)] + text[(at + 1)..];
                    }

                    break;
                case 1:
                    // Another datatype.
                    var dt = text.IndexOf("\"datatype\":\"", StringComparison.Ordinal);
                    if (dt >= 0)
                    {
                        var start = dt + 12;
                        var end = text.IndexOf('"', start);
                        text = text[..start] + Datatypes[random.Next(Datatypes.Length)] + (end < 0 ? "" : text[end..]);
                    }

                    break;
                case 2 when text.Length > 0:
                    text = text[..random.Next(text.Length)];
                    break;
                case 3 when text.Length > 0:
                    var cut = random.Next(text.Length);
                    text = text.Remove(cut, Math.Min(random.Next(1, 6), text.Length - cut));
                    break;
                case 4:
                    text = text.Insert(random.Next(text.Length), ((char)random.Next(32, 127)).ToString());
                    break;
                case 5:
                    // Grow or shrink the shape's rank.
                    text = text.Replace("\"shape\":[", random.Next(2) == 0 ? "\"shape\":[1," : "\"shape\":[", StringComparison.Ordinal)
                        .Replace(",2]", random.Next(2) == 0 ? "]" : ",2]", StringComparison.Ordinal);
                    break;
                case 6 when text.Length > 0:
                    // Duplicate a slice.
                    var from = random.Next(text.Length);
                    var length = Math.Min(random.Next(1, 20), text.Length - from);
                    text = text.Insert(random.Next(text.Length), text.Substring(from, length));
                    break;
            }
        }

        var bytes = Encoding.UTF8.GetBytes(text);
        if (random.Next(20) == 0 && bytes.Length > 0)
        {
            bytes[random.Next(bytes.Length)] = (byte)random.Next(256);
        }

        return bytes;
    }

    [Fact]
    public async Task Rest_binary_mutants_get_4xx_never_5xx()
    {
        var random = new Random(Seed);
        var count = 0;
        var watch = Stopwatch.StartNew();
        while (watch.Elapsed < Budget)
        {
            var bytesModel = random.Next(2) == 0;
            var payload = bytesModel ? new byte[] { 1, 0, 0, 0, (byte)'a', 2, 0, 0, 0, (byte)'b', (byte)'c' } : new byte[8];
            var declared = payload.Length;
            var shape = "[1,2]";
            for (var r = 1 + random.Next(3); r > 0; r--)
            {
                switch (random.Next(5))
                {
                    case 0: declared = new[] { -1, 0, declared - 1, declared + 1, int.MaxValue }[random.Next(5)]; break;
                    case 1: payload = payload[..random.Next(payload.Length + 1)]; break;
                    case 2: payload = [.. payload, .. new byte[random.Next(1, 5)]]; break;
                    case 3: if (payload.Length > 0) { payload[random.Next(payload.Length)] = (byte)random.Next(256); } break;
                    default: shape = new[] { "[2,2]", "[1]", "[0,2]", "[1,-2]", "[4294967296,2]" }[random.Next(5)]; break;
                }
            }

            var header = Encoding.UTF8.GetBytes(
                $$$"""{"inputs":[{"name":"input","shape":{{{shape}}},"datatype":"{{{(bytesModel ? "BYTES" : "FP32")}}}","parameters":{"binary_data_size":{{{declared}}}}}]}""");
            var headerLength = random.Next(6) switch
            {
                0 => header.Length + 1 + random.Next(100),
                1 => header.Length - 1 - random.Next(Math.Min(10, header.Length - 1)),
                2 => -1,
                _ => header.Length,
            };
            using var content = new ByteArrayContent([.. header, .. payload]);
            content.Headers.Add("Inference-Header-Content-Length", headerLength.ToString(System.Globalization.CultureInfo.InvariantCulture));
            var path = bytesModel ? "/v2/models/identity-bytes/infer" : "/v2/models/double/infer";
            using var response = await server.Http.PostAsync(path, content).WaitAsync(TimeSpan.FromSeconds(30));
            var status = (int)response.StatusCode;
            Assert.True(status is >= 200 and < 500,
                $"binary mutant {count} got {status} (header length {headerLength} of {header.Length}, payload {payload.Length}): {Encoding.UTF8.GetString(header)}\n{await response.Content.ReadAsStringAsync()}");
            count++;
        }

        Assert.True(count > 50, $"only {count} mutants ran in the budget");
        Assert.Equal(200, (await server.PostJsonAsync(Paths[0], Seeds[0])).Status);
    }

    [Fact]
    public async Task Grpc_mutants_get_invalid_argument_or_not_found_never_internal()
    {
        using var channel = GrpcChannel.ForAddress(server.GrpcAddress);
        var client = new GRPCInferenceService.GRPCInferenceServiceClient(channel);
        var random = new Random(Seed);
        var count = 0;
        var watch = Stopwatch.StartNew();
        while (watch.Elapsed < Budget)
        {
            var request = MutateGrpc(random);
            try
            {
                await client.ModelInferAsync(request, deadline: DateTime.UtcNow.AddSeconds(30));
            }
            catch (RpcException e)
            {
                Assert.True(e.StatusCode is StatusCode.InvalidArgument or StatusCode.NotFound,
                    $"mutant {count} got {e.StatusCode} ({e.Status.Detail}): {request}");
            }

            count++;
        }

        Assert.True(count > 50, $"only {count} mutants ran in the budget");
        Assert.True((await client.ServerLiveAsync(new ServerLiveRequest())).Live);
    }

    private static ModelInferRequest MutateGrpc(Random random)
    {
        var bytesModel = random.Next(2) == 0;
        var request = new ModelInferRequest { ModelName = bytesModel ? "identity-bytes" : "double" };
        var input = new ModelInferRequest.Types.InferInputTensor { Name = "input", Datatype = bytesModel ? "BYTES" : "FP32" };
        input.Shape.Add([1, 2]);
        request.Inputs.Add(input);
        var raw = bytesModel ? new byte[] { 1, 0, 0, 0, (byte)'a', 2, 0, 0, 0, (byte)'b', (byte)'c' } : new byte[8];
        var useRaw = random.Next(3) != 0;
        if (!useRaw)
        {
            input.Contents = new InferTensorContents();
            if (bytesModel)
            {
                input.Contents.BytesContents.Add([ByteString.CopyFromUtf8("a"), ByteString.CopyFromUtf8("bc")]);
            }
            else
            {
                input.Contents.Fp32Contents.Add([1f, 2f]);
            }
        }

        for (var r = 1 + random.Next(3); r > 0; r--)
        {
            switch (random.Next(8))
            {
                case 0: input.Shape[random.Next(input.Shape.Count)] = new long[] { -1, 0, 3, 1L << 40, long.MaxValue }[random.Next(5)]; break;
                case 1: input.Shape.Add(random.Next(4)); break;
                case 2: input.Datatype = Datatypes[random.Next(Datatypes.Length)]; break;
                case 3: raw = raw[..random.Next(raw.Length + 1)]; break;
                case 4: raw = [.. raw, .. new byte[random.Next(1, 9)]]; break;
                case 5: if (raw.Length > 0) { raw[random.Next(raw.Length)] = (byte)random.Next(256); } break;
                case 6: request.ModelName = random.Next(4) == 0 ? "no-such-model" : request.ModelName; break;
                default: input.Name = random.Next(4) == 0 ? "other" : input.Name; break;
            }
        }

        if (useRaw)
        {
            request.RawInputContents.Add(ByteString.CopyFrom(raw));
            if (random.Next(10) == 0)
            {
                request.RawInputContents.Add(ByteString.CopyFrom(raw));
            }
        }

        return request;
    }
}
