using System.Buffers.Binary;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.RegularExpressions;
using Google.Protobuf;
using Orleans.KServe.Grpc;

namespace Orleans.KServe.Bench.Client;

/// <summary>A wrong answer (or a failed call): what a check counts as a failure.</summary>
internal sealed class CheckException(string message) : Exception(message);

/// <summary>One output tensor of an answer, whatever the transport.</summary>
internal sealed record OutputTensor(string Name, string Datatype, long[] Shape, float[] Values);

/// <summary>What one request asks: the model, its FP32 input and whether it travels as raw bytes.</summary>
internal sealed record Expectation(string Model, long[] Shape, float[] Input, bool Raw)
{
    /// <summary>
    /// Checks an answer. `double` must answer exactly 2 × input (doubling is exact in FP32) with the input's shape; any
    /// other model must answer FP32 tensors whose element counts match their shapes and whose values are all finite.
    /// </summary>
    public void Verify(string? id, IReadOnlyList<OutputTensor> outputs)
    {
        if (id != Payload.RequestId)
        {
            throw new CheckException($"the answer's id is '{id}', not '{Payload.RequestId}'");
        }
        if (outputs.Count == 0)
        {
            throw new CheckException("the answer has no outputs");
        }

        foreach (var output in outputs)
        {
            if (output.Datatype != "FP32")
            {
                throw new CheckException($"output '{output.Name}' is {output.Datatype}, not FP32");
            }
            var elements = output.Shape.Aggregate(1L, (product, dimension) => product * dimension);
            if (elements != output.Values.Length)
            {
                throw new CheckException($"output '{output.Name}' has {output.Values.Length} values for shape {Format(output.Shape)}");
            }
            if (Array.Exists(output.Values, v => !float.IsFinite(v)))
            {
                throw new CheckException($"output '{output.Name}' holds values that are not finite");
            }
        }

        if (Model != "double")
        {
            return;
        }

        if (outputs.Count != 1 || outputs[0].Name != "output")
        {
            throw new CheckException($"`double` must answer one output 'output', got {string.Join(", ", outputs.Select(o => $"'{o.Name}'"))}");
        }
        var answer = outputs[0];
        if (!answer.Shape.AsSpan().SequenceEqual(Shape))
        {
            throw new CheckException($"output shape {Format(answer.Shape)}, input shape {Format(Shape)}");
        }
        for (var i = 0; i < Input.Length; i++)
        {
            if (answer.Values[i] != Input[i] * 2f)
            {
                throw new CheckException(string.Create(CultureInfo.InvariantCulture,
                    $"output[{i}] is {answer.Values[i]:R}, expected 2 × {Input[i]:R} = {Input[i] * 2f:R}"));
            }
        }
    }

    public static string Format(long[] shape) => $"[{string.Join(",", shape)}]";

    /// <summary>
    /// Checks that output <paramref name="name"/> holds probabilities: every value in [0, 1] and every row (its last
    /// dimension) summing to 1 within 1e-3, as a softmax answers.
    /// </summary>
    public static void VerifyDistribution(IReadOnlyList<OutputTensor> outputs, string name)
    {
        var output = outputs.FirstOrDefault(o => o.Name == name)
            ?? throw new CheckException($"the answer has no output '{name}' (it has {string.Join(", ", outputs.Select(o => $"'{o.Name}'"))})");
        if (output.Shape.Length == 0 || output.Shape[^1] <= 0)
        {
            throw new CheckException($"output '{name}' has shape {Format(output.Shape)}: no rows of probabilities");
        }
        var width = (int)output.Shape[^1];
        for (var row = 0; row * width < output.Values.Length; row++)
        {
            var sum = 0.0;
            foreach (var value in output.Values.AsSpan(row * width, width))
            {
                if (value is < 0f or > 1f)
                {
                    throw new CheckException(string.Create(CultureInfo.InvariantCulture, $"output '{name}' row {row} holds {value:R}, not a probability"));
                }
                sum += value;
            }
            if (Math.Abs(sum - 1.0) > 1e-3)
            {
                throw new CheckException(string.Create(CultureInfo.InvariantCulture, $"output '{name}' row {row} sums to {sum:R}, not 1"));
            }
        }
    }
}

/// <summary>gRPC's length-prefixed framing and a unary ModelInfer call over plain HTTP/2 (h2c).</summary>
internal static class GrpcExchange
{
    public const string ModelInferPath = "/inference.GRPCInferenceService/ModelInfer";
    public const string ServerReadyPath = "/inference.GRPCInferenceService/ServerReady";

