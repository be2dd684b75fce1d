using System.Collections.Immutable;
using System.Text.Json;
using Orleans.KServe.Contracts.Inference;
using Orleans.KServe.Contracts.Tensors;
using Orleans.KServe.Gateway.Codecs;
using static Orleans.KServe.Gateway.Tests.Codec;

namespace Orleans.KServe.Gateway.Tests;

/// <summary>v2 responses written to JSON and read back.</summary>
public sealed class V2ResponseTests
{
    private static Tensor T(string name, TensorDataType type, long[] shape, byte[] data) =>
        new(name, type, ImmutableArray.Create(shape), data);

    private static JsonDocument WriteResponse(InferenceResponse response) => Write(w => V2JsonCodec.WriteResponse(w, response));

    private static JsonElement Output(JsonDocument document, string name) =>
        document.RootElement.GetProperty("outputs").EnumerateArray().Single(o => o.GetProperty("name").GetString() == name);

    [Fact]
    public void Response_round_trips_names_version_id_and_every_output()
    {
        var response = new InferenceResponse("mlp", "3", "req-1",
        [
            T("probs", TensorDataType.FP32, [2, 2], LE.F32(0.25f, 0.75f, 1e-8f, -3.5f)),
            T("label", TensorDataType.Int64, [3], LE.I64(1, -2, long.MaxValue)),
            T("mask", TensorDataType.Bool, [2], LE.Bool(true, false)),
            T("text", TensorDataType.Bytes, [2], LE.Strings("caf\u00e9", "a\"b")),
            T("half", TensorDataType.FP16, [2], LE.F16((Half)1.5, (Half)(-0.099976))),
        ]);

        using var document = WriteResponse(response);
        var root = document.RootElement;

        Assert.Equal("mlp", root.GetProperty("model_name").GetString());
        Assert.Equal("3", root.GetProperty("model_version").GetString());
        Assert.Equal("req-1", root.GetProperty("id").GetString());
        Assert.Equal(["probs", "label", "mask", "text", "half"], root.GetProperty("outputs").EnumerateArray().Select(o => o.GetProperty("name").GetString()));

        var probs = Output(document, "probs");
        Assert.Equal("FP32", probs.GetProperty("datatype").GetString());
        Assert.Equal([2L, 2L], probs.GetProperty("shape").EnumerateArray().Select(d => d.GetInt64()));
        Assert.Equal([0.25f, 0.75f, 1e-8f, -3.5f], probs.GetProperty("data").EnumerateArray().Select(d => d.GetSingle()));

        var label = Output(document, "label");
        Assert.Equal("INT64", label.GetProperty("datatype").GetString());
        Assert.Equal([3L], label.GetProperty("shape").EnumerateArray().Select(d => d.GetInt64()));
        Assert.Equal([1L, -2L, long.MaxValue], label.GetProperty("data").EnumerateArray().Select(d => d.GetInt64()));

        var mask = Output(document, "mask");
        Assert.Equal("BOOL", mask.GetProperty("datatype").GetString());
        Assert.Equal([true, false], mask.GetProperty("data").EnumerateArray().Select(d => d.GetBoolean()));

        var text = Output(document, "text");
        Assert.Equal("BYTES", text.GetProperty("datatype").GetString());
        Assert.Equal(["caf\u00e9", "a\"b"], text.GetProperty("data").EnumerateArray().Select(d => d.GetString()));

        var half = Output(document, "half");
        Assert.Equal("FP16", half.GetProperty("datatype").GetString());
        Assert.Equal([1.5f, (float)(Half)(-0.099976)], half.GetProperty("data").EnumerateArray().Select(d => d.GetSingle()));
    }

    [Fact]
    public void Every_datatype_round_trips_through_decode_and_write()
    {
        foreach (var (datatype, data, _) in V2DecodeTests.Datatypes().Select(row => ((string)row[0], (string)row[1], (byte[])row[2])))
        {
            using var buffers = new PooledBuffers();
            var input = Assert.Single(DecodeV2($$"""{"inputs":[{"name":"t","shape":[3],"datatype":"{{datatype}}","data":{{data}}}]}""", buffers).Inputs);

            using var document = WriteResponse(new InferenceResponse("m", null, "id", [input]));
            var written = Output(document, "t").GetProperty("data").GetRawText();

            using var again = new PooledBuffers();
            var reread = Assert.Single(DecodeV2($$"""{"inputs":[{"name":"t","shape":[3],"datatype":"{{datatype}}","data":{{written}}}]}""", again).Inputs);
            Assert.True(input.Data.Span.SequenceEqual(reread.Data.Span), $"{datatype}: {data} was written as {written}");
        }
    }

    [Fact]
    public void Non_finite_floats_are_written_as_strings()
    {
        var response = new InferenceResponse("m", null, "id",
        [
            T("f32", TensorDataType.FP32, [3], LE.F32(float.NaN, float.PositiveInfinity, float.NegativeInfinity)),
            T("f64", TensorDataType.FP64, [3], LE.F64(double.NaN, double.PositiveInfinity, double.NegativeInfinity)),
            T("f16", TensorDataType.FP16, [3], LE.F16(Half.NaN, Half.PositiveInfinity, Half.NegativeInfinity)),
            T("bf16", TensorDataType.BF16, [3], LE.BF16(0x7FC0, 0x7F80, 0xFF80)),
        ]);

        using var document = WriteResponse(response);

        foreach (var name in new[] { "f32", "f64", "f16", "bf16" })
        {
            Assert.Equal(["NaN", "Infinity", "-Infinity"], Output(document, name).GetProperty("data").EnumerateArray().Select(d => d.GetString()));
        }
    }

    [Fact]
    public void Missing_version_is_omitted_and_parameters_are_written()
    {
        var parameters = InferParameters.Empty
            .Add("sequence_end", InferParameter.Of(true))
            .Add("count", InferParameter.Of(42L))
            .Add("ratio", InferParameter.Of(0.5))
            .Add("note", InferParameter.Of("ok"));
        var response = new InferenceResponse("m", null, "id", [], parameters);

        using var document = WriteResponse(response);
        var root = document.RootElement;

        Assert.False(root.TryGetProperty("model_version", out _));
        Assert.Empty(root.GetProperty("outputs").EnumerateArray());
        var p = root.GetProperty("parameters");
        Assert.True(p.GetProperty("sequence_end").GetBoolean());
        Assert.Equal(42, p.GetProperty("count").GetInt64());
        Assert.Equal(0.5, p.GetProperty("ratio").GetDouble());
        Assert.Equal("ok", p.GetProperty("note").GetString());
    }

    [Fact]
    public void Json_special_characters_in_names_are_escaped()
    {
        var response = new InferenceResponse("m\"odel", "v\\1", "id\n2", [T("out\"put", TensorDataType.UInt8, [1], LE.U8(9))]);

        using var document = WriteResponse(response);
        var root = document.RootElement;

        Assert.Equal("m\"odel", root.GetProperty("model_name").GetString());
        Assert.Equal("v\\1", root.GetProperty("model_version").GetString());
        Assert.Equal("id\n2", root.GetProperty("id").GetString());
        Assert.Equal(9, Output(document, "out\"put").GetProperty("data")[0].GetInt32());
    }
}
