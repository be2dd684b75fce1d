using Microsoft.Extensions.Options;

namespace Orleans.KServe.Operator.Hosting;

/// <summary>
/// Where the server reads its KServe resources from, bound from the <c>KServe</c> configuration section
/// (<c>--model-repository ./models</c>, <c>KServe__ModelRepository=./models</c>).
/// </summary>
public sealed class ModelRepositoryOptions
{
    /// <summary>Folder of KServe YAML to serve. Default: the repository's <c>samples/</c>.</summary>
    public string? ModelRepository { get; set; }

    /// <summary>The folder in effect: the setting, else the default found from <see cref="AppContext.BaseDirectory"/>.</summary>
    public string? EffectiveModelRepository => ModelRepository ?? FindDefaultRepository(AppContext.BaseDirectory);

    /// <summary>The command-line switch of each setting, and the property it sets.</summary>
    public static IReadOnlyDictionary<string, string> Switches { get; } = new Dictionary<string, string>
    {
        ["--model-repository"] = nameof(ModelRepository),
    };

    /// <summary>
    /// The default model repository: <c>samples/</c> beside the app (a published image), else the nearest
    /// <c>samples/</c> in a folder above it that holds the solution (a build output inside the repository).
    /// </summary>
    public static string? FindDefaultRepository(string baseDirectory)
    {
        var beside = Path.Combine(baseDirectory, "samples");
        if (Directory.Exists(beside))
        {
            return beside;
        }

        for (var dir = new DirectoryInfo(baseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Orleans.KServe.sln")) && Directory.Exists(Path.Combine(dir.FullName, "samples")))
            {
                return Path.Combine(dir.FullName, "samples");
            }
        }

        return null;
    }
}

/// <summary>Reports every invalid repository setting at once, each by its switch.</summary>
public sealed class ModelRepositoryOptionsValidator : IValidateOptions<ModelRepositoryOptions>
{
    /// <inheritdoc />
    public ValidateOptionsResult Validate(string? name, ModelRepositoryOptions options)
    {
        var folder = options.EffectiveModelRepository;
        if (folder is null)
        {
            return ValidateOptionsResult.Fail("--model-repository was not given and no samples/ folder was found next to the server or above it");
        }

        return Directory.Exists(folder) ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail($"--model-repository '{folder}' is not a folder");
    }
}
