using System.Collections.Immutable;
using System.Text.Json;
using Orleans.KServe.Contracts.Inference;
using Orleans.KServe.Contracts.Models;
using Orleans.KServe.Contracts.Tensors;
using Orleans.KServe.Gateway.Codecs;
using static Orleans.KServe.Gateway.Tests.Codec;

namespace Orleans.KServe.Gateway.Tests;

/// <summary>KServe v1 (TF-Serving style) requests and responses.</summary>
public sealed class V1CodecTests : IDisposable
{
    internal static readonly ModelMetadata OneInput = new(
        "mlp", ["1"], "onnxruntime_onnx",
        [new TensorMetadata("input", TensorDataType.FP32, [-1, 2])],
        [new TensorMetadata("output", TensorDataType.FP32, [-1, 3])]);

    internal static readonly ModelMetadata VectorInput = new(
        "scaler", ["1"], "onnxruntime_onnx",
        [new TensorMetadata("x", TensorDataType.FP32, [-1])],
        [new TensorMetadata("y", TensorDataType.FP32, [-1])]);

    internal static readonly ModelMetadata TwoInputs = new(
        "ranker", ["1"], "onnxruntime_onnx",
        [new TensorMetadata("features", TensorDataType.FP32, [-1, 2]), new TensorMetadata("bucket", TensorDataType.Int64, [-1])],
        [new TensorMetadata("score", TensorDataType.FP32, [-1]), new TensorMetadata("rank", TensorDataType.Int64, [-1])]);

    private readonly PooledBuffers _buffers = new();

    public void Dispose() => _buffers.Dispose();

    private InferenceRequest Decode(string json, ModelMetadata metadata) => V1JsonCodec.DecodeRequest(Utf8(json), metadata, _buffers);

    private void AssertV1Invalid(string json, ModelMetadata metadata, params string[] fragments) =>
        AssertInvalid(() => V1JsonCodec.DecodeRequest(Utf8(json), metadata, _buffers), fragments);

    [Fact]
    public void Columnar_inputs_naming_no_input_are_invalid_naming_what_the_model_expects()
    {
        AssertV1Invalid("""{"inputs":{}}""", TwoInputs, "'inputs' names no input", "'features', 'bucket'");
    }

    [Fact]
    public void Instances_rows_stack_on_the_batch_dimension()
    {
        var request = Decode("""{"instances":[[1,2],[3,4]]}""", OneInput);

        var input = Assert.Single(request.Inputs);
        Assert.Equal("input", input.Name);
        Assert.Equal(TensorDataType.FP32, input.DataType);
        Assert.Equal([2L, 2L], input.Shape.ToArray());
        Assert.Equal(LE.F32(1, 2, 3, 4), input.Data.ToArray());
        Assert.True(request.AllOutputs);
        Assert.False(string.IsNullOrEmpty(request.Id));
    }

    [Fact]
    public void Single_instance_is_a_batch_of_one()
    {
        var input = Assert.Single(Decode("""{"instances":[[5,6]]}""", OneInput).Inputs);

        Assert.Equal([1L, 2L], input.Shape.ToArray());
        Assert.Equal(LE.F32(5, 6), input.Data.ToArray());
    }

    [Fact]
    public void Scalar_rows_make_a_rank_one_tensor()
    {
        var input = Assert.Single(Decode("""{"instances":[1.5,2,3]}""", VectorInput).Inputs);

        Assert.Equal("x", input.Name);
        Assert.Equal([3L], input.Shape.ToArray());
        Assert.Equal(LE.F32(1.5f, 2, 3), input.Data.ToArray());
    }

    [Fact]
    public void Rows_may_be_deeper_than_two_levels()
    {
        var input = Assert.Single(Decode("""{"instances":[[[1,2],[3,4],[5,6]],[[7,8],[9,10],[11,12]]]}""", OneInput).Inputs);

        Assert.Equal([2L, 3L, 2L], input.Shape.ToArray());
        Assert.Equal(LE.F32(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12), input.Data.ToArray());
    }

    [Fact]
    public void Object_rows_are_keyed_by_input_name_in_any_order()
    {
        var request = Decode("""
            {"instances":[
              {"features":[1,2],"bucket":7},
              {"bucket":8,"features":[3,4]}]}
            """, TwoInputs);

        Assert.Equal(["features", "bucket"], request.Inputs.Select(i => i.Name));
        var features = request.Inputs[0];
        Assert.Equal(TensorDataType.FP32, features.DataType);
        Assert.Equal([2L, 2L], features.Shape.ToArray());
        Assert.Equal(LE.F32(1, 2, 3, 4), features.Data.ToArray());
        var bucket = request.Inputs[1];
        Assert.Equal(TensorDataType.Int64, bucket.DataType);
        Assert.Equal([2L], bucket.Shape.ToArray());
        Assert.Equal(LE.I64(7, 8), bucket.Data.ToArray());
    }

