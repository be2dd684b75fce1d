using System.Collections.Immutable;

namespace Orleans.KServe.Contracts.Models;

/// <summary>
/// A model's serving configuration in the terms of Triton's model config (what the config endpoint reports),
/// filled from the real settings of the replica.
/// </summary>
[GenerateSerializer, Immutable]
[Alias("Orleans.KServe.Contracts.ModelConfiguration")]
public sealed record ModelConfiguration(
    [property: Id(0)] string Name,
    [property: Id(1)] string Platform,
    [property: Id(2)] string Backend,
    [property: Id(3)] int MaxBatchSize,
    [property: Id(4)] ImmutableArray<TensorMetadata> Inputs,
    [property: Id(5)] ImmutableArray<TensorMetadata> Outputs,
    [property: Id(6)] int InstanceCount,
    [property: Id(7)] ImmutableArray<string> Versions)
{
    /// <summary>The dynamic batching in effect; null when requests run one by one.</summary>
    [Id(8)] public BatchingSettings? Batching { get; init; }

    /// <summary>Why a model asked to batch does not (its batch dimension is fixed), when that is the case.</summary>
    [Id(9)] public string? BatchingNote { get; init; }
}
