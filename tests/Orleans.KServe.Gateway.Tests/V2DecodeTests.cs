using Orleans.KServe.Contracts.Inference;
using Orleans.KServe.Contracts.Tensors;
using Orleans.KServe.Gateway.Codecs;
using static Orleans.KServe.Gateway.Tests.Codec;

namespace Orleans.KServe.Gateway.Tests;

/// <summary>Open Inference Protocol (v2) JSON requests decoded into tensors.</summary>
public sealed class V2DecodeTests : IDisposable
{
    private readonly PooledBuffers _buffers = new();

    public void Dispose() => _buffers.Dispose();

    private Tensor Single(string json) => Assert.Single(DecodeV2(json, _buffers).Inputs);

    [Fact]
    public void Flat_and_nested_data_decode_to_the_same_bytes()
    {
        var flat = Single("""{"inputs":[{"name":"x","shape":[2,3],"datatype":"FP32","data":[1,2,3,4,5,6]}]}""");
        var nested = Single("""{"inputs":[{"name":"x","shape":[2,3],"datatype":"FP32","data":[[1,2,3],[4,5,6]]}]}""");

        Assert.Equal(LE.F32(1, 2, 3, 4, 5, 6), flat.Data.ToArray());
        Assert.Equal(flat.Data.ToArray(), nested.Data.ToArray());
        Assert.Equal([2L, 3L], nested.Shape.ToArray());
    }

    [Fact]
    public void Field_order_does_not_matter_data_may_come_before_shape_and_datatype()
    {
        var tensor = Single("""{"inputs":[{"data":[[1,2],[3,4]],"shape":[2,2],"datatype":"INT32","name":"late-name"}]}""");

        Assert.Equal("late-name", tensor.Name);
        Assert.Equal(TensorDataType.Int32, tensor.DataType);
        Assert.Equal([2L, 2L], tensor.Shape.ToArray());
        Assert.Equal(LE.I32(1, 2, 3, 4), tensor.Data.ToArray());
    }

    [Fact]
    public void Inputs_may_come_before_id_and_parameters_and_unknown_fields_are_ignored()
    {
        var request = DecodeV2("""
            {"inputs":[{"name":"x","shape":[1],"datatype":"INT64","data":[7],"extra":{"a":[1,2]}}],
             "future_field":[{"nested":true}],
             "id":"after",
             "parameters":{"p":1}}
            """, _buffers);

        Assert.Equal("after", request.Id);
        Assert.Equal(LE.I64(7), Assert.Single(request.Inputs).Data.ToArray());
        Assert.Equal(1, request.Parameters!["p"].Int64Value);
    }

    public static TheoryData<string, string, byte[]> Datatypes() => new()
    {
        { "BOOL", "[true,false,true]", LE.Bool(true, false, true) },
        { "UINT8", "[0,1,255]", LE.U8(0, 1, 255) },
        { "UINT16", "[0,258,65535]", LE.U16(0, 258, 65535) },
        { "UINT32", "[0,16909060,4294967295]", LE.U32(0, 16909060, 4294967295) },
        { "UINT64", "[0,1,18446744073709551615]", LE.U64(0, 1, ulong.MaxValue) },
        { "INT8", "[-128,0,127]", LE.I8(-128, 0, 127) },
        { "INT16", "[-32768,-2,32767]", LE.I16(-32768, -2, 32767) },
        { "INT32", "[-2147483648,-3,2147483647]", LE.I32(int.MinValue, -3, int.MaxValue) },
        { "INT64", "[-9223372036854775808,-4,9223372036854775807]", LE.I64(long.MinValue, -4, long.MaxValue) },
        { "FP16", "[1.5,-2,65504]", LE.F16((Half)1.5, (Half)(-2.0), (Half)65504.0) },
        // bfloat16 bits: 1.0 = 0x3F80, -2.5 = 0xC020, 3.140625 = 0x4049.
        { "BF16", "[1.0,-2.5,3.140625]", LE.BF16(0x3F80, 0xC020, 0x4049) },
        { "FP32", "[0.5,-1.25,3.4028234663852886e38]", LE.F32(0.5f, -1.25f, float.MaxValue) },
        { "FP64", "[0.1,-1e300,5e-324]", LE.F64(0.1, -1e300, double.Epsilon) },
        { "BYTES", """["abc","","a\"b\u00e9"]""", LE.Strings("abc", "", "a\"b\u00e9") },
    };

