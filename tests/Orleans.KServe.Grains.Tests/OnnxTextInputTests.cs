using Orleans.KServe.Grains.Runtime.Onnx;
using Orleans.KServe.ModelTools;
using Orleans.KServe.ModelTools.Onnx;

namespace Orleans.KServe.Grains.Tests;

/// <summary>Which ONNX models read their BYTES inputs as UTF-8 text (and so refuse other bytes before the runtime sees them).</summary>
public sealed class OnnxTextInputTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("kserve-onnx-text-").FullName;

    private string Save(OnnxModel model, string name)
    {
        var path = Path.Combine(_folder, name, "model.onnx");
        model.Save(path);
        return path;
    }

    [Fact]
    public void A_model_that_normalizes_strings_reads_its_bytes_as_text()
    {
        using var runtime = OnnxModelRuntime.Open(Save(SampleModels.BuildUppercase(), "uppercase"), 1);
        Assert.True(runtime.BytesAreText);
    }

    [Fact]
    public void A_model_that_only_passes_strings_on_takes_any_bytes()
    {
        using var runtime = OnnxModelRuntime.Open(Save(TestModels.BuildIdentity(OnnxDataType.String), "identity"), 1);
        Assert.False(runtime.BytesAreText);
    }

    [Fact]
    public void A_model_without_string_inputs_has_no_text()
    {
        using var runtime = OnnxModelRuntime.Open(Save(DoubleModel.Build(), "double"), 1);
        Assert.False(runtime.BytesAreText);
    }

    public void Dispose() => Directory.Delete(_folder, recursive: true);
}
