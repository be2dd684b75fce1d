using System.Runtime.InteropServices;
using System.Text;
using Orleans.KServe.Contracts.Inference;
using Orleans.KServe.Contracts.Tensors;
using Orleans.KServe.Gateway.Codecs;
using static Orleans.KServe.Gateway.Tests.Codec;

namespace Orleans.KServe.Gateway.Tests;

/// <summary>A JSON header followed by binary tensor data, as a test request.</summary>
internal static class BinaryBody
{
    /// <summary>The header's bytes followed by every chunk, and the header's length.</summary>
    public static (byte[] Body, int HeaderLength) Build(string header, params byte[][] chunks)
    {
        var json = Encoding.UTF8.GetBytes(header);
        var body = new byte[json.Length + chunks.Sum(c => c.Length)];
        json.CopyTo(body, 0);
        var offset = json.Length;
        foreach (var chunk in chunks)
        {
            chunk.CopyTo(body, offset);
            offset += chunk.Length;
        }

        return (body, json.Length);
    }

    /// <summary>One binary input <c>x</c> in a request header.</summary>
    public static string Input(string datatype, string shape, long size, string name = "x") =>
        $$$"""{"name":"{{{name}}}","shape":{{{shape}}},"datatype":"{{{datatype}}}","parameters":{"binary_data_size":{{{size}}}}}""";
}

/// <summary>Requests with binary tensor data decoded: every datatype, mixed with JSON inputs, and slices of the body.</summary>
public sealed class BinaryDecodeTests : IDisposable
{
    private readonly PooledBuffers _buffers = new();

    public void Dispose() => _buffers.Dispose();

    private InferenceRequest Decode(string header, params byte[][] chunks)
    {
        var (body, length) = BinaryBody.Build(header, chunks);
        return V2JsonCodec.DecodeRequest(body, length, _buffers);
    }

    public static TheoryData<string, string, byte[]> Datatypes() => new()
    {
        { "BOOL", "[3]", LE.Bool(true, false, true) },
        { "UINT8", "[3]", LE.U8(0, 1, 255) },
        { "UINT16", "[3]", LE.U16(0, 258, 65535) },
        { "UINT32", "[3]", LE.U32(0, 16909060, uint.MaxValue) },
        { "UINT64", "[3]", LE.U64(0, 1, ulong.MaxValue) },
        { "INT8", "[3]", LE.I8(-128, 0, 127) },
        { "INT16", "[3]", LE.I16(short.MinValue, -1, short.MaxValue) },
        { "INT32", "[3]", LE.I32(int.MinValue, -1, int.MaxValue) },
        { "INT64", "[3]", LE.I64(long.MinValue, -1, long.MaxValue) },
        { "FP16", "[3]", LE.F16((Half)1.5, Half.NaN, Half.NegativeInfinity) },
        { "BF16", "[3]", LE.BF16(0x3FC0, 0x7FC0, 0xFF80) },
        { "FP32", "[3]", LE.F32(0.5f, float.NaN, float.PositiveInfinity) },
        { "FP64", "[3]", LE.F64(0.5, double.Epsilon, double.NegativeInfinity) },
        { "BYTES", "[3]", LE.Strings("hello", "", "w\u00f6rld") },
        { "FP32", "[2,2]", LE.F32(1, 2, 3, 4) },
        { "INT64", "[0]", [] },
        { "BYTES", "[1,2]", LE.Strings("\0\u0001", "\u00ff") },
    };

    [Theory]
    [MemberData(nameof(Datatypes))]
    public void Every_datatype_decodes_to_its_raw_bytes_as_a_slice_of_the_body(string datatype, string shape, byte[] raw)
    {
        var (body, length) = BinaryBody.Build($$"""{"inputs":[{{BinaryBody.Input(datatype, shape, raw.Length)}}]}""", raw);

        var tensor = Assert.Single(V2JsonCodec.DecodeRequest(body, length, _buffers).Inputs);

        Assert.True(TensorDataTypes.TryParse(datatype, out var type));
        Assert.Equal(type, tensor.DataType);
        Assert.Equal(raw, tensor.Data.ToArray());
        Assert.True(MemoryMarshal.TryGetArray(tensor.Data, out var segment));
        Assert.Same(body, segment.Array);
        Assert.Equal(length, segment.Offset);
    }

