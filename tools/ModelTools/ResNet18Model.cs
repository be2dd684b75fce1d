using System.Reflection;
using Orleans.KServe.ModelTools.Onnx;

namespace Orleans.KServe.ModelTools;

/// <summary>
/// The ResNet18 featurizer shipped in the <c>Microsoft.ML.DnnImageFeaturizer.ResNet18</c>
/// NuGet package, rewritten to accept any batch size (see <see cref="OnnxBatchRewriter"/>).
/// </summary>
public static class ResNet18Model
{
    public const string PackageId = "Microsoft.ML.DnnImageFeaturizer.ResNet18";
    public const string PackageVersion = "0.23.1";
    public const string FileName = "ResNet18.onnx";

    /// <summary>Where the file sits inside the package.</summary>
    public const string PathInPackage = "tools/DnnImageModels/ResNet18Onnx/" + FileName;

    /// <summary>
    /// Locates <c>ResNet18.onnx</c>: the path the build recorded in this assembly, then the
    /// NuGet package folders (<c>NUGET_PACKAGES</c>, <c>~/.nuget/packages</c>). Null if absent.
    /// </summary>
    public static string? FindSource()
    {
        var recorded = typeof(ResNet18Model).Assembly
            .GetCustomAttributes<AssemblyMetadataAttribute>()
            .FirstOrDefault(a => a.Key == "ResNet18OnnxPath")?.Value;
        if (!string.IsNullOrEmpty(recorded) && File.Exists(recorded))
        {
            return recorded;
        }

        var roots = new List<string>();
        if (Environment.GetEnvironmentVariable("NUGET_PACKAGES") is { Length: > 0 } packages)
        {
            roots.Add(packages);
        }

        var home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        if (home.Length > 0)
        {
            roots.Add(Path.Combine(home, ".nuget", "packages"));
        }

        foreach (var root in roots)
        {
            var packageFolder = Path.Combine(root, PackageId.ToLowerInvariant(), PackageVersion);
            var expected = Path.Combine(packageFolder, PathInPackage);
            if (File.Exists(expected))
            {
                return expected;
            }

            if (Directory.Exists(packageFolder))
            {
                var found = Directory.EnumerateFiles(packageFolder, FileName, SearchOption.AllDirectories).FirstOrDefault();
                if (found is not null)
                {
                    return found;
                }
            }
        }

        return null;
    }

    /// <summary>Reads the packaged model and makes its batch dimension symbolic ("batch").</summary>
    public static BatchRewriteResult Rewrite(string sourcePath) =>
        OnnxBatchRewriter.MakeBatchDynamic(File.ReadAllBytes(sourcePath), "batch");

    /// <summary>Rewrites <paramref name="sourcePath"/> into <paramref name="outputPath"/> (atomically).</summary>
    public static BatchRewriteResult Generate(string sourcePath, string outputPath)
    {
        var result = Rewrite(sourcePath);
        ModelFile.WriteAtomically(outputPath, result.Model);
        return result;
    }
}
