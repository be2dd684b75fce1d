using Orleans.KServe.ModelTools.Onnx;

namespace Orleans.KServe.ModelTools;

/// <summary>A KServe v2 datatype and the ONNX element type that carries it.</summary>
public sealed record IdentityDatatype(string KServeName, OnnxDataType ElementType)
{
    /// <summary>Folder under the test model root, e.g. <c>identity-fp32</c>.</summary>
    public string FolderName => $"identity-{KServeName.ToLowerInvariant()}";
}

/// <summary>Models for failure and datatype tests (<c>generate test</c>).</summary>
public static class TestModels
{
    public const string ZipMapFolder = "zipmap";
    public const string ExternalDataFolder = "external-data";
    public const string MissingWeightsFile = "weights.bin";

    /// <summary>
    /// Every KServe datatype ONNX Runtime's CPU Identity kernel handles (BF16 included: it is
    /// registered for opset 14+). KServe's BYTES maps to ONNX STRING.
    /// </summary>
    public static IReadOnlyList<IdentityDatatype> IdentityDatatypes { get; } =
    [
        new("BOOL", OnnxDataType.Bool),
        new("UINT8", OnnxDataType.UInt8),
        new("UINT16", OnnxDataType.UInt16),
        new("UINT32", OnnxDataType.UInt32),
        new("UINT64", OnnxDataType.UInt64),
        new("INT8", OnnxDataType.Int8),
        new("INT16", OnnxDataType.Int16),
        new("INT32", OnnxDataType.Int32),
        new("INT64", OnnxDataType.Int64),
        new("FP16", OnnxDataType.Float16),
        new("FP32", OnnxDataType.Float),
        new("FP64", OnnxDataType.Double),
        new("BYTES", OnnxDataType.String),
        new("BF16", OnnxDataType.BFloat16),
    ];

    /// <summary><c>output = Identity(input)</c> with shape [batch, n] (both dims symbolic).</summary>
    public static OnnxModel BuildIdentity(OnnxDataType elementType)
    {
        var model = new OnnxModel($"identity_{elementType.ToString().ToLowerInvariant()}");
        var graph = model.Graph;
        graph.AddInput("input", elementType, "batch", "n");
        graph.Apply("Identity", "output", ["input"]);
        graph.AddOutput("output", elementType, "batch", "n");
        return model;
    }

    /// <summary>
    /// A valid classifier-style model whose only output is not a tensor: ai.onnx.ml ZipMap turns
    /// FP32 [batch, 2] scores into seq(map(int64, float)).
    /// </summary>
    public static OnnxModel BuildZipMap()
    {
        var model = new OnnxModel("zipmap");
        model.ImportOpset(OnnxModel.MlDomain, 3);
        var graph = model.Graph;
        graph.AddInput("input", OnnxDataType.Float, "batch", 2);
        graph.AddNode("ZipMap", ["input"], ["output"], domain: OnnxModel.MlDomain, attributes: OnnxAttribute.Ints("classlabels_int64s", 0, 1));
        graph.AddOutput("output", OnnxType.Sequence(OnnxType.Map(OnnxDataType.Int64, OnnxType.TensorOfUnknownShape(OnnxDataType.Float))));
        return model;
    }

    /// <summary>
    /// <c>output = input + weight</c> where <c>weight</c> (FP32 [2]) is stored in
    /// <see cref="MissingWeightsFile"/>, which is never written: loading must fail.
    /// </summary>
    public static OnnxModel BuildExternalData()
    {
        var model = new OnnxModel("external_data");
        var graph = model.Graph;
        graph.AddInput("input", OnnxDataType.Float, "batch", 2);
        var weight = graph.AddInitializer(OnnxTensor.External("weight", OnnxDataType.Float, [2], MissingWeightsFile, offset: 0, length: 2 * sizeof(float)));
        graph.Apply("Add", "output", ["input", weight]);
        graph.AddOutput("output", OnnxDataType.Float, "batch", 2);
        return model;
    }

    public static void Generate(string outputDirectory, TextWriter? log = null)
    {
        Write(outputDirectory, ZipMapFolder, BuildZipMap(), log);
        var external = BuildExternalData();
        Write(outputDirectory, ExternalDataFolder, external, log);
        var stale = Path.Combine(outputDirectory, ExternalDataFolder, MissingWeightsFile);
        if (File.Exists(stale))
        {
            File.Delete(stale);
        }

        foreach (var datatype in IdentityDatatypes)
        {
            Write(outputDirectory, datatype.FolderName, BuildIdentity(datatype.ElementType), log);
        }
    }

    private static void Write(string root, string folder, OnnxModel model, TextWriter? log)
    {
        var path = Path.Combine(root, folder, "model.onnx");
        model.Save(path);
        log?.WriteLine($"wrote {path}");
    }
}