    [Fact]
    public void Json_and_binary_inputs_mix_and_binary_data_follows_the_order_of_the_binary_inputs()
    {
        var request = Decode($$"""
            {"id":"mixed","inputs":[
              {{BinaryBody.Input("FP32", "[2]", 8, "a")}},
              {"name":"b","shape":[3],"datatype":"INT32","data":[7,8,9]},
              {{BinaryBody.Input("BYTES", "[2]", 11, "c")}},
              {"name":"d","shape":[1],"datatype":"BYTES","data":["json"]}]}
            """, LE.F32(1.5f, -2), LE.Strings("abc", ""));

        Assert.Equal("mixed", request.Id);
        Assert.Equal(["a", "b", "c", "d"], request.Inputs.Select(i => i.Name));
        Assert.Equal(LE.F32(1.5f, -2), request.Inputs[0].Data.ToArray());
        Assert.Equal(LE.I32(7, 8, 9), request.Inputs[1].Data.ToArray());
        Assert.Equal(LE.Strings("abc", ""), request.Inputs[2].Data.ToArray());
        Assert.Equal(LE.Strings("json"), request.Inputs[3].Data.ToArray());
    }

    [Fact]
    public void Parameters_may_come_first_and_other_input_parameters_are_ignored()
    {
        var request = Decode("""
            {"inputs":[{"parameters":{"shared_memory_region":"none","binary_data_size":4,"extra":{"a":[1]}},
                        "datatype":"INT32","name":"x","shape":[1]}]}
            """, LE.I32(42));

        Assert.Equal(LE.I32(42), Assert.Single(request.Inputs).Data.ToArray());
    }

    [Fact]
    public void Request_and_output_parameters_of_a_binary_request_are_kept()
    {
        var request = Decode($$"""
            {"parameters":{"binary_data_output":true},
             "inputs":[{{BinaryBody.Input("UINT8", "[2]", 2)}}],
             "outputs":[{"name":"y","parameters":{"binary_data":false} }]}
            """, LE.U8(1, 2));

        Assert.True(request.Parameters!["binary_data_output"].BoolValue);
        Assert.False(Assert.Single(request.Outputs).Parameters!["binary_data"].BoolValue);
    }

    [Fact]
    public void A_header_length_equal_to_the_body_is_a_json_only_request()
    {
        var request = Decode("""{"inputs":[{"name":"x","shape":[1],"datatype":"FP64","data":[2.5]}]}""");

        Assert.Equal(LE.F64(2.5), Assert.Single(request.Inputs).Data.ToArray());
    }

    [Fact]
    public void Without_a_header_length_the_whole_body_is_json()
    {
        var json = Utf8("""{"inputs":[{"name":"x","shape":[1],"datatype":"INT8","data":[-3]}]}""");

        var request = V2JsonCodec.DecodeRequest(json, null, _buffers);

        Assert.Equal(LE.I8(-3), Assert.Single(request.Inputs).Data.ToArray());
    }

    [Fact]
    public void A_million_binary_FP32_elements_are_taken_from_the_body_without_copying()
    {
        var raw = LE.F32(Enumerable.Range(0, 1_000_000).Select(i => i * 0.5f).ToArray());
        var (body, length) = BinaryBody.Build($$"""{"inputs":[{{BinaryBody.Input("FP32", "[1000,1000]", raw.Length)}}]}""", raw);
        using (var warmUp = new PooledBuffers())
        {
            V2JsonCodec.DecodeRequest(body, length, warmUp);
        }

        using var buffers = new PooledBuffers();
        var before = GC.GetAllocatedBytesForCurrentThread();
        var request = V2JsonCodec.DecodeRequest(body, length, buffers);
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Equal(raw, Assert.Single(request.Inputs).Data.ToArray());
        Assert.True(allocated < 16 * 1024, $"decoding allocated {allocated:N0} bytes");
    }

