using Microsoft.Extensions.Options;

namespace Orleans.KServe.Grains;

/// <summary>
/// The model-serving settings of a silo, bound from the <c>KServe</c> configuration section
/// (<c>--executor-threads 4</c>, <c>KServe__ExecutorThreads=4</c>).
/// </summary>
public sealed class ModelServingOptions
{
    /// <summary>Dedicated model-execution threads; 0 = one per core.</summary>
    public int ExecutorThreads { get; set; }

    /// <summary>The command-line switch of each setting, and the property it sets.</summary>
    public static IReadOnlyDictionary<string, string> Switches { get; } = new Dictionary<string, string>
    {
        ["--executor-threads"] = nameof(ExecutorThreads),
    };
}

/// <summary>Reports every invalid model-serving setting at once, each by its switch.</summary>
public sealed class ModelServingOptionsValidator : IValidateOptions<ModelServingOptions>
{
    /// <inheritdoc />
    public ValidateOptionsResult Validate(string? name, ModelServingOptions options) =>
        options.ExecutorThreads is < 0 or > 1024
            ? ValidateOptionsResult.Fail($"--executor-threads must be between 0 (one per core) and 1024, not {options.ExecutorThreads}")
            : ValidateOptionsResult.Success;
}
