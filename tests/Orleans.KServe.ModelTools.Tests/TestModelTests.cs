using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Orleans.KServe.ModelTools.Onnx;

namespace Orleans.KServe.ModelTools.Tests;

[Collection(GeneratedModelsCollection.Name)]
public sealed class TestModelTests(GeneratedModelsFixture models)
{
    public static TheoryData<string> Datatypes => new(TestModels.IdentityDatatypes.Select(d => d.KServeName));

    [Theory]
    [MemberData(nameof(Datatypes))]
    public void IdentityModelRoundTripsItsDatatype(string kserveName)
    {
        var datatype = TestModels.IdentityDatatypes.Single(d => d.KServeName == kserveName);
        var elementType = (TensorElementType)(int)datatype.ElementType;
        using var session = GeneratedModelsFixture.Open(models.TestModel(datatype.FolderName));
        var input = session.InputMetadata["input"];
        Assert.True(input.IsTensor);
        Assert.Equal(elementType, input.ElementDataType);
        Assert.Equal([-1, -1], input.Dimensions);
        Assert.Equal(["batch", "n"], input.SymbolicDimensions);
        Assert.Equal(elementType, session.OutputMetadata["output"].ElementDataType);
        Assert.Equal([-1, -1], session.OutputMetadata["output"].Dimensions);

        long[] shape = [2, 3];
        using var runOptions = new RunOptions();
        if (datatype.ElementType == OnnxDataType.String)
        {
            string[] strings = ["", "a", "héllo wörld", "日本語", "tab\tand\nnewline", new string('x', 1000)];
            using var value = OrtValue.CreateTensorWithEmptyStrings(OrtAllocator.DefaultInstance, shape);
            for (var i = 0; i < strings.Length; i++)
            {
                value.StringTensorSetElementAt(strings[i].AsSpan(), i);
            }

            using var results = session.Run(runOptions, ["input"], [value], ["output"]);
            Assert.Equal(shape, results[0].GetTensorTypeAndShape().Shape);
            Assert.Equal(strings, results[0].GetStringTensorAsArray());
        }
        else
        {
            using var value = OrtValue.CreateAllocatedTensorValue(OrtAllocator.DefaultInstance, elementType, shape);
            var bytes = value.GetTensorMutableRawData();
            Assert.Equal(6 * ElementSize(datatype.ElementType), bytes.Length);
            for (var i = 0; i < bytes.Length; i++)
            {
                bytes[i] = datatype.ElementType == OnnxDataType.Bool ? (byte)(i % 2) : (byte)((i * 37) + 11);
            }

            var sent = bytes.ToArray();
            using var results = session.Run(runOptions, ["input"], [value], ["output"]);
            var output = results[0];
            Assert.Equal(elementType, output.GetTensorTypeAndShape().ElementDataType);
            Assert.Equal(shape, output.GetTensorTypeAndShape().Shape);
            Assert.Equal(sent, output.GetTensorMutableRawData().ToArray());
        }
    }

    [Fact]
    public void EveryKServeDatatypeHasAnIdentityModel()
    {
        Assert.Equal(
            ["BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64", "FP16", "FP32", "FP64", "BYTES", "BF16"],
            TestModels.IdentityDatatypes.Select(d => d.KServeName));
        foreach (var datatype in TestModels.IdentityDatatypes)
        {
            Assert.True(File.Exists(models.TestModel(datatype.FolderName)), datatype.FolderName);
        }

        Assert.Equal("identity-bytes", TestModels.IdentityDatatypes.Single(d => d.ElementType == OnnxDataType.String).FolderName);
    }

    [Fact]
    public void ZipMapModelLoadsAndItsOutputIsNotATensor()
    {
        using var session = GeneratedModelsFixture.Open(models.TestModel(TestModels.ZipMapFolder));
        Assert.True(session.InputMetadata["input"].IsTensor);
        var output = session.OutputMetadata["output"];
        Assert.False(output.IsTensor);
        Assert.Equal(OnnxValueType.ONNX_TYPE_SEQUENCE, output.OnnxValueType);
        var element = output.AsSequenceMetadata().ElementMeta;
        Assert.Equal(OnnxValueType.ONNX_TYPE_MAP, element.OnnxValueType);
        Assert.Equal(TensorElementType.Int64, element.AsMapMetadata().KeyDataType);

        float[] scores = [0.25f, 0.75f, 1f, 2f];
        using var runOptions = new RunOptions();
        using var value = OrtValue.CreateTensorValueFromMemory(scores, [2, 2]);
        using var results = session.Run(runOptions, ["input"], [value], ["output"]);
        var sequence = results[0];
        Assert.Equal(OnnxValueType.ONNX_TYPE_SEQUENCE, sequence.OnnxType);
        Assert.Equal(2, sequence.GetValueCount());
        for (var row = 0; row < 2; row++)
        {
            using var map = sequence.GetValue(row, OrtAllocator.DefaultInstance);
            Assert.Equal(OnnxValueType.ONNX_TYPE_MAP, map.OnnxType);
            using var keys = map.GetValue(0, OrtAllocator.DefaultInstance);
            using var values = map.GetValue(1, OrtAllocator.DefaultInstance);
            Assert.Equal([0L, 1L], keys.GetTensorDataAsSpan<long>().ToArray());
            Assert.Equal(scores.AsSpan(row * 2, 2).ToArray(), values.GetTensorDataAsSpan<float>().ToArray());
        }
    }

    [Fact]
    public void ExternalDataModelFailsToLoadBecauseItsWeightsAreMissing()
    {
        var path = models.TestModel(TestModels.ExternalDataFolder);
        Assert.False(File.Exists(Path.Combine(Path.GetDirectoryName(path)!, TestModels.MissingWeightsFile)));
        var error = Assert.ThrowsAny<OnnxRuntimeException>(() => GeneratedModelsFixture.Open(path).Dispose());
        Assert.Contains(TestModels.MissingWeightsFile, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ExternalDataModelIsOtherwiseValid()
    {
        // With the weights file supplied, the same model loads and adds the stored weights.
        var folder = Path.Combine(models.Root, "external-data-with-weights");
        Directory.CreateDirectory(folder);
        var path = Path.Combine(folder, "model.onnx");
        File.Copy(models.TestModel(TestModels.ExternalDataFolder), path);
        float[] weights = [10f, 20f];
        File.WriteAllBytes(Path.Combine(folder, TestModels.MissingWeightsFile), OnnxTensor.ToLittleEndianBytes<float>(weights));

        using var session = GeneratedModelsFixture.Open(path);
        using var runOptions = new RunOptions();
        using var value = OrtValue.CreateTensorValueFromMemory(new[] { 1f, 2f, 3f, 4f }, [2, 2]);
        using var results = session.Run(runOptions, ["input"], [value], ["output"]);
        Assert.Equal([11f, 22f, 13f, 24f], results[0].GetTensorDataAsSpan<float>().ToArray());
    }

    private static int ElementSize(OnnxDataType type) => type switch
    {
        OnnxDataType.Bool or OnnxDataType.UInt8 or OnnxDataType.Int8 => 1,
        OnnxDataType.UInt16 or OnnxDataType.Int16 or OnnxDataType.Float16 or OnnxDataType.BFloat16 => 2,
        OnnxDataType.UInt32 or OnnxDataType.Int32 or OnnxDataType.Float => 4,
        OnnxDataType.UInt64 or OnnxDataType.Int64 or OnnxDataType.Double => 8,
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, null),
    };
}
