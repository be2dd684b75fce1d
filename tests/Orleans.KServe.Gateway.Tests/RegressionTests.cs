using System.Collections.Immutable;
using System.Text;
using Orleans.KServe.Contracts.Inference;
using Orleans.KServe.Contracts.Models;
using Orleans.KServe.Contracts.Tensors;
using Orleans.KServe.Gateway.Codecs;
using static Orleans.KServe.Gateway.Tests.Codec;

namespace Orleans.KServe.Gateway.Tests;

/// <summary>
/// Regression tests for product bugs found by this suite (each was failing before its fix); every test states the
/// behaviour a user relies on.
/// </summary>
public sealed class RegressionTests
{
    private static byte[] WithByte(string json, char marker, byte value)
    {
        var bytes = Encoding.UTF8.GetBytes(json);
        bytes[Array.IndexOf(bytes, (byte)marker)] = value;
        return bytes;
    }

    /// <summary>
    /// Utf8JsonReader.GetString / CopyString throw InvalidOperationException (not JsonException) for invalid UTF-8
    /// or a lone surrogate escape in a string. V2JsonCodec.DecodeRequest (V2JsonCodec.cs line 27) catches only
    /// JsonException, so a client's bad string escapes as InvalidOperationException, which HttpIo.Classify maps to
    /// 500 "internal error" instead of 400. Affects id, input and output names, parameter keys and string values,
    /// and BYTES data.
    /// </summary>
    [Theory]
    [InlineData("""{"id":"a~b","inputs":[]}""")]
    [InlineData("""{"inputs":[{"name":"a~b","shape":[1],"datatype":"FP32","data":[1]}]}""")]
    [InlineData("""{"parameters":{"k~":1},"inputs":[]}""")]
    [InlineData("""{"outputs":[{"name":"o~"}],"inputs":[]}""")]
    public void V2_invalid_utf8_in_a_string_is_invalid_input_not_an_internal_error(string json)
    {
        var body = WithByte(json, '~', 0xFF);
        using var buffers = new PooledBuffers();

        AssertInvalid(() => V2JsonCodec.DecodeRequest(body, buffers));
    }

    /// <summary>Same root cause: a lone surrogate escape ("\ud800") is valid JSON text but not a valid string.</summary>
    [Theory]
    [InlineData("""{"inputs":[{"name":"\ud800","shape":[1],"datatype":"FP32","data":[1]}]}""")]
    [InlineData("""{"inputs":[{"name":"s","shape":[1],"datatype":"BYTES","data":["\ud800"]}]}""")]
    public void V2_lone_surrogate_escape_is_invalid_input_not_an_internal_error(string json)
    {
        AssertV2Invalid(json);
    }

    /// <summary>V1JsonCodec.DecodeRequest (V1JsonCodec.cs line 27) has the same JsonException-only catch.</summary>
    [Fact]
    public void V1_lone_surrogate_escape_in_BYTES_data_is_invalid_input_not_an_internal_error()
    {
        var metadata = new ModelMetadata("text", ["1"], "onnxruntime_onnx",
            [new TensorMetadata("text", TensorDataType.Bytes, [-1])],
            [new TensorMetadata("label", TensorDataType.Int64, [-1])]);
        using var buffers = new PooledBuffers();

        AssertInvalid(() => V1JsonCodec.DecodeRequest(Utf8("""{"instances":["ok","\ud800"]}"""), metadata, buffers));
    }

    /// <summary>
    /// V1JsonCodec.ReadInstances (lines 105-109) takes the row shape from the first row only and never checks the
    /// others; the data is then read flat. When the ragged rows happen to hold rows x first-row-size elements in
    /// total, the request is accepted and the values are silently re-chunked into different rows: [[1,2],[3,4,5],[6]]
    /// becomes [[1,2],[3,4],[5,6]]. Expected: 400 (ideally naming the row whose shape differs, as object rows already do).
    /// </summary>
    [Theory]
    [InlineData("""{"instances":[[1,2],[3,4,5],[6]]}""", false)]
    [InlineData("""{"instances":[[1,2,3],[4],[5,6,7,8,9]]}""", false)]
    [InlineData("""{"instances":[1,[2]]}""", true)]
    public void V1_ragged_instances_are_rejected_even_when_the_element_count_fits(string json, bool vectorModel)
    {
        using var buffers = new PooledBuffers();
        var metadata = vectorModel ? V1CodecTests.VectorInput : V1CodecTests.OneInput;

        AssertInvalid(() => V1JsonCodec.DecodeRequest(Utf8(json), metadata, buffers));
    }

    /// <summary>
    /// V1JsonCodec.ReadObjectRows (lines 159-175) checks for names the model lacks in the first row only, so an
    /// unknown (e.g. misspelt) input name in any later row is silently ignored. Expected: 400 naming it, as for row 0.
    /// </summary>
    [Fact]
    public void V1_unknown_input_name_in_a_later_row_is_rejected()
    {
        using var buffers = new PooledBuffers();

        AssertInvalid(
            () => V1JsonCodec.DecodeRequest(
                Utf8("""{"instances":[{"features":[1,2],"bucket":1},{"features":[3,4],"bucket":2,"buckett":3}]}"""),
                V1CodecTests.TwoInputs,
                buffers),
            "unknown input 'buckett'");
    }
}
