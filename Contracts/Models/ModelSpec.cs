using System.Collections.Immutable;

namespace Orleans.KServe.Contracts.Models;

/// <summary>
/// Everything a model grain needs to load one revision: the served name, the format and runtime chosen for it,
/// the storage URI of its artifact (resolved to local files by the silo that loads it) and the runtime settings.
/// Produced by the operator's reconcile from an InferenceService; immutable.
/// </summary>
[GenerateSerializer, Immutable]
[Alias("Orleans.KServe.Contracts.ModelSpec")]
public sealed record ModelSpec(
    [property: Id(0)] string Name,
    [property: Id(1)] string Format,
    [property: Id(2)] string Runtime,
    [property: Id(3)] string StorageUri,
    [property: Id(4)] ModelRuntimeSettings Settings)
{
    /// <summary>The model format's version, when the resource named one.</summary>
    [Id(5)] public string? FormatVersion { get; init; }

    /// <summary>The model version served (Triton's numeric version folder, or "1").</summary>
    [Id(6)] public string Version { get; init; } = "1";

    /// <summary>Value equality that compares the settings' contents (records compare dictionaries by reference).</summary>
    public bool SameAs(ModelSpec? other) =>
        other is not null
        && Name == other.Name && Format == other.Format && Runtime == other.Runtime && StorageUri == other.StorageUri
        && FormatVersion == other.FormatVersion && Version == other.Version && Settings.SameAs(other.Settings);
}

/// <summary>Runtime settings of a model, from <c>orleans.kserve.io/*</c> annotations or runtime defaults.</summary>
[GenerateSerializer, Immutable]
[Alias("Orleans.KServe.Contracts.ModelRuntimeSettings")]
public sealed record ModelRuntimeSettings
{
    /// <summary>Threads one execution may use inside the runtime (ONNX Runtime intra-op threads); 0 = derive from the cores.</summary>
    [Id(0)] public int IntraOpThreads { get; init; }

    /// <summary>Dynamic batching; null = requests run one by one.</summary>
    [Id(2)] public BatchingSettings? Batching { get; init; }

    /// <summary>Extra runtime-specific settings, by annotation name.</summary>
    [Id(1)] public ImmutableDictionary<string, string> Extra { get; init; } = ImmutableDictionary<string, string>.Empty;

    /// <summary>The defaults.</summary>
    public static ModelRuntimeSettings Default { get; } = new();

    /// <summary>Value equality including the contents of <see cref="Extra"/>.</summary>
    public bool SameAs(ModelRuntimeSettings other) =>
        IntraOpThreads == other.IntraOpThreads
        && (Batching is null ? other.Batching is null : Batching.SameAs(other.Batching))
        && Extra.Count == other.Extra.Count
        && Extra.All(pair => other.Extra.TryGetValue(pair.Key, out var value) && value == pair.Value);
}
