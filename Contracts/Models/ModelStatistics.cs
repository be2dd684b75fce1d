using System.Collections.Immutable;

namespace Orleans.KServe.Contracts.Models;

/// <summary>A count and the cumulative time of what it counts (Triton's StatisticDuration).</summary>
[GenerateSerializer, Immutable]
[Alias("Orleans.KServe.Contracts.StatisticDuration")]
public readonly record struct StatisticDuration(
    [property: Id(0)] long Count,
    [property: Id(1)] long Nanoseconds);

/// <summary>Per batch size execution statistics (Triton's InferBatchStatistics).</summary>
[GenerateSerializer, Immutable]
[Alias("Orleans.KServe.Contracts.BatchStatistics")]
public sealed record BatchStatistics(
    [property: Id(0)] long BatchSize,
    [property: Id(1)] StatisticDuration ComputeInput,
    [property: Id(2)] StatisticDuration ComputeInfer,
    [property: Id(3)] StatisticDuration ComputeOutput);

/// <summary>
/// Statistics of one model version, in the shape of Triton's statistics extension: request outcomes, where the
/// time went (queue, input preparation, inference, output), inferences vs executions and per-batch-size figures.
/// </summary>
[GenerateSerializer, Immutable]
[Alias("Orleans.KServe.Contracts.ModelStatistics")]
public sealed record ModelStatistics(
    [property: Id(0)] string Name,
    [property: Id(1)] string Version,
    [property: Id(2)] long LastInferenceMilliseconds,
    [property: Id(3)] long InferenceCount,
    [property: Id(4)] long ExecutionCount,
    [property: Id(5)] StatisticDuration Success,
    [property: Id(6)] StatisticDuration Fail,
    [property: Id(7)] StatisticDuration Queue,
    [property: Id(8)] StatisticDuration ComputeInput,
    [property: Id(9)] StatisticDuration ComputeInfer,
    [property: Id(10)] StatisticDuration ComputeOutput,
    [property: Id(11)] ImmutableArray<BatchStatistics> Batches);