    [Theory]
    [MemberData(nameof(Datatypes))]
    public void Every_datatype_decodes_to_little_endian_bytes(string datatype, string data, byte[] expected)
    {
        var tensor = Single($$"""{"inputs":[{"name":"t","shape":[3],"datatype":"{{datatype}}","data":{{data}}}]}""");

        Assert.True(TensorDataTypes.TryParse(datatype, out var type));
        Assert.Equal(type, tensor.DataType);
        Assert.Equal(expected, tensor.Data.ToArray());
    }

    [Fact]
    public void FP16_values_are_rounded_from_json_numbers_like_a_Half_conversion()
    {
        var tensor = Single("""{"inputs":[{"name":"h","shape":[4],"datatype":"FP16","data":[0.1,-0.3333,1e-5,65504]}]}""");

        Assert.Equal(LE.F16((Half)0.1, (Half)(-0.3333), (Half)1e-5, Half.MaxValue), tensor.Data.ToArray());
    }

    [Theory]
    [InlineData("FP16", "70000")]
    [InlineData("FP32", "1e39")]
    [InlineData("FP64", "1e400")]
    public void Numbers_too_large_for_the_float_datatype_are_invalid_rather_than_infinite(string datatype, string value)
    {
        using var buffers = new PooledBuffers();
        var e = Assert.Throws<InferenceException>(() => Codec.DecodeV2($$"""{"inputs":[{"name":"f","shape":[1],"datatype":"{{datatype}}","data":[{{value}}]}]}""", buffers));
        Assert.Equal(InferenceErrorKind.InvalidInput, e.Kind);
        Assert.Contains($"value {value} is not a valid {datatype}", e.Message);
    }

    [Fact]
    public void BF16_rounds_to_nearest_even()
    {
        // 1 + 2^-8 lies halfway between 0x3F80 and 0x3F81 (rounds down to even), 1 + 3*2^-8 halfway between 0x3F81 and 0x3F82 (rounds up to even).
        var tensor = Single("""{"inputs":[{"name":"b","shape":[2],"datatype":"BF16","data":[1.00390625,1.01171875]}]}""");

        Assert.Equal(LE.BF16(0x3F80, 0x3F82), tensor.Data.ToArray());
    }

    [Fact]
    public void Float_inputs_accept_NaN_and_infinities_as_strings()
    {
        var tensor = Single("""{"inputs":[{"name":"f","shape":[3],"datatype":"FP32","data":["NaN","Infinity","-Infinity"]}]}""");

        var values = LE.ToFloats(tensor.Data);
        Assert.True(float.IsNaN(values[0]));
        Assert.Equal(float.PositiveInfinity, values[1]);
        Assert.Equal(float.NegativeInfinity, values[2]);
    }

    [Fact]
    public void Bytes_elements_keep_escapes_unicode_and_nested_layout()
    {
        var tensor = Single("""{"inputs":[{"name":"s","shape":[2,2],"datatype":"BYTES","data":[["tab\there","\ud83d\ude00"],["line\nbreak","\\"]]}]}""");

        Assert.Equal(LE.Strings("tab\there", "\U0001F600", "line\nbreak", "\\"), tensor.Data.ToArray());
    }

    [Fact]
    public void Zero_dimensional_tensor_takes_one_scalar()
    {
        var tensor = Single("""{"inputs":[{"name":"s","shape":[],"datatype":"FP64","data":2.5}]}""");

        Assert.Empty(tensor.Shape.ToArray());
        Assert.Equal(LE.F64(2.5), tensor.Data.ToArray());
    }

    [Fact]
    public void Empty_tensor_with_a_zero_dimension_has_no_data()
    {
        var tensor = Single("""{"inputs":[{"name":"e","shape":[0,4],"datatype":"FP32","data":[]}]}""");

        Assert.Equal([0L, 4L], tensor.Shape.ToArray());
        Assert.Equal(0, tensor.Data.Length);
    }

