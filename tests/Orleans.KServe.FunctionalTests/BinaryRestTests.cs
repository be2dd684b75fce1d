using System.Buffers.Binary;
using System.IO.Compression;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;

namespace Orleans.KServe.FunctionalTests;

/// <summary>The binary tensor data extension and compression on v2 REST infer, over the real server.</summary>
[Collection(ServerCollection.Name)]
public sealed class BinaryRestTests(ServerFixture server)
{
    private const string HeaderLength = "Inference-Header-Content-Length";

    /// <summary>An HTTP answer: status, headers and the body's bytes as received (still compressed when it was).</summary>
    private sealed record Answer(int Status, HttpResponseMessage Message, byte[] Body)
    {
        public string? ContentType => Message.Content.Headers.ContentType?.MediaType;

        public string? ContentEncoding => Message.Content.Headers.ContentEncoding.SingleOrDefault();

        public int? JsonLength => Message.Headers.TryGetValues(HeaderLength, out var values) ? int.Parse(values.Single()) : null;

        /// <summary>The JSON part (the whole body when no header length is given) and the binary bytes after it.</summary>
        public (JsonNode Json, byte[] Binary) Split(byte[]? body = null)
        {
            body ??= Body;
            var length = JsonLength ?? body.Length;
            return (JsonNode.Parse(body.AsSpan(0, length))!, body[length..]);
        }

        public string Error() => Json.Error(JsonNode.Parse(Body));
    }

    private async Task<Answer> PostAsync(
        string model, byte[] body, int? headerLength, string? contentType = null, string? contentEncoding = null, string? acceptEncoding = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, $"/v2/models/{model}/infer") { Content = new ByteArrayContent(body) };
        if (headerLength is { } length)
        {
            request.Headers.TryAddWithoutValidation(HeaderLength, length.ToString());
        }

        if (contentType is not null)
        {
            request.Content.Headers.ContentType = new MediaTypeHeaderValue(contentType);
        }

        if (contentEncoding is not null)
        {
            request.Content.Headers.ContentEncoding.Add(contentEncoding);
        }

        if (acceptEncoding is not null)
        {
            request.Headers.TryAddWithoutValidation("Accept-Encoding", acceptEncoding);
        }