    [Fact]
    public void Object_rows_work_for_a_one_input_model_too()
    {
        var input = Assert.Single(Decode("""{"instances":[{"input":[1,2]},{"input":[3,4]}]}""", OneInput).Inputs);

        Assert.Equal([2L, 2L], input.Shape.ToArray());
        Assert.Equal(LE.F32(1, 2, 3, 4), input.Data.ToArray());
    }

    [Fact]
    public void Columnar_inputs_carry_the_whole_tensor()
    {
        var input = Assert.Single(Decode("""{"inputs":[[1,2],[3,4],[5,6]]}""", OneInput).Inputs);

        Assert.Equal([3L, 2L], input.Shape.ToArray());
        Assert.Equal(LE.F32(1, 2, 3, 4, 5, 6), input.Data.ToArray());
    }

    [Fact]
    public void Columnar_inputs_object_is_keyed_by_input_name()
    {
        var request = Decode("""{"inputs":{"bucket":[5,6],"features":[[1,2],[3,4]]}}""", TwoInputs);

        var features = Assert.Single(request.Inputs, i => i.Name == "features");
        Assert.Equal([2L, 2L], features.Shape.ToArray());
        Assert.Equal(LE.F32(1, 2, 3, 4), features.Data.ToArray());
        var bucket = Assert.Single(request.Inputs, i => i.Name == "bucket");
        Assert.Equal([2L], bucket.Shape.ToArray());
        Assert.Equal(LE.I64(5, 6), bucket.Data.ToArray());
    }

    [Fact]
    public void Tf_serving_fields_like_signature_name_are_ignored()
    {
        var input = Assert.Single(Decode("""{"signature_name":"serving_default","instances":[[1,2]]}""", OneInput).Inputs);

        Assert.Equal([1L, 2L], input.Shape.ToArray());
    }

    [Fact]
    public void Empty_instances_is_invalid()
    {
        AssertV1Invalid("""{"instances":[]}""", OneInput, "'instances' is empty");
    }

    [Fact]
    public void Rows_of_different_shapes_are_invalid()
    {
        AssertV1Invalid("""{"instances":[[1,2],[3]]}""", OneInput, "'input'");
        AssertV1Invalid("""{"instances":[[1],[2,3]]}""", OneInput, "'input'");
    }

    [Fact]
    public void Object_rows_of_different_shapes_are_invalid_naming_the_row()
    {
        AssertV1Invalid("""{"instances":[{"features":[1,2],"bucket":1},{"features":[3],"bucket":2}]}""", TwoInputs, "instances[1]", "features");
    }

    [Fact]
    public void Unknown_input_name_in_a_row_is_invalid()
    {
        AssertV1Invalid("""{"instances":[{"features":[1,2],"bucket":1,"colour":3}]}""", TwoInputs, "unknown input 'colour'");
    }

    [Fact]
    public void Missing_input_in_a_row_is_invalid_naming_row_and_input()
    {
        AssertV1Invalid("""{"instances":[{"features":[1,2],"bucket":1},{"features":[3,4]}]}""", TwoInputs, "instances[1]", "'bucket'");
    }

    [Fact]
    public void Row_that_is_not_an_object_among_object_rows_is_invalid()
    {
        AssertV1Invalid("""{"instances":[{"features":[1,2],"bucket":1},[3,4]]}""", TwoInputs, "instances[1]");
    }

    [Fact]
    public void Plain_rows_for_a_model_with_two_inputs_are_invalid()
    {
        AssertV1Invalid("""{"instances":[[1,2],[3,4]]}""", TwoInputs, "2 inputs", "keyed by input name");
    }

    [Theory]
    [InlineData("""{"instances":[[1,2]],"inputs":[[1,2]]}""")]
    [InlineData("""{}""")]
    [InlineData("""{"predictions":[[1,2]]}""")]
    public void Exactly_one_of_instances_or_inputs_is_required(string json)
    {
        AssertV1Invalid(json, OneInput, "instances", "inputs");
    }

    [Theory]
    [InlineData("""{"instances":{"input":[1,2]}}""", false, "'instances' must be an array")]
    [InlineData("""{"inputs":{"nope":[1,2]}}""", true, "unknown input 'nope'")]
    [InlineData("""{"inputs":[[1,2]]}""", true, "keyed by input name")]
    [InlineData("""{"instances":[["a","b"]]}""", false, "found a string")]
    public void Other_bad_bodies_are_invalid(string json, bool twoInputs, string expected)
    {
        AssertV1Invalid(json, twoInputs ? TwoInputs : OneInput, expected);
    }

