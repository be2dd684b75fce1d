using Orleans.KServe.Gateway.Codecs;
using static Orleans.KServe.Gateway.Tests.Codec;

namespace Orleans.KServe.Gateway.Tests;

/// <summary>Bad v2 requests: always a 400 InferenceException whose message names the problem.</summary>
public sealed class V2ErrorTests
{
    private static string Input(string datatype, string shape, string data, string name = "x") =>
        $$"""{"inputs":[{"name":"{{name}}","shape":{{shape}},"datatype":"{{datatype}}","data":{{data}}}]}""";

    [Theory]
    [InlineData("""{"inputs":[""")]
    [InlineData("""{"inputs":[{"name":"x",}]}""")]
    [InlineData("""{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1,]}]}""")]
    [InlineData("{'inputs':[]}")]
    [InlineData("")]
    [InlineData("   ")]
    public void Malformed_json_is_invalid(string json)
    {
        AssertV2Invalid(json, "malformed JSON");
    }

    [Theory]
    [InlineData("[1,2,3]")]
    [InlineData("\"inputs\"")]
    [InlineData("42")]
    [InlineData("null")]
    public void Body_that_is_not_an_object_is_invalid(string json)
    {
        AssertV2Invalid(json, "JSON object");
    }

    [Fact]
    public void Missing_inputs_is_invalid()
    {
        AssertV2Invalid("""{"id":"x","outputs":[{"name":"y"}]}""", "inputs");
    }

    [Theory]
    [InlineData("""{"inputs":{"name":"x"}}""", "'inputs' must be an array")]
    [InlineData("""{"inputs":[42]}""", "inputs[0] must be an object")]
    [InlineData("""{"inputs":[{"shape":[1],"datatype":"FP32","data":[1]}]}""", "inputs[0] has no 'name'")]
    [InlineData("""{"inputs":[{"name":"x","datatype":"FP32","data":[1]}]}""", "'x' has no 'shape'")]
    [InlineData("""{"inputs":[{"name":"x","shape":[1],"data":[1]}]}""", "'x' has no 'datatype'")]
    [InlineData("""{"inputs":[{"name":"x","shape":[1],"datatype":"FP32"}]}""", "'x' has no 'data'")]
    [InlineData("""{"inputs":[{"name":7,"shape":[1],"datatype":"FP32","data":[1]}]}""", "name must be a string")]
    [InlineData("""{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":null}]}""", "data must be an array")]
    [InlineData("""{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":{"a":1}}]}""", "data must be an array")]
    public void Input_missing_a_field_names_the_field(string json, string expected)
    {
        AssertV2Invalid(json, expected);
    }

    [Theory]
    [InlineData("FLOAT32")]
    [InlineData("fp32")]
    [InlineData("STRING")]
    [InlineData("")]
    public void Unknown_datatype_lists_the_valid_ones(string datatype)
    {
        AssertV2Invalid(Input(datatype, "[1]", "[1]"), "datatype", "FP32", "BYTES");
    }

    [Theory]
    [InlineData("[-1]")]
    [InlineData("[2,-3]")]
    [InlineData("[1.5]")]
    [InlineData("[\"2\"]")]
    [InlineData("2")]
    public void Negative_or_non_integer_dimensions_are_invalid(string shape)
    {
        AssertV2Invalid(Input("FP32", shape, "[1,2]"), "shape", "non-negative integers");
    }

    [Fact]
    public void More_than_sixteen_dimensions_are_invalid()
    {
        AssertV2Invalid(Input("FP32", "[" + string.Join(",", Enumerable.Repeat(1, 17)) + "]", "[1]"), "more than 16 dimensions");
    }

    [Theory]
    [InlineData("[1000000000,1000000000]", "FP32")]
    [InlineData("[9223372036854775807,2]", "FP64")]
    [InlineData("[100000,100000]", "BYTES")]
    [InlineData("[1000000]", "INT64")]
    public void Absurd_shape_with_few_elements_is_rejected_without_allocating_its_buffer(string shape, string datatype)
    {
        var json = Utf8(Input(datatype, shape, datatype == "BYTES" ? """["a","b","c","d"]""" : "[1,2,3,4]"));
        using var buffers = new PooledBuffers();
        AssertInvalid(() => V2JsonCodec.DecodeRequest(json, buffers), "shape"); // warm up code paths

        var before = GC.GetAllocatedBytesForCurrentThread();
        var e = Record.Exception(() => V2JsonCodec.DecodeRequest(json, buffers));
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.IsType<Orleans.KServe.Contracts.Inference.InferenceException>(e);
        Assert.Contains(shape.Replace(" ", ""), e.Message);
        Assert.True(allocated < 64 * 1024, $"rejecting the shape allocated {allocated:N0} bytes");
    }

