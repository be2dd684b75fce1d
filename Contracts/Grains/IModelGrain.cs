using Orleans.KServe.Contracts.Inference;
using Orleans.KServe.Contracts.Models;

namespace Orleans.KServe.Contracts.Grains;

/// <summary>
/// One replica of one model revision, keyed <c>namespace/service/revision/replica</c> (<see cref="ModelKey"/>).
/// Loads its artifact in the background on activation, then serves many inference calls at once.
/// </summary>
[Alias("Orleans.KServe.Contracts.IModelGrain")]
public interface IModelGrain : IGrainWithStringKey
{
    /// <summary>Runs one inference. Fails with <see cref="InferenceException"/> naming what is wrong.</summary>
    [Alias("infer")]
    ValueTask<InferenceResponse> InferAsync(InferenceRequest request, CancellationToken cancellationToken = default);

    /// <summary>The model's inputs and outputs; fails with 503 while loading.</summary>
    [Alias("metadata")]
    ValueTask<ModelMetadata> GetMetadataAsync();

    /// <summary>The replica's configuration (Triton's model config); 503 until loaded.</summary>
    [Alias("config")]
    ValueTask<ModelConfiguration> GetConfigurationAsync();

    /// <summary>The replica's statistics (Triton's statistics extension).</summary>
    [Alias("statistics")]
    ValueTask<ModelStatistics> GetStatisticsAsync();

    /// <summary>Stops serving and frees the runtime; the replica reports Unloaded until a new revision replaces it.</summary>
    [Alias("unload")]
    Task UnloadAsync();

    /// <summary>The replica's state; activates the grain (and so starts loading) when it is not active.</summary>
    [Alias("status")]
    ValueTask<ModelStatus> GetStatusAsync();

    /// <summary>
    /// Answers once the replica has settled (loaded, failed, unloaded or retired) or after <paramref name="maxWait"/>,
    /// with its state then; activates the grain when it is not active.
    /// </summary>
    [Alias("settled")]
    Task<ModelStatus> WaitUntilSettledAsync(TimeSpan maxWait);

    /// <summary>
    /// Retires the replica once a newer revision serves in its place: calls that reach it from now on are answered
    /// <see cref="Inference.InferenceErrorKind.Retired"/> (gateways route them again), calls already in progress
    /// finish, then the runtime is freed and the grain deactivates. Answers when the calls in progress have finished
    /// or after <paramref name="drain"/>, whichever is first; the runtime is freed only once they have.
    /// </summary>
    [Alias("retire")]
    Task<ModelStatus> RetireAsync(TimeSpan drain);
}