    /// <summary>A message as one uncompressed gRPC frame: flag 0, 4-byte big-endian length, the message.</summary>
    public static byte[] Frame(IMessage message)
    {
        var size = message.CalculateSize();
        var frame = new byte[5 + size];
        BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(1, 4), (uint)size);
        message.WriteTo(frame.AsSpan(5));
        return frame;
    }

    /// <summary>The one message of a unary request or response body.</summary>
    public static ReadOnlySpan<byte> Unframe(ReadOnlySpan<byte> body)
    {
        if (body.Length < 5)
        {
            throw new CheckException($"the gRPC body has {body.Length} bytes, fewer than a frame's 5-byte prefix");
        }
        if (body[0] != 0)
        {
            throw new CheckException($"the gRPC frame has compression flag {body[0]}; the benchmark sends and expects uncompressed frames");
        }
        var length = BinaryPrimitives.ReadUInt32BigEndian(body[1..5]);
        if (length != body.Length - 5)
        {
            throw new CheckException($"the gRPC frame says {length} bytes, the body holds {body.Length - 5} after the prefix (one message expected)");
        }
        return body[5..];
    }

    /// <summary>What a framed ModelInferRequest asks, read back from the bytes the load generator sends.</summary>
    public static Expectation Expect(byte[] frame)
    {
        var request = ModelInferRequest.Parser.ParseFrom(Unframe(frame));
        if (request.Inputs.Count != 1 || request.Inputs[0].Datatype != "FP32")
        {
            throw new CheckException("the benchmark's gRPC bodies hold one FP32 input");
        }
        var input = request.Inputs[0];
        var raw = request.RawInputContents.Count > 0;
        var values = raw ? LittleEndian.Floats(request.RawInputContents[0].Span) : input.Contents.Fp32Contents.ToArray();
        return new Expectation(request.ModelName, [.. input.Shape], values, raw);
    }

    /// <summary>The HttpClient for <see cref="CallAsync"/>, whose requests speak HTTP/2 without TLS by prior knowledge (h2c).</summary>
    public static HttpClient CreateClient() => new(new SocketsHttpHandler { UseProxy = false, AllowAutoRedirect = false })
    {
        Timeout = TimeSpan.FromSeconds(60),
    };

    /// <summary>
    /// POSTs <paramref name="frame"/> to <paramref name="path"/> and returns the response message and the length of the
    /// response body (what h2load counts as data), or throws <see cref="CheckException"/> for an HTTP status other than
    /// 200, a grpc-status other than 0 or a malformed body.
    /// </summary>
    public static async Task<(byte[] Message, int BodyBytes)> CallAsync(HttpClient client, Uri baseUrl, string path, byte[] frame)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, new Uri(baseUrl, path))
        {
            Content = new ByteArrayContent(frame),
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
        };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/grpc");
        request.Headers.TryAddWithoutValidation("te", "trailers");
        using var response = await client.SendAsync(request, HttpCompletionOption.ResponseContentRead);
        var body = await response.Content.ReadAsByteArrayAsync();
        if (response.StatusCode != HttpStatusCode.OK)
        {
            throw new CheckException($"HTTP {(int)response.StatusCode} on {path}");
        }

        // A call that fails before answering sends only headers ("trailers-only"); otherwise the status is a trailer.
        var status = Header(response.TrailingHeaders, "grpc-status") ?? Header(response.Headers, "grpc-status");
        if (status != "0")
        {
            var message = Header(response.TrailingHeaders, "grpc-message") ?? Header(response.Headers, "grpc-message");
            throw new CheckException($"grpc-status {status ?? "(none)"}: {Uri.UnescapeDataString(message ?? "")}");
        }
        return (Unframe(body).ToArray(), body.Length);
    }

    /// <summary>The outputs of a ModelInferResponse; a raw request must be answered raw and a typed one typed.</summary>
    public static (string Id, List<OutputTensor> Outputs) Read(byte[] message, bool raw)
    {
        var response = ModelInferResponse.Parser.ParseFrom(message);
        if (raw && response.RawOutputContents.Count != response.Outputs.Count)
        {
            throw new CheckException($"a raw request was answered with {response.RawOutputContents.Count} raw_output_contents for {response.Outputs.Count} outputs");
        }
        if (!raw && response.RawOutputContents.Count != 0)
        {
            throw new CheckException("a typed request was answered with raw_output_contents");
        }

        var outputs = new List<OutputTensor>();
        for (var i = 0; i < response.Outputs.Count; i++)
        {
            var output = response.Outputs[i];
            var values = raw
                ? LittleEndian.Floats(response.RawOutputContents[i].Span)
                : (output.Contents ?? throw new CheckException($"output '{output.Name}' has no contents")).Fp32Contents.ToArray();
            outputs.Add(new OutputTensor(output.Name, output.Datatype, [.. output.Shape], values));
        }
        return (response.Id, outputs);
    }

    private static string? Header(HttpHeaders headers, string name) =>
        headers.TryGetValues(name, out var values) ? values.FirstOrDefault() : null;
}

/// <summary>v2 REST infer calls: JSON, and the binary tensor data extension.</summary>
internal static partial class RestExchange
{
    public const string HeaderLengthHeader = "Inference-Header-Content-Length";

    public static HttpClient CreateClient() => new(new SocketsHttpHandler { UseProxy = false, AllowAutoRedirect = false })
    {
        Timeout = TimeSpan.FromSeconds(120),
    };

