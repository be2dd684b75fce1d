using Microsoft.ML.OnnxRuntime;

namespace Orleans.KServe.ModelTools.Tests;

/// <summary>
/// Runs the tool's <c>generate samples</c> and <c>generate test</c> commands once into a
/// temporary folder that is deleted when the test collection finishes.
/// </summary>
public sealed class GeneratedModelsFixture : IDisposable
{
    public GeneratedModelsFixture()
    {
        Root = Path.Combine(Path.GetTempPath(), $"kserve-modeltools-{Guid.NewGuid():N}");
        SamplesDirectory = Path.Combine(Root, "samples");
        TestDirectory = Path.Combine(Root, "test");
        ResNet18Source = ResNet18Model.FindSource()
            ?? throw new InvalidOperationException("ResNet18.onnx was not found; restore tools/ModelTools first.");

        var output = new StringWriter();
        var errors = new StringWriter();
        var code = ModelToolsCommand.Run(["generate", "samples", "--out", SamplesDirectory], output, errors);
        if (code != 0)
        {
            throw new InvalidOperationException($"generate samples failed ({code}): {errors}");
        }

        code = ModelToolsCommand.Run(["generate", "test", "--out", TestDirectory], output, errors);
        if (code != 0)
        {
            throw new InvalidOperationException($"generate test failed ({code}): {errors}");
        }

        Log = output.ToString();
    }

    public string Root { get; }

    public string SamplesDirectory { get; }

    public string TestDirectory { get; }

    public string ResNet18Source { get; }

    /// <summary>What the generator printed.</summary>
    public string Log { get; }

    public string Sample(string folder) => Path.Combine(SamplesDirectory, folder, "model.onnx");

    public string TestModel(string folder) => Path.Combine(TestDirectory, folder, "model.onnx");

    public static InferenceSession Open(string path)
    {
        using var options = new SessionOptions { LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_ERROR };
        return new InferenceSession(path, options);
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Root, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

[CollectionDefinition(Name)]
public sealed class GeneratedModelsCollection : ICollectionFixture<GeneratedModelsFixture>
{
    public const string Name = "Generated models";
}