    [Theory]
    [InlineData("""{"instances":[[1,2]]""")]
    [InlineData("""{"instances":[[1,2]]} extra""")]
    [InlineData("""[[1,2]]""")]
    public void Malformed_or_non_object_bodies_are_invalid(string json)
    {
        AssertV1Invalid(json, OneInput);
    }

    private static Tensor T(string name, TensorDataType type, long[] shape, byte[] data) =>
        new(name, type, ImmutableArray.Create(shape), data);

    private static JsonElement Predictions(InferenceResponse response, long rows, out JsonDocument document)
    {
        document = Write(w => V1JsonCodec.WriteResponse(w, response, rows));
        Assert.Equal(["predictions"], document.RootElement.EnumerateObject().Select(p => p.Name));
        return document.RootElement.GetProperty("predictions");
    }

    [Fact]
    public void One_output_is_written_as_one_row_per_instance()
    {
        var response = new InferenceResponse("mlp", "1", "id", [T("output", TensorDataType.FP32, [2, 3], LE.F32(1, 2, 3, 4, 5, 6))]);

        var predictions = Predictions(response, 2, out var document);
        using (document)
        {
            Assert.Equal("[[1,2,3],[4,5,6]]", predictions.GetRawText());
        }
    }

    [Fact]
    public void Rank_one_output_is_written_as_scalars()
    {
        var response = new InferenceResponse("m", "1", "id", [T("label", TensorDataType.Int64, [3], LE.I64(2, 0, 1))]);

        var predictions = Predictions(response, 3, out var document);
        using (document)
        {
            Assert.Equal("[2,0,1]", predictions.GetRawText());
        }
    }

    [Fact]
    public void Rank_three_output_keeps_its_nesting_per_row()
    {
        var response = new InferenceResponse("m", "1", "id", [T("o", TensorDataType.Int32, [2, 1, 2], LE.I32(1, 2, 3, 4))]);

        var predictions = Predictions(response, 2, out var document);
        using (document)
        {
            Assert.Equal("[[[1,2]],[[3,4]]]", predictions.GetRawText());
        }
    }

    [Fact]
    public void Two_outputs_with_matching_rows_are_objects_keyed_by_output_name()
    {
        var response = new InferenceResponse("m", "1", "id",
        [
            T("probs", TensorDataType.FP32, [2, 2], LE.F32(0.25f, 0.75f, 1, 0)),
            T("label", TensorDataType.Int64, [2], LE.I64(1, 0)),
            T("name", TensorDataType.Bytes, [2], LE.Strings("cat", "dog")),
        ]);

        var predictions = Predictions(response, 2, out var document);
        using (document)
        {
            Assert.Equal(
                """[{"probs":[0.25,0.75],"label":1,"name":"cat"},{"probs":[1,0],"label":0,"name":"dog"}]""",
                predictions.GetRawText());
        }
    }

    [Fact]
    public void Outputs_whose_first_dimension_differs_from_the_rows_are_written_whole_in_one_object()
    {
        var response = new InferenceResponse("m", "1", "id",
        [
            T("per_row", TensorDataType.FP32, [2], LE.F32(1, 2)),
            T("summary", TensorDataType.FP32, [3], LE.F32(7, 8, 9)),
        ]);

        var predictions = Predictions(response, 2, out var document);
        using (document)
        {
            Assert.Equal("""[{"per_row":[1,2],"summary":[7,8,9]}]""", predictions.GetRawText());
        }
    }

    [Fact]
    public void Scalar_output_is_a_single_prediction()
    {
        var response = new InferenceResponse("m", "1", "id", [T("total", TensorDataType.FP64, [], LE.F64(2.5))]);

        var predictions = Predictions(response, 1, out var document);
        using (document)
        {
            Assert.Equal("[2.5]", predictions.GetRawText());
        }
    }

    [Fact]
    public void Decoded_v1_request_and_written_v1_response_agree_on_rows()
    {
        var input = Assert.Single(Decode("""{"instances":[[1,2],[3,4],[5,6]]}""", OneInput).Inputs);
        var echo = new InferenceResponse("mlp", "1", "id", [input.WithName("output")]);

        var predictions = Predictions(echo, input.Shape[0], out var document);
        using (document)
        {
            Assert.Equal("[[1,2],[3,4],[5,6]]", predictions.GetRawText());
        }
    }
}
