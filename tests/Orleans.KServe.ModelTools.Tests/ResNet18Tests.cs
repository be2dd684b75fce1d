using Microsoft.ML.OnnxRuntime;
using Orleans.KServe.ModelTools.Onnx;

namespace Orleans.KServe.ModelTools.Tests;

[Collection(GeneratedModelsCollection.Name)]
public sealed class ResNet18Tests(GeneratedModelsFixture models)
{
    private const string InputName = "Input247";
    private const string OutputName = "Pooling395_Output_0";
    private const int ImageSize = 3 * 224 * 224;
    private const int Features = 512;

    [Fact]
    public void RewrittenModelHasSymbolicBatchAndNoValueInfo()
    {
        var original = OnnxInspector.ReadFile(models.ResNet18Source);
        var rewritten = OnnxInspector.ReadFile(models.Sample(SampleModels.ResNet18Folder));

        Assert.Equal("Input247: tensor(float)[1,3,224,224]", Assert.Single(original.RealInputs).ToString());
        Assert.Equal("Pooling395_Output_0: tensor(float)[1,512,1,1]", Assert.Single(original.Outputs).ToString());
        Assert.True(original.ValueInfoCount > 0);

        Assert.Equal("Input247: tensor(float)[batch,3,224,224]", Assert.Single(rewritten.RealInputs).ToString());
        Assert.Equal("Pooling395_Output_0: tensor(float)[batch,512,1,1]", Assert.Single(rewritten.Outputs).ToString());
        Assert.Equal(0, rewritten.ValueInfoCount);

        // Everything else is carried over unchanged.
        Assert.Equal(original.IrVersion, rewritten.IrVersion);
        Assert.Equal(original.ProducerName, rewritten.ProducerName);
        Assert.Equal(original.Opsets, rewritten.Opsets);
        Assert.Equal(original.OpTypes, rewritten.OpTypes);
        Assert.Equal(original.InitializerNames, rewritten.InitializerNames);
        Assert.Equal(original.Inputs.Count, rewritten.Inputs.Count);
    }

    [Fact]
    public void BatchOfThreeEqualsThreeSingleRunsAndTheOriginalModel()
    {
        using var session = GeneratedModelsFixture.Open(models.Sample(SampleModels.ResNet18Folder));
        var input = session.InputMetadata[InputName];
        Assert.Equal([-1, 3, 224, 224], input.Dimensions);
        Assert.Equal("batch", input.SymbolicDimensions[0]);
        Assert.Equal([-1, Features, 1, 1], session.OutputMetadata[OutputName].Dimensions);

        const int batch = 3;
        var random = new Random(7);
        var images = new float[batch * ImageSize];
        for (var i = 0; i < images.Length; i++)
        {
            images[i] = (float)(random.NextDouble() * 255);
        }

        using var runOptions = new RunOptions();
        float[] batched;
        using (var value = OrtValue.CreateTensorValueFromMemory(images, [batch, 3, 224, 224]))
        using (var results = session.Run(runOptions, [InputName], [value], [OutputName]))
        {
            Assert.Equal([batch, Features, 1, 1], results[0].GetTensorTypeAndShape().Shape);
            batched = results[0].GetTensorDataAsSpan<float>().ToArray();
        }

        Assert.Contains(batched, f => f > 0);
        for (var b = 0; b < batch; b++)
        {
            var single = RunSingle(session, images.AsSpan(b * ImageSize, ImageSize).ToArray());
            AssertClose(single, batched.AsSpan(b * Features, Features), $"image {b} batched vs single");
        }

        // The packaged model (fixed batch 1, with value_info) gives the same features.
        using var original = GeneratedModelsFixture.Open(models.ResNet18Source);
        var first = images.AsSpan(0, ImageSize).ToArray();
        AssertClose(RunSingle(original, first), batched.AsSpan(0, Features), "original vs rewritten");
    }

    private static float[] RunSingle(InferenceSession session, float[] image)
    {
        using var runOptions = new RunOptions();
        using var value = OrtValue.CreateTensorValueFromMemory(image, [1, 3, 224, 224]);
        using var results = session.Run(runOptions, [InputName], [value], [OutputName]);
        Assert.Equal([1, Features, 1, 1], results[0].GetTensorTypeAndShape().Shape);
        return results[0].GetTensorDataAsSpan<float>().ToArray();
    }

    private static void AssertClose(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (var i = 0; i < expected.Length; i++)
        {
            var tolerance = 1e-4f * Math.Max(1f, Math.Abs(expected[i]));
            Assert.True(Math.Abs(expected[i] - actual[i]) <= tolerance, $"{what}: feature {i} {expected[i]} vs {actual[i]}");
        }
    }
}
