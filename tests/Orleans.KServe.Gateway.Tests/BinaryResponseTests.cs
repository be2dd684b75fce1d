using System.Collections.Immutable;
using System.Text.Json;
using Orleans.KServe.Contracts.Inference;
using Orleans.KServe.Contracts.Tensors;
using Orleans.KServe.Gateway.Codecs;
using static Orleans.KServe.Gateway.Tests.Codec;

namespace Orleans.KServe.Gateway.Tests;

/// <summary>Which outputs go binary, and the layout of a response that carries binary outputs.</summary>
public sealed class BinaryResponseTests
{
    private static Tensor T(string name, TensorDataType type, long[] shape, byte[] data) =>
        new(name, type, ImmutableArray.Create(shape), data);

    private static readonly InferenceResponse Response = new("m", "1", "req",
    [
        T("probs", TensorDataType.FP32, [2], LE.F32(0.25f, 0.75f)),
        T("label", TensorDataType.Int64, [1], LE.I64(7)),
        T("text", TensorDataType.Bytes, [2], LE.Strings("ab", "")),
        T("mask", TensorDataType.Bool, [3], LE.Bool(true, false, true)),
    ]);

    private static InferenceRequest Request(string json)
    {
        using var buffers = new PooledBuffers();
        return DecodeV2(json, buffers);
    }

    private static bool[]? Mask(string json) => BinaryOutputs.For(Request(json)).Mask(Response);

    private static void AssertMask(bool[] expected, string json) => Assert.Equal(expected, Mask(json) ?? throw new Xunit.Sdk.XunitException("no output is binary"));

    [Fact]
    public void Nothing_is_binary_by_default()
    {
        var outputs = BinaryOutputs.For(Request("""{"inputs":[],"outputs":[{"name":"probs"},{"name":"label","parameters":{"other":1}}]}"""));

        Assert.False(outputs.Any);
        Assert.False(outputs.IsBinary("probs"));
        Assert.Null(outputs.Mask(Response));
        Assert.False(default(BinaryOutputs).Any);
    }

    [Fact]
    public void Binary_data_output_makes_every_output_binary()
    {
        AssertMask([true, true, true, true], """{"parameters":{"binary_data_output":true},"inputs":[]}""");
        Assert.Null(Mask("""{"parameters":{"binary_data_output":false},"inputs":[]}"""));
    }

    [Fact]
    public void An_output_binary_data_flag_chooses_that_output_and_false_overrides_the_request_level()
    {
        AssertMask([false, true, false, false], """{"inputs":[],"outputs":[{"name":"label","parameters":{"binary_data":true}},{"name":"probs"}]}""");
        AssertMask([true, false, true, true], """{"parameters":{"binary_data_output":true},"inputs":[],"outputs":[{"name":"label","parameters":{"binary_data":false}}]}""");
        Assert.Null(Mask("""{"parameters":{"binary_data_output":true},"inputs":[],"outputs":[{"name":"probs","parameters":{"binary_data":false}},{"name":"label","parameters":{"binary_data":false}},{"name":"text","parameters":{"binary_data":false}},{"name":"mask","parameters":{"binary_data":false}}]}"""));
    }

    [Fact]
    public void An_output_asked_for_only_in_binary_still_limits_the_answer_to_the_outputs_named()
    {
        var request = Request("""{"inputs":[],"outputs":[{"name":"label","parameters":{"binary_data":true}}]}""");

        Assert.False(request.AllOutputs);
        Assert.Equal(["label"], request.Outputs.Select(o => o.Name));
    }

    [Theory]
    [InlineData("""{"parameters":{"binary_data_output":1},"inputs":[]}""", "'binary_data_output' of the request must be a boolean")]
    [InlineData("""{"parameters":{"binary_data_output":"true"},"inputs":[]}""", "'binary_data_output'", "boolean")]
    [InlineData("""{"inputs":[],"outputs":[{"name":"y","parameters":{"binary_data":"yes"}}]}""", "'binary_data' of output 'y' must be a boolean")]
    public void Binary_flags_must_be_booleans(string json, params string[] fragments)
    {
        var request = Request(json);
        AssertInvalid(() => BinaryOutputs.For(request), fragments);
    }

