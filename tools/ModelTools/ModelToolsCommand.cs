using Orleans.KServe.ModelTools.Onnx;

namespace Orleans.KServe.ModelTools;

/// <summary>Command-line entry point, separate from <c>Main</c> so tests can call it.</summary>
public static class ModelToolsCommand
{
    public const string Usage = """
        Usage:
          Orleans.KServe.ModelTools generate samples --out <dir> [--resnet18 <ResNet18.onnx>]
              writes <dir>/double, <dir>/mlp and <dir>/resnet18 (each model.onnx)
          Orleans.KServe.ModelTools generate test --out <dir>
              writes <dir>/zipmap, <dir>/external-data and <dir>/identity-<datatype> models
          Orleans.KServe.ModelTools inspect <model.onnx>
              prints the model's inputs, outputs, opsets and operators
        """;

    public static int Run(string[] args, TextWriter stdout, TextWriter stderr)
    {
        try
        {
            return args switch
            {
                ["generate", "samples", .. var rest] => GenerateSamples(rest, stdout, stderr),
                ["generate", "test", .. var rest] => GenerateTest(rest, stdout, stderr),
                ["inspect", var path] => Inspect(path, stdout),
                ["--help" or "-h" or "help"] => Help(stdout),
                _ => UsageError(stderr, args.Length == 0 ? "No command given." : $"Unknown command '{string.Join(' ', args)}'."),
            };
        }
        catch (Exception e) when (e is IOException or InvalidDataException or UnauthorizedAccessException or ArgumentException)
        {
            stderr.WriteLine($"error: {e.Message}");
            return 1;
        }
    }

    private static int GenerateSamples(string[] options, TextWriter stdout, TextWriter stderr)
    {
        if (!TryParseOptions(options, ["--out", "--resnet18"], stderr, out var values))
        {
            return 2;
        }

        if (!values.TryGetValue("--out", out var output))
        {
            return UsageError(stderr, "generate samples needs --out <dir>.");
        }

        values.TryGetValue("--resnet18", out var resNet18);
        SampleModels.Generate(output, resNet18, stdout);
        return 0;
    }

    private static int GenerateTest(string[] options, TextWriter stdout, TextWriter stderr)
    {
        if (!TryParseOptions(options, ["--out"], stderr, out var values))
        {
            return 2;
        }

        if (!values.TryGetValue("--out", out var output))
        {
            return UsageError(stderr, "generate test needs --out <dir>.");
        }

        TestModels.Generate(output, stdout);
        return 0;
    }

    private static int Inspect(string path, TextWriter stdout)
    {
        stdout.Write(OnnxInspector.Describe(OnnxInspector.ReadFile(path)));
        return 0;
    }

    private static int Help(TextWriter stdout)
    {
        stdout.WriteLine(Usage);
        return 0;
    }

    private static int UsageError(TextWriter stderr, string message)
    {
        stderr.WriteLine($"error: {message}");
        stderr.WriteLine(Usage);
        return 2;
    }

    private static bool TryParseOptions(string[] options, string[] known, TextWriter stderr, out Dictionary<string, string> values)
    {
        values = new Dictionary<string, string>(StringComparer.Ordinal);
        for (var i = 0; i < options.Length; i++)
        {
            var name = options[i];
            if (!known.Contains(name, StringComparer.Ordinal))
            {
                UsageError(stderr, $"Unknown option '{name}'.");
                return false;
            }

            if (i + 1 >= options.Length)
            {
                UsageError(stderr, $"Option '{name}' needs a value.");
                return false;
            }

            values[name] = options[++i];
        }

        return true;
    }
}