    [Fact]
    public void Header_length_parses_absent_zero_and_the_whole_body()
    {
        Assert.Null(BinaryTensorCodec.ParseHeaderLength(null, 10));
        Assert.Equal(0, BinaryTensorCodec.ParseHeaderLength("0", 10));
        Assert.Equal(10, BinaryTensorCodec.ParseHeaderLength(" 10 ", 10));
        Assert.Equal(7, BinaryTensorCodec.ParseHeaderLength("+7", 10));
    }
}

/// <summary>Every way a binary request can be wrong: a 400 naming the problem.</summary>
public sealed class BinaryDecodeErrorTests
{
    private static void AssertBinaryInvalid(string header, byte[][] chunks, params string[] fragments)
    {
        var (body, length) = BinaryBody.Build(header, chunks);
        using var buffers = new PooledBuffers();
        AssertInvalid(() => V2JsonCodec.DecodeRequest(body, length, buffers), fragments);
    }

    private static string One(string datatype, string shape, long size) => $$"""{"inputs":[{{BinaryBody.Input(datatype, shape, size)}}]}""";

    [Theory]
    [InlineData("abc", "'abc' is not a number")]
    [InlineData("", "'' is not a number")]
    [InlineData("1.5", "is not a number")]
    [InlineData("12,13", "is not a number")]
    [InlineData("99999999999999999999", "is not a number")]
    [InlineData("-1", "-1 is negative")]
    [InlineData("101", "101 is larger than the request body of 100 bytes")]
    public void Bad_header_lengths_are_invalid(string value, string expected)
    {
        AssertInvalid(() => BinaryTensorCodec.ParseHeaderLength(value, 100), "Inference-Header-Content-Length", expected);
    }

    [Fact]
    public void A_header_length_outside_the_body_is_invalid_in_the_decoder_too()
    {
        using var buffers = new PooledBuffers();
        AssertInvalid(() => V2JsonCodec.DecodeRequest(Utf8("{}"), 3, buffers), "Inference-Header-Content-Length");
    }

    [Fact]
    public void A_header_length_that_cuts_the_json_is_malformed_json()
    {
        var (body, length) = BinaryBody.Build(One("UINT8", "[1]", 1), LE.U8(5));
        using var buffers = new PooledBuffers();
        AssertInvalid(() => V2JsonCodec.DecodeRequest(body, length - 3, buffers), "malformed JSON");
    }

    [Fact]
    public void A_binary_input_with_data_is_invalid()
    {
        AssertBinaryInvalid("""{"inputs":[{"name":"x","shape":[1],"datatype":"UINT8","data":[1],"parameters":{"binary_data_size":1}}]}""",
            [LE.U8(1)], "input 'x'", "both 'data' and the parameter 'binary_data_size'");
    }

    [Theory]
    [InlineData("\"4\"")]
    [InlineData("-4")]
    [InlineData("4.5")]
    [InlineData("true")]
    [InlineData("null")]
    public void Binary_data_size_must_be_a_non_negative_integer(string size)
    {
        AssertBinaryInvalid($$$"""{"inputs":[{"name":"x","shape":[1],"datatype":"INT32","parameters":{"binary_data_size":{{{size}}}}}]}""",
            [LE.I32(1)], "input 'x': parameter 'binary_data_size' must be a non-negative integer");
    }

    [Fact]
    public void Input_parameters_must_be_an_object()
    {
        AssertBinaryInvalid("""{"inputs":[{"name":"x","shape":[1],"datatype":"INT32","parameters":[4]}]}""", [LE.I32(1)], "input 'x': 'parameters' must be an object");
    }

