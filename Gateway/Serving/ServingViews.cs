using System.Collections.Immutable;
using System.Reflection;
using Orleans.KServe.Contracts.Models;

namespace Orleans.KServe.Gateway.Serving;

/// <summary>What the server says about itself (<c>GET /v2</c>, gRPC <c>ServerMetadata</c>).</summary>
public static class ServerDescription
{
    /// <summary>The server name.</summary>
    public const string Name = "orleans-kserve";

    /// <summary>The server version: the informational version of the build.</summary>
    public static readonly string Version =
        typeof(ServerDescription).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? "0.0.0";

    /// <summary>The protocol extensions served.</summary>
    public static readonly IReadOnlyList<string> Extensions = ["model_repository", "model_configuration", "statistics", "binary_tensor_data"];
}

/// <summary>One tensor of a model's configuration: Triton leaves out the batch dimension when the model batches.</summary>
public sealed record ConfigTensor(string Name, TritonType DataType, ImmutableArray<long> Dims);

/// <summary>
/// A model's configuration in Triton's shape, the same for REST (<c>GET …/config</c>) and gRPC (<c>ModelConfig</c>):
/// each transport only writes it in its own encoding.
/// </summary>
public sealed record ModelConfigView(
    string Name,
    string Platform,
    string Backend,
    ModelVersionPolicy VersionPolicy,
    int MaxBatchSize,
    ImmutableArray<ConfigTensor> Inputs,
    ImmutableArray<ConfigTensor> Outputs,
    int InstanceCount,
    BatchingSettings? Batching,
    string? BatchingNote)
{
    /// <summary>Triton's instance group kind: every execution runs on CPU here.</summary>
    public const string InstanceKind = "KIND_CPU";

    /// <summary>What the queue does with a request past its timeout: refuse it (Triton's REJECT).</summary>
    public const string TimeoutAction = "REJECT";
}

/// <summary>One entry of the repository index (Triton's shape): a served version, its state and why.</summary>
public sealed record IndexEntry(string Name, string Version, string State, string Reason, bool Ready);

/// <summary>The views both transports answer with, as pure functions of what the routes and replicas report.</summary>
public static class ServingViews
{
    /// <summary>Triton's repository index state for a model state.</summary>
    public static string TritonState(ModelState state) => state switch
    {
        ModelState.Loaded => "READY",
        ModelState.Loading or ModelState.Pending => "LOADING",
        _ => "UNAVAILABLE",
    };

    /// <summary>The index's reason: the typed failure reason first when there is one (<c>ModelLoadFailed: …</c>).</summary>
    public static string IndexReason(ModelStatus status) =>
        status.FailureReason is { } kind ? $"{kind}: {status.Reason}" : status.Reason ?? "";

    /// <summary>An index entry of one route.</summary>
    public static IndexEntry Index(string name, string version, ModelStatus status) =>
        new(name, version, TritonState(status.State), IndexReason(status), status.State == ModelState.Loaded);

    /// <summary>The configuration view of a replica's configuration under the route's version policy.</summary>
    public static ModelConfigView Config(ModelConfiguration config, ModelVersionPolicy policy)
    {
        // Triton's convention: with max_batch_size > 0 the dims leave out the batch dimension (the replica already did).
        ImmutableArray<ConfigTensor> Tensors(ImmutableArray<TensorMetadata> tensors) =>
            tensors.Select(t => new ConfigTensor(t.Name, TritonTypes.Of(t.DataType), t.Shape)).ToImmutableArray();
        return new ModelConfigView(
            config.Name, config.Platform, config.Backend, policy, config.MaxBatchSize, Tensors(config.Inputs), Tensors(config.Outputs),
            config.InstanceCount, config.Batching, config.BatchingNote);
    }

    /// <summary>Why a model is not ready, for the readiness answer.</summary>
    public static string NotReady(ModelStatus status) => status.State switch
    {
        ModelState.FailedToLoad => $"not ready: it failed to load: {status.Reason}",
        ModelState.Unloaded => "unloaded",
        ModelState.Retired => "retired: a newer revision serves in its place",
        _ => "loading",
    };
}