    [Theory]
    [InlineData("FP32", "[1,2,3]", "3 data elements", "needs 4")]
    [InlineData("FP32", "[[1,2],[3]]", "3 data elements", "needs 4")]
    [InlineData("INT64", "[]", "0 data elements", "needs 4")]
    [InlineData("BYTES", """["a","b"]""", "2 data elements", "needs 4")]
    public void Too_few_elements_are_invalid(string datatype, string data, string found, string needed)
    {
        AssertV2Invalid(Input(datatype, "[2,2]", data), "'x'", found, needed);
    }

    [Theory]
    [InlineData("FP32", "[1,2,3,4,5]")]
    [InlineData("UINT8", "[[1,2],[3,4],[5,6]]")]
    [InlineData("BOOL", "[true,true,true,true,false]")]
    [InlineData("BYTES", """["a","b","c","d","e"]""")]
    public void Too_many_elements_are_invalid(string datatype, string data)
    {
        AssertV2Invalid(Input(datatype, "[2,2]", data), "'x'", "4");
    }

    [Theory]
    [InlineData("FP32", "[1,\"2\"]", "found a string")]
    [InlineData("FP32", "[1,null]", "found null")]
    [InlineData("FP32", "[1,true]", "found a boolean")]
    [InlineData("FP32", "[1,{\"v\":2}]", "found an object")]
    [InlineData("INT32", "[1,1.5]", "1.5")]
    [InlineData("INT32", "[1,2147483648]", "2147483648")]
    [InlineData("UINT8", "[1,300]", "300")]
    [InlineData("UINT16", "[1,-1]", "-1")]
    [InlineData("UINT64", "[1,-1]", "-1")]
    [InlineData("INT8", "[1,128]", "128")]
    [InlineData("INT64", "[1,1e3]", "1e3")]
    [InlineData("BOOL", "[true,1]", "found a number")]
    [InlineData("BOOL", "[true,\"false\"]", "found a string")]
    [InlineData("BYTES", "[\"a\",1]", "found a number")]
    public void Wrong_element_types_name_the_tensor_datatype_and_value(string datatype, string data, string expected)
    {
        AssertV2Invalid(Input(datatype, "[2]", data), "'x'", datatype, expected);
    }

    [Theory]
    [InlineData("""{"inputs":[]} x""")]
    [InlineData("""{"inputs":[]}{"inputs":[]}""")]
    [InlineData("""{"inputs":[]}]""")]
    [InlineData("""{"inputs":[]},""")]
    public void Trailing_content_after_the_object_is_invalid(string json)
    {
        AssertV2Invalid(json, "malformed JSON");
    }

    [Fact]
    public void Trailing_whitespace_is_fine()
    {
        using var buffers = new PooledBuffers();
        Assert.Empty(DecodeV2("{\"inputs\":[]}\r\n\t ", buffers).Inputs);
    }

    [Theory]
    [InlineData("""{"id":5,"inputs":[]}""", "'id' must be a string")]
    [InlineData("""{"parameters":[1],"inputs":[]}""", "'parameters' must be an object")]
    [InlineData("""{"outputs":{"name":"y"},"inputs":[]}""", "'outputs' must be an array")]
    [InlineData("""{"outputs":["y"],"inputs":[]}""", "outputs[0] must be an object")]
    [InlineData("""{"outputs":[{"parameters":{}}],"inputs":[]}""", "outputs[0] has no 'name'")]
    [InlineData("""{"outputs":[{"name":"y","parameters":"x"}],"inputs":[]}""", "outputs[0].parameters")]
    public void Bad_id_parameters_or_outputs_are_invalid(string json, string expected)
    {
        AssertV2Invalid(json, expected);
    }

    [Fact]
    public void Deeply_nested_data_is_rejected_not_a_stack_overflow()
    {
        var data = new string('[', 200) + "1" + new string(']', 200);

        AssertV2Invalid(Input("FP32", "[1]", data), "malformed JSON");
    }
}