    [Fact]
    public void Binary_outputs_carry_binary_data_size_and_no_data_and_follow_the_header_in_output_order()
    {
        bool[] mask = [true, false, true, true];
        using var header = new PooledBufferWriter(64);
        using (var writer = new Utf8JsonWriter(header))
        {
            V2JsonCodec.WriteResponse(writer, Response, mask);
        }

        var segments = BinaryTensorCodec.Segments(header.WrittenMemory, Response, mask);
        var body = segments.SelectMany(s => s.ToArray()).ToArray();
        var headerLength = header.WrittenMemory.Length;

        Assert.Equal(4, segments.Length);
        Assert.Equal(body.Length - headerLength, BinaryTensorCodec.BinaryLength(Response, mask));
        using var document = JsonDocument.Parse(body.AsMemory(0, headerLength));
        var outputs = document.RootElement.GetProperty("outputs").EnumerateArray().ToArray();
        Assert.Equal(["probs", "label", "text", "mask"], outputs.Select(o => o.GetProperty("name").GetString()));

        Assert.False(outputs[0].TryGetProperty("data", out _));
        Assert.Equal(8, outputs[0].GetProperty("parameters").GetProperty("binary_data_size").GetInt32());
        Assert.Equal("FP32", outputs[0].GetProperty("datatype").GetString());
        Assert.Equal([2L], outputs[0].GetProperty("shape").EnumerateArray().Select(d => d.GetInt64()));

        Assert.False(outputs[1].TryGetProperty("parameters", out _));
        Assert.Equal(7, outputs[1].GetProperty("data")[0].GetInt64());

        Assert.Equal(10, outputs[2].GetProperty("parameters").GetProperty("binary_data_size").GetInt32());
        Assert.Equal(3, outputs[3].GetProperty("parameters").GetProperty("binary_data_size").GetInt32());

        byte[] expected = [.. LE.F32(0.25f, 0.75f), .. LE.Strings("ab", ""), .. LE.Bool(true, false, true)];
        Assert.Equal(expected, body[headerLength..]);
    }

    [Fact]
    public void Binary_segments_are_the_response_arrays_not_copies()
    {
        var segments = BinaryTensorCodec.Segments(ReadOnlyMemory<byte>.Empty, Response, [false, true, false, false]);

        Assert.Equal(2, segments.Length);
        Assert.True(segments[1].Span == Response.Outputs[1].Data.Span);
    }

    [Fact]
    public void Without_a_mask_the_response_is_the_plain_json_one()
    {
        using var plain = Write(w => V2JsonCodec.WriteResponse(w, Response));
        using var unmasked = Write(w => V2JsonCodec.WriteResponse(w, Response, [false, false, false, false]));

        Assert.Equal(plain.RootElement.GetRawText(), unmasked.RootElement.GetRawText());
    }

    [Fact]
    public void A_binary_response_read_back_as_a_binary_request_gives_the_same_tensors()
    {
        bool[] mask = [true, true, true, true];
        using var header = new PooledBufferWriter(64);
        using (var writer = new Utf8JsonWriter(header))
        {
            V2JsonCodec.WriteResponse(writer, Response, mask);
        }

        // An output object has the shape of an input object: the response header re-read as "inputs".
        var json = JsonDocument.Parse(header.WrittenMemory).RootElement.GetProperty("outputs").GetRawText();
        var (body, length) = BinaryBody.Build($$"""{"inputs":{{json}}}""",
            BinaryTensorCodec.Segments(ReadOnlyMemory<byte>.Empty, Response, mask)[1..].Select(s => s.ToArray()).ToArray());
        using var buffers = new PooledBuffers();

        var request = V2JsonCodec.DecodeRequest(body, length, buffers);

        Assert.Equal(Response.Outputs.Select(o => o.Data.ToArray()), request.Inputs.Select(i => i.Data.ToArray()));
        Assert.Equal(Response.Outputs.Select(o => o.DataType), request.Inputs.Select(i => i.DataType));
    }
}
