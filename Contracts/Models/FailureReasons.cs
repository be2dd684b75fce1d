namespace Orleans.KServe.Contracts.Models;

/// <summary>
/// Why a model is not served: the one list the reconciler, the status, the repository index and the logs use.
/// KServe's own <c>FailureReason</c> names where it has them (serving.kserve.io's
/// <c>modelStatus.lastFailureInfo.reason</c>), ours where it has none.
/// </summary>
public static class FailureReasons
{
    /// <summary>KServe: the model failed to load within its runtime.</summary>
    public const string ModelLoadFailed = nameof(ModelLoadFailed);

    /// <summary>KServe: the runtime that would serve the model is not healthy.</summary>
    public const string RuntimeUnhealthy = nameof(RuntimeUnhealthy);

    /// <summary>KServe: the runtime named is disabled.</summary>
    public const string RuntimeDisabled = nameof(RuntimeDisabled);

    /// <summary>KServe: no runtime supports the model's format and protocol.</summary>
    public const string NoSupportingRuntime = nameof(NoSupportingRuntime);

    /// <summary>KServe: no runtime of the name given exists.</summary>
    public const string RuntimeNotRecognized = nameof(RuntimeNotRecognized);

    /// <summary>KServe: the predictor spec is invalid or unsupported.</summary>
    public const string InvalidPredictorSpec = nameof(InvalidPredictorSpec);

    /// <summary>Ours: the resource does not parse, or is declared twice.</summary>
    public const string InvalidSpec = nameof(InvalidSpec);

    /// <summary>Ours: the storage URI's scheme is not one this server reads.</summary>
    public const string StorageUriNotSupported = nameof(StorageUriNotSupported);

    /// <summary>Ours: the storage holds no artifact where the URI points (or not the versions asked for).</summary>
    public const string ModelArtifactNotFound = nameof(ModelArtifactNotFound);

    /// <summary>Every reason, KServe's first.</summary>
    public static IReadOnlyList<string> All { get; } =
    [
        ModelLoadFailed, RuntimeUnhealthy, RuntimeDisabled, NoSupportingRuntime, RuntimeNotRecognized, InvalidPredictorSpec,
        InvalidSpec, StorageUriNotSupported, ModelArtifactNotFound,
    ];
}