    [Theory]
    [InlineData("FP32", "[2,2]", 12, "needs 16 bytes")]
    [InlineData("FP32", "[2,2]", 20, "needs 16 bytes")]
    [InlineData("INT64", "[3]", 16, "needs 24 bytes")]
    [InlineData("BOOL", "[4]", 8, "needs 4 bytes")]
    [InlineData("FP16", "[3]", 3, "needs 6 bytes")]
    [InlineData("UINT8", "[0]", 1, "needs 0 bytes")]
    public void Fixed_size_binary_data_must_match_the_shape(string datatype, string shape, int size, string expected)
    {
        AssertBinaryInvalid(One(datatype, shape, size), [new byte[size]], "input 'x'", $"binary_data_size {size}", shape, datatype, expected);
    }

    [Fact]
    public void A_truncated_bytes_length_prefix_is_invalid()
    {
        byte[] raw = [.. LE.Strings("ab"), 1, 0];
        AssertBinaryInvalid(One("BYTES", "[2]", raw.Length), [raw], "input 'x'", "length prefix of BYTES element 1 is truncated");
    }

    [Fact]
    public void A_bytes_element_longer_than_the_binary_data_is_invalid()
    {
        var raw = LE.Strings("abcdef")[..7];
        AssertBinaryInvalid(One("BYTES", "[1]", raw.Length), [raw], "input 'x'", "BYTES element 0 declares 6 bytes but only 3 remain");
    }

    [Theory]
    [InlineData("[3]")]
    [InlineData("[1]")]
    [InlineData("[2,2]")]
    public void Bytes_element_count_must_match_the_shape(string shape)
    {
        var raw = LE.Strings("a", "b");
        AssertBinaryInvalid(One("BYTES", shape, raw.Length), [raw], "input 'x' has 2 BYTES elements", shape);
    }

    [Fact]
    public void Bytes_size_smaller_than_its_elements_leaves_the_rest_over()
    {
        // binary_data_size covers only the first element: the second one is data no input accounts for.
        var raw = LE.Strings("a", "b");
        AssertBinaryInvalid(One("BYTES", "[1]", 5), [raw], "5 bytes left over");
    }

    [Fact]
    public void Too_few_bytes_after_the_header_is_invalid()
    {
        AssertBinaryInvalid(One("FP32", "[4]", 16), [LE.F32(1, 2)], "input 'x'", "binary_data_size 16", "only 8 bytes");
    }

    [Fact]
    public void The_second_binary_input_running_past_the_body_is_named()
    {
        AssertBinaryInvalid($$"""{"inputs":[{{BinaryBody.Input("UINT8", "[2]", 2, "a")}},{{BinaryBody.Input("UINT8", "[3]", 3, "b")}}]}""",
            [LE.U8(1, 2, 3)], "input 'b'", "only 1 bytes");
    }

    [Fact]
    public void Bytes_left_over_after_the_binary_inputs_are_invalid()
    {
        AssertBinaryInvalid(One("INT32", "[1]", 4), [LE.I32(1), LE.U8(9, 9, 9)], "7 bytes of binary data", "add up to 4", "3 bytes left over");
    }

    [Fact]
    public void Bytes_after_a_json_only_header_are_left_over()
    {
        AssertBinaryInvalid("""{"inputs":[{"name":"x","shape":[1],"datatype":"UINT8","data":[1]}]}""", [LE.U8(1, 2)], "add up to 0", "2 bytes left over");
    }

    [Fact]
    public void A_binary_input_without_a_header_length_says_the_body_was_read_as_json()
    {
        using var buffers = new PooledBuffers();
        AssertInvalid(() => V2JsonCodec.DecodeRequest(Utf8(One("UINT8", "[1]", 1)), null, buffers),
            "input 'x'", "only 0 bytes", "no Inference-Header-Content-Length header");
        AssertInvalid(() => V2JsonCodec.DecodeRequest(Utf8(One("UINT8", "[1]", 1)), buffers), "only 0 bytes");
    }

    [Fact]
    public void A_binary_shape_too_large_for_a_tensor_is_invalid()
    {
        AssertBinaryInvalid(One("UINT8", "[4294967296,4294967296]", 1), [LE.U8(1)], "more elements than a tensor may have");
    }
}
