using Orleans.KServe.ModelTools.Onnx;

namespace Orleans.KServe.ModelTools;

/// <summary>The models served by the samples (<c>generate samples</c>).</summary>
public static class SampleModels
{
    public const string DoubleFolder = "double";
    public const string MlpFolder = "mlp";
    public const string ResNet18Folder = "resnet18";
    public const string UppercaseFolder = "uppercase";

    /// <summary>
    /// A string model: <c>upper = StringNormalizer(text, UPPER)</c>, BYTES [n] to BYTES [n] (ONNX StringNormalizer
    /// takes one-dimensional input).
    /// </summary>
    public static OnnxModel BuildUppercase()
    {
        var model = new OnnxModel("uppercase");
        var graph = model.Graph;
        graph.AddInput("text", OnnxDataType.String, "n");
        // ONNX Runtime builds the locale "<locale>.UTF-8"; C.UTF-8 exists on every glibc system, en_US.UTF-8 not always.
        graph.Apply("StringNormalizer", "upper", ["text"], OnnxAttribute.String("case_change_action", "UPPER"), OnnxAttribute.String("locale", "C"));
        graph.AddOutput("upper", OnnxDataType.String, "n");
        return model;
    }

    /// <summary>
    /// Writes <c>double</c>, <c>mlp</c> and <c>resnet18</c> under <paramref name="outputDirectory"/>.
    /// <paramref name="resNet18Source"/> defaults to <see cref="ResNet18Model.FindSource"/>.
    /// </summary>
    public static void Generate(string outputDirectory, string? resNet18Source = null, TextWriter? log = null)
    {
        var source = resNet18Source ?? ResNet18Model.FindSource()
            ?? throw new FileNotFoundException($"{ResNet18Model.FileName} from NuGet package {ResNet18Model.PackageId} {ResNet18Model.PackageVersion} was not found; restore the ModelTools project or pass --resnet18 <path>.");
        if (!File.Exists(source))
        {
            throw new FileNotFoundException($"ResNet18 source model '{source}' does not exist.", source);
        }

        var doublePath = Path.Combine(outputDirectory, DoubleFolder, "model.onnx");
        DoubleModel.Build().Save(doublePath);
        log?.WriteLine($"wrote {doublePath}");

        var mlpPath = Path.Combine(outputDirectory, MlpFolder, "model.onnx");
        MlpModel.Build().Save(mlpPath);
        log?.WriteLine($"wrote {mlpPath}");

        // One identity model per datatype, in Triton's <version>/model.onnx layout, and a string model.
        foreach (var datatype in TestModels.IdentityDatatypes)
        {
            var identityPath = Path.Combine(outputDirectory, datatype.FolderName, "1", "model.onnx");
            TestModels.BuildIdentity(datatype.ElementType).Save(identityPath);
            log?.WriteLine($"wrote {identityPath}");
        }

        var uppercasePath = Path.Combine(outputDirectory, UppercaseFolder, "model.onnx");
        BuildUppercase().Save(uppercasePath);
        log?.WriteLine($"wrote {uppercasePath}");

        var resNetPath = Path.Combine(outputDirectory, ResNet18Folder, "model.onnx");
        var result = ResNet18Model.Generate(source, resNetPath);
        log?.WriteLine($"wrote {resNetPath} (from {source}; batch made symbolic on inputs [{string.Join(", ", result.RewrittenInputs)}] and outputs [{string.Join(", ", result.RewrittenOutputs)}]; removed {result.RemovedValueInfoCount} value_info entries)");
    }
}