    /// <summary>The model named by a <c>/v2/models/{model}[/versions/{v}]/infer</c> URL.</summary>
    public static string ModelOf(Uri url)
    {
        var match = InferPath().Match(url.AbsolutePath);
        return match.Success
            ? Uri.UnescapeDataString(match.Groups[1].Value)
            : throw new CheckException($"'{url}' is not a v2 infer URL (/v2/models/<model>/infer)");
    }

    /// <summary>What a REST binary body asks, read back from the bytes the load generator sends.</summary>
    public static Expectation Expect(string model, byte[] body, int headerLength)
    {
        if (headerLength < 0 || headerLength > body.Length)
        {
            throw new CheckException($"header length {headerLength} does not fit the {body.Length}-byte body");
        }
        var header = InferJson.Parse(body.AsSpan(0, headerLength));
        if (header.Inputs.Count != 1 || header.Inputs[0] is not { Datatype: "FP32", Shape: not null, BinaryDataSize: { } size })
        {
            throw new CheckException("the benchmark's REST binary bodies hold one FP32 input in binary");
        }
        if (headerLength + size != body.Length)
        {
            throw new CheckException($"binary_data_size {size} does not match the {body.Length - headerLength} bytes after the header");
        }
        return new Expectation(model, header.Inputs[0].Shape!, LittleEndian.Floats(body.AsSpan(headerLength)), Raw: true);
    }

    /// <summary>POSTs a body and returns the response body, or throws <see cref="CheckException"/> for a status other than 200.</summary>
    public static async Task<(byte[] Body, int? HeaderLength)> PostAsync(HttpClient client, Uri url, byte[] body, int? headerLength)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, url) { Content = new ByteArrayContent(body) };
        if (headerLength is { } length)
        {
            request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
            request.Headers.TryAddWithoutValidation(HeaderLengthHeader, length.ToString(CultureInfo.InvariantCulture));
        }
        else
        {
            request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        }

        using var response = await client.SendAsync(request, HttpCompletionOption.ResponseContentRead);
        var answer = await response.Content.ReadAsByteArrayAsync();
        if (response.StatusCode != HttpStatusCode.OK)
        {
            var text = Encoding.UTF8.GetString(answer.AsSpan(0, Math.Min(answer.Length, 300)));
            throw new CheckException($"HTTP {(int)response.StatusCode}: {text}");
        }

        int? answerHeaderLength = null;
        if (response.Headers.TryGetValues(HeaderLengthHeader, out var values))
        {
            answerHeaderLength = int.TryParse(values.FirstOrDefault(), NumberStyles.None, CultureInfo.InvariantCulture, out var parsed)
                ? parsed
                : throw new CheckException($"{HeaderLengthHeader} '{values.FirstOrDefault()}' is not a length");
        }
        return (answer, answerHeaderLength);
    }

    /// <summary>
    /// The outputs of a response body: plain JSON when <paramref name="headerLength"/> is null, otherwise a JSON header
    /// followed by the binary outputs. With <paramref name="binaryRequired"/> every output must be binary.
    /// </summary>
    public static (string? Id, List<OutputTensor> Outputs) Read(byte[] body, int? headerLength, bool binaryRequired)
    {
        if (binaryRequired && headerLength is null)
        {
            throw new CheckException($"binary outputs were asked for and the answer has no {HeaderLengthHeader} header");
        }
        var jsonLength = headerLength ?? body.Length;
        if (jsonLength > body.Length)
        {
            throw new CheckException($"{HeaderLengthHeader} {jsonLength} is larger than the {body.Length}-byte body");
        }

        var json = InferJson.Parse(body.AsSpan(0, jsonLength));
        if (json.Error is not null)
        {
            throw new CheckException($"error: {json.Error}");
        }

        var offset = jsonLength;
        var outputs = new List<OutputTensor>();
        foreach (var tensor in json.Outputs)
        {
            float[] values;
            if (tensor.BinaryDataSize is { } size)
            {
                if (size < 0 || offset + size > body.Length)
                {
                    throw new CheckException($"output '{tensor.Name}' has binary_data_size {size}, past the end of the body");
                }
                values = LittleEndian.Floats(body.AsSpan(offset, (int)size));
                offset += (int)size;
            }
            else if (binaryRequired)
            {
                throw new CheckException($"output '{tensor.Name}' was asked for in binary and came as JSON");
            }
            else
            {
                values = tensor.Data ?? throw new CheckException($"output '{tensor.Name}' has neither data nor binary_data_size");
            }
            outputs.Add(new OutputTensor(tensor.Name ?? "", tensor.Datatype ?? "", tensor.Shape ?? [], values));
        }

        if (offset != body.Length)
        {
            throw new CheckException($"the body has {body.Length - offset} bytes after the last output");
        }
        return (json.Id, outputs);
    }

    [GeneratedRegex("^/v2/models/([^/]+)(?:/versions/[^/]+)?/infer$")]
    private static partial Regex InferPath();
}