    [Fact]
    public void Several_inputs_keep_their_order_and_own_buffers()
    {
        var request = DecodeV2("""
            {"inputs":[
              {"name":"a","shape":[2],"datatype":"FP32","data":[1,2]},
              {"name":"b","shape":[1,2],"datatype":"INT64","data":[[3,4]]},
              {"name":"c","shape":[1],"datatype":"BYTES","data":["x"]}]}
            """, _buffers);

        Assert.Equal(["a", "b", "c"], request.Inputs.Select(i => i.Name));
        Assert.Equal(LE.F32(1, 2), request.Inputs[0].Data.ToArray());
        Assert.Equal(LE.I64(3, 4), request.Inputs[1].Data.ToArray());
        Assert.Equal(LE.Strings("x"), request.Inputs[2].Data.ToArray());
    }

    [Fact]
    public void Id_is_echoed()
    {
        Assert.Equal("req-42", DecodeV2("""{"id":"req-42","inputs":[]}""", _buffers).Id);
    }

    [Fact]
    public void Missing_id_gets_a_generated_unique_one()
    {
        var ids = Enumerable.Range(0, 20).Select(_ => DecodeV2("""{"inputs":[]}""", _buffers).Id).ToList();

        Assert.All(ids, id => Assert.False(string.IsNullOrWhiteSpace(id)));
        Assert.Equal(ids.Count, ids.Distinct().Count());
    }

    [Fact]
    public void No_requested_outputs_means_all_outputs()
    {
        var request = DecodeV2("""{"inputs":[]}""", _buffers);

        Assert.True(request.AllOutputs);
        Assert.Null(request.Parameters);
    }

    [Fact]
    public void Requested_outputs_keep_names_and_parameters()
    {
        var request = DecodeV2("""
            {"inputs":[],
             "outputs":[{"name":"probabilities","parameters":{"binary_data":false,"classification":3}},{"name":"label"}]}
            """, _buffers);

        Assert.False(request.AllOutputs);
        Assert.Equal(["probabilities", "label"], request.Outputs.Select(o => o.Name));
        var parameters = request.Outputs[0].Parameters!;
        Assert.Equal(InferParameterKind.Bool, parameters["binary_data"].Kind);
        Assert.False(parameters["binary_data"].BoolValue);
        Assert.Equal(InferParameterKind.Int64, parameters["classification"].Kind);
        Assert.Equal(3, parameters["classification"].Int64Value);
        Assert.Null(request.Outputs[1].Parameters);
    }

    [Fact]
    public void Request_parameters_of_every_kind()
    {
        var request = DecodeV2("""
            {"parameters":{"flag":true,"off":false,"count":-12,"big":18446744073709551615,"ratio":0.25,"whole_double":2.0,
                           "mode":"fast","text":"caf\u00e9","nested":{"a":[1,2]},"nothing":null},
             "inputs":[]}
            """, _buffers);

        var p = request.Parameters!;
        Assert.Equal(InferParameter.Of(true), p["flag"]);
        Assert.Equal(InferParameter.Of(false), p["off"]);
        Assert.Equal(InferParameter.Of(-12L), p["count"]);
        Assert.Equal(InferParameterKind.UInt64, p["big"].Kind);
        Assert.Equal(ulong.MaxValue, p["big"].UInt64Value);
        Assert.Equal(InferParameter.Of(0.25), p["ratio"]);
        Assert.Equal(InferParameterKind.Double, p["whole_double"].Kind);
        Assert.True(p["whole_double"].TryGetInt64(out var whole));
        Assert.Equal(2, whole);
        Assert.Equal(InferParameter.Of("fast"), p["mode"]);
        Assert.Equal("caf\u00e9", p["text"].StringValue);
        Assert.Equal(InferParameterKind.String, p["nested"].Kind);
        Assert.Equal("""{"a":[1,2]}""", p["nested"].StringValue);
        Assert.Equal("null", p["nothing"].StringValue);
    }

    [Fact]
    public void Decoded_tensors_live_in_buffers_rented_from_the_request_scope()
    {
        using var scope = new PooledBuffers();
        var tensor = Assert.Single(DecodeV2("""{"inputs":[{"name":"x","shape":[4],"datatype":"FP32","data":[1,2,3,4]}]}""", scope).Inputs);

        Assert.True(System.Runtime.InteropServices.MemoryMarshal.TryGetArray(tensor.Data, out var segment));
        Assert.True(segment.Array!.Length >= 16);
        Assert.Equal(0, segment.Offset);
        Assert.Equal(16, segment.Count);
    }
}