        var response = await server.Http.SendAsync(request);
        return new Answer((int)response.StatusCode, response, await response.Content.ReadAsByteArrayAsync());
    }

    /// <summary>A JSON header followed by binary chunks, and the header's length.</summary>
    private static (byte[] Body, int HeaderLength) Body(string json, params byte[][] chunks)
    {
        var header = Encoding.UTF8.GetBytes(json);
        return ([.. header, .. chunks.SelectMany(c => c)], header.Length);
    }

    private static string BinaryInput(string datatype, string shape, int size) =>
        $$$"""{"name":"input","shape":{{{shape}}},"datatype":"{{{datatype}}}","parameters":{"binary_data_size":{{{size}}}}}""";

    private static byte[] F32(params float[] values)
    {
        var bytes = new byte[values.Length * 4];
        for (var i = 0; i < values.Length; i++)
        {
            BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(i * 4), values[i]);
        }

        return bytes;
    }

    private static float[] Floats(byte[] bytes) =>
        Enumerable.Range(0, bytes.Length / 4).Select(i => BinaryPrimitives.ReadSingleLittleEndian(bytes.AsSpan(i * 4))).ToArray();

    private static byte[] Compress(byte[] data, string coding)
    {
        using var output = new MemoryStream();
        using (Stream compressor = coding == "gzip"
                   ? new GZipStream(output, CompressionLevel.Fastest, leaveOpen: true)
                   : new ZLibStream(output, CompressionLevel.Fastest, leaveOpen: true))
        {
            compressor.Write(data);
        }

        return output.ToArray();
    }

    private static byte[] Decompress(byte[] data, string coding)
    {
        using Stream decompressor = coding == "gzip"
            ? new GZipStream(new MemoryStream(data), CompressionMode.Decompress)
            : new ZLibStream(new MemoryStream(data), CompressionMode.Decompress);
        using var output = new MemoryStream();
        decompressor.CopyTo(output);
        return output.ToArray();
    }

    [Theory]
    [InlineData(null)]
    [InlineData("application/octet-stream")]
    [InlineData("application/json")]
    public async Task A_binary_request_is_accepted_with_no_content_type_octet_stream_or_json(string? contentType)
    {
        var (body, length) = Body($$"""{"id":"bin","inputs":[{{BinaryInput("FP32", "[2,2]", 16)}}]}""", F32(1, 2, 3, 4.5f));

        var answer = await PostAsync("double", body, length, contentType);

        Assert.True(answer.Status == 200, Encoding.UTF8.GetString(answer.Body));
        Assert.Equal("application/json", answer.ContentType);
        Assert.Null(answer.JsonLength);
        var (json, binary) = answer.Split();
        Assert.Empty(binary);
        Assert.Equal("bin", json["id"]!.GetValue<string>());
        Assert.Equal([2f, 4f, 6f, 9f], Json.Floats(json["outputs"]![0]!["data"]));
    }

    /// <summary>Four values per datatype in the binary layout: little-endian, BOOL one byte, BYTES length-prefixed.</summary>
    public static TheoryData<string, byte[]> RawValues()
    {
        static byte[] Ints(int size, params long[] values)
        {
            var bytes = new byte[values.Length * size];
            Span<byte> wide = stackalloc byte[8];
            for (var i = 0; i < values.Length; i++)
            {
                BinaryPrimitives.WriteInt64LittleEndian(wide, values[i]);
                wide[..size].CopyTo(bytes.AsSpan(i * size));
            }

            return bytes;
        }

        static byte[] Strings(params string[] values) => values.SelectMany(v =>
        {
            var utf8 = Encoding.UTF8.GetBytes(v);
            var prefix = new byte[4];
            BinaryPrimitives.WriteInt32LittleEndian(prefix, utf8.Length);
            return prefix.Concat(utf8);
        }).ToArray();

        var f64 = new byte[32];
        double[] doubles = [0.5, -2.25, 1e300, double.NaN];
        for (var i = 0; i < 4; i++)
        {
            BinaryPrimitives.WriteDoubleLittleEndian(f64.AsSpan(i * 8), doubles[i]);
        }

        var f16 = new byte[8];
        Half[] halves = [(Half)0.5, (Half)(-2), Half.PositiveInfinity, (Half)1024];
        for (var i = 0; i < 4; i++)
        {
            BinaryPrimitives.WriteHalfLittleEndian(f16.AsSpan(i * 2), halves[i]);
        }

        return new TheoryData<string, byte[]>
        {
            { "BOOL", [1, 0, 1, 1] },
            { "UINT8", [0, 1, 200, 255] },
            { "UINT16", Ints(2, 0, 1, 40000, 65535) },
            { "UINT32", Ints(4, 0, 1, 4_000_000_000, 4_294_967_295) },
            { "UINT64", Ints(8, 0, 1, -1, long.MinValue) },
            { "INT8", Ints(1, -128, -1, 0, 127) },
            { "INT16", Ints(2, -32768, -1, 0, 32767) },
            { "INT32", Ints(4, int.MinValue, -1, 0, int.MaxValue) },
            { "INT64", Ints(8, long.MinValue, -1, 0, long.MaxValue) },
            { "FP16", f16 },
            { "BF16", Ints(2, 0x3F00, 0xC010, 0x7F80, 0x4480) },
            { "FP32", F32(0.5f, -2.25f, float.NaN, float.NegativeInfinity) },
            { "FP64", f64 },
            { "BYTES", Strings("hello", "", "w\u00f6rld", "\0\u0001\u00ff") },
        };
    }

    [Theory]
    [MemberData(nameof(RawValues))]
    public async Task Every_datatype_round_trips_in_binary_through_its_identity_model(string datatype, byte[] raw)
    {
        var (body, length) = Body($$"""
            {"parameters":{"binary_data_output":true},"inputs":[{{BinaryInput(datatype, "[2,2]", raw.Length)}}]}
            """, raw);

        var answer = await PostAsync($"identity-{datatype.ToLowerInvariant()}", body, length, "application/octet-stream");

        Assert.True(answer.Status == 200, Encoding.UTF8.GetString(answer.Body));
        Assert.Equal("application/octet-stream", answer.ContentType);
        Assert.NotNull(answer.JsonLength);
        var (json, binary) = answer.Split();
        var output = json["outputs"]![0]!;
        Assert.Equal("output", output["name"]!.GetValue<string>());
        Assert.Equal(datatype, output["datatype"]!.GetValue<string>());
        Assert.Equal("[2,2]", output["shape"]!.ToJsonString());
        Assert.Null(output["data"]);
        Assert.Equal(raw.Length, output["parameters"]!["binary_data_size"]!.GetValue<int>());
        Assert.Equal(raw, binary);
    }

    [Fact]
    public async Task Json_input_with_one_binary_output_and_one_json_output()
    {
        var input = Json.Array(Enumerable.Range(0, 64).Select(i => i / 64f));
        var json = $$"""
            {"inputs":[{"name":"input","shape":[1,64],"datatype":"FP32","data":{{input}}}],
             "outputs":[{"name":"probabilities","parameters":{"binary_data":true} },{"name":"label"}]}
            """;

        var answer = await PostAsync("mlp", Encoding.UTF8.GetBytes(json), null, "application/json");

        Assert.True(answer.Status == 200, Encoding.UTF8.GetString(answer.Body));
        Assert.Equal("application/octet-stream", answer.ContentType);
        var (header, binary) = answer.Split();
        var outputs = header["outputs"]!.AsArray();
        Assert.Equal(["probabilities", "label"], outputs.Select(o => o!["name"]!.GetValue<string>()));
        Assert.Equal(40, outputs[0]!["parameters"]!["binary_data_size"]!.GetValue<int>());
        Assert.Null(outputs[0]!["data"]);
        Assert.Single(outputs[1]!["data"]!.AsArray());
        Assert.Equal(40, binary.Length);
        var probabilities = Floats(binary);
        Assert.Equal(1f, probabilities.Sum(), 3);

        // The same request all in JSON gives the same numbers.
        var (_, plain) = await server.PostJsonAsync("/v2/models/mlp/infer", json.Replace("""{"binary_data":true}""", "{}"));
        Assert.Equal(Json.Floats(plain!["outputs"]![0]!["data"]), probabilities);
        Assert.Equal(plain["outputs"]![1]!["data"]!.ToJsonString(), outputs[1]!["data"]!.ToJsonString());
    }

    [Fact]
    public async Task Binary_input_with_binary_data_output_and_an_output_kept_in_json()
    {
        var input = F32(Enumerable.Range(0, 128).Select(i => (i % 7) / 7f).ToArray());
        var (body, length) = Body($$"""
            {"parameters":{"binary_data_output":true},
             "inputs":[{"name":"input","shape":[2,64],"datatype":"FP32","parameters":{"binary_data_size":{{input.Length}}} }],
             "outputs":[{"name":"label","parameters":{"binary_data":false} },{"name":"probabilities"}]}
            """, input);

        var answer = await PostAsync("mlp", body, length);

        Assert.True(answer.Status == 200, Encoding.UTF8.GetString(answer.Body));
        var (json, binary) = answer.Split();
        var outputs = json["outputs"]!.AsArray();
        var label = outputs.Single(o => o!["name"]!.GetValue<string>() == "label")!;
        var probabilities = outputs.Single(o => o!["name"]!.GetValue<string>() == "probabilities")!;
        Assert.Equal(2, label["data"]!.AsArray().Count);
        Assert.Equal(80, probabilities["parameters"]!["binary_data_size"]!.GetValue<int>());
        Assert.Equal(80, binary.Length);
    }

    [Fact]
    public async Task An_output_asked_for_only_in_binary_limits_the_answer_to_that_output()
    {
        var input = F32(new float[64]);
        var (body, length) = Body($$"""
            {"inputs":[{{BinaryInput("FP32", "[1,64]", input.Length)}}],"outputs":[{"name":"label","parameters":{"binary_data":true} }]}
            """, input);

        var answer = await PostAsync("mlp", body, length);

        Assert.Equal(200, answer.Status);
        var (json, binary) = answer.Split();
        var output = Assert.Single(json["outputs"]!.AsArray())!;
        Assert.Equal("label", output["name"]!.GetValue<string>());
        Assert.Equal(8, binary.Length);
    }

    [Fact]
    public async Task A_header_length_larger_than_the_body_is_400()
    {
        var (body, length) = Body($$"""{"inputs":[{{BinaryInput("FP32", "[1,2]", 8)}}]}""", F32(1, 2));

        var answer = await PostAsync("double", body, body.Length + 1);

        Assert.Equal(400, answer.Status);
        Assert.Equal("application/json", answer.ContentType);
        Assert.Contains($"Inference-Header-Content-Length {body.Length + 1} is larger than the request body of {body.Length} bytes", answer.Error());
        Assert.Equal(200, (await PostAsync("double", body, length)).Status);
    }

    [Theory]
    [InlineData("abc", "'abc' is not a number")]
    [InlineData("-3", "is negative")]
    public async Task A_header_length_that_is_not_a_length_is_400(string value, string expected)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v2/models/double/infer") { Content = new ByteArrayContent("{}"u8.ToArray()) };
        request.Headers.TryAddWithoutValidation(HeaderLength, value);

        using var response = await server.Http.SendAsync(request);

        Assert.Equal(400, (int)response.StatusCode);
        Assert.Contains(expected, Json.Error(JsonNode.Parse(await response.Content.ReadAsStringAsync())));
    }

    [Theory]
    [InlineData(12, "needs 8 bytes")]
    [InlineData(4, "needs 8 bytes")]
    public async Task Binary_sizes_that_do_not_fit_the_shape_or_the_body_are_400(int size, string expected)
    {
        var (body, length) = Body($$"""{"inputs":[{{BinaryInput("FP32", "[1,2]", size)}}]}""", F32(1, 2));

        var answer = await PostAsync("double", body, length);

        Assert.Equal(400, answer.Status);
        Assert.Contains(expected, answer.Error());
    }

    [Fact]
    public async Task Binary_data_left_over_or_missing_is_400()
    {
        var (extra, extraLength) = Body($$"""{"inputs":[{{BinaryInput("FP32", "[1,2]", 8)}}]}""", F32(1, 2, 3));
        var over = await PostAsync("double", extra, extraLength);
        Assert.Equal(400, over.Status);
        Assert.Contains("4 bytes left over", over.Error());

        var (missing, _) = Body($$"""{"inputs":[{{BinaryInput("FP32", "[1,2]", 8)}}]}""");
        var under = await PostAsync("double", missing, null);
        Assert.Equal(400, under.Status);
        Assert.Contains("no Inference-Header-Content-Length header", under.Error());
    }

    [Theory]
    [InlineData("gzip")]
    [InlineData("deflate")]
    public async Task A_compressed_binary_request_and_a_compressed_binary_response_round_trip(string coding)
    {
        var raw = F32(Enumerable.Range(0, 2048).Select(i => (float)(i % 16)).ToArray());
        var (body, length) = Body($$"""
            {"parameters":{"binary_data_output":true},"inputs":[{{BinaryInput("FP32", "[2,1024]", raw.Length)}}]}
            """, raw);

        var answer = await PostAsync("identity-fp32", Compress(body, coding), length, contentEncoding: coding, acceptEncoding: coding);

        Assert.True(answer.Status == 200, answer.Status + " " + Encoding.UTF8.GetString(answer.Body));
        Assert.Equal(coding, answer.ContentEncoding);
        Assert.Equal("application/octet-stream", answer.ContentType);
        var plain = Decompress(answer.Body, coding);
        Assert.True(answer.Body.Length < plain.Length / 4, $"{answer.Body.Length} compressed bytes for {plain.Length}");
        var (json, binary) = answer.Split(plain);
        Assert.Equal(raw.Length, json["outputs"]![0]!["parameters"]!["binary_data_size"]!.GetValue<int>());
        Assert.Equal(raw, binary);
    }

    [Fact]
    public async Task A_gzip_json_request_gets_a_gzip_json_response_when_accepted_and_plain_json_otherwise()
    {
        var json = Encoding.UTF8.GetBytes("""{"id":"z","inputs":[{"name":"input","shape":[1,2],"datatype":"FP32","data":[1.5,2]}]}""");

        var compressed = await PostAsync("double", Compress(json, "gzip"), null, "application/json", "gzip", "br, gzip;q=0.8, deflate;q=0.5");
        Assert.Equal(200, compressed.Status);
        Assert.Equal("gzip", compressed.ContentEncoding);
        Assert.Equal("application/json", compressed.ContentType);
        Assert.Null(compressed.JsonLength);
        var node = JsonNode.Parse(Decompress(compressed.Body, "gzip"))!;
        Assert.Equal([3f, 4f], Json.Floats(node["outputs"]![0]!["data"]));

        var plain = await PostAsync("double", Compress(json, "gzip"), null, "application/json", "gzip");
        Assert.Equal(200, plain.Status);
        Assert.Null(plain.ContentEncoding);
        Assert.Equal([3f, 4f], Json.Floats(JsonNode.Parse(plain.Body)!["outputs"]![0]!["data"]));
    }

    [Fact]
    public async Task An_unknown_content_encoding_is_400_naming_it()
    {
        var answer = await PostAsync("double", "{}"u8.ToArray(), null, "application/json", "br");

        Assert.Equal(400, answer.Status);
        Assert.Contains("unsupported Content-Encoding 'br'", answer.Error());
    }

    [Fact]
    public async Task A_body_over_the_limit_once_decompressed_is_413()
    {
        // The fixture's limit is 8 MiB: 9 MiB of zeros compress to a few KiB.
        var huge = Compress(new byte[9 * 1024 * 1024], "gzip");

        var answer = await PostAsync("double", huge, null, "application/json", "gzip");

        Assert.Equal(413, answer.Status);
        Assert.Contains("decompressed request body exceeds the limit", answer.Error());
    }

    [Fact]
    public async Task A_one_MiB_FP32_tensor_round_trips_in_binary_byte_for_byte()
    {
        var random = new Random(1234);
        var raw = new byte[1024 * 1024];
        random.NextBytes(raw);

        // Random bits include NaNs with payloads: the identity model must hand every bit back.
        var (body, length) = Body($$"""
            {"parameters":{"binary_data_output":true},"inputs":[{{BinaryInput("FP32", "[4,65536]", raw.Length)}}]}
            """, raw);

        var answer = await PostAsync("identity-fp32", body, length);

        Assert.True(answer.Status == 200, Encoding.UTF8.GetString(answer.Body.AsSpan(0, Math.Min(500, answer.Body.Length))));
        Assert.Equal(answer.JsonLength!.Value + raw.Length, answer.Body.Length);
        var (json, binary) = answer.Split();
        Assert.Equal("[4,65536]", json["outputs"]![0]!["shape"]!.ToJsonString());
        Assert.True(raw.AsSpan().SequenceEqual(binary), "the output bytes differ from the input bytes");
    }
}
