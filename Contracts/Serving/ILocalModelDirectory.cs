using System.Diagnostics.CodeAnalysis;
using Orleans.KServe.Contracts.Inference;
using Orleans.KServe.Contracts.Models;

namespace Orleans.KServe.Contracts.Serving;

/// <summary>
/// A model replica active on the caller's own silo, reachable without an Orleans message. The grain that owns it
/// still decides loading, placement and lifecycle; this is only the shortest way in for a co-hosted gateway.
/// </summary>
public interface ILocalModelEndpoint
{
    /// <summary>The replica's state.</summary>
    ModelStatus Status { get; }

    /// <summary>True while the replica serves requests.</summary>
    bool IsLoaded { get; }

    /// <summary>Runs one inference exactly as <c>IModelGrain.InferAsync</c> would.</summary>
    ValueTask<InferenceResponse> InferAsync(InferenceRequest request, CancellationToken cancellationToken = default);

    /// <summary>The metadata; throws 503 until loaded.</summary>
    ModelMetadata GetMetadata();

    /// <summary>The replica's statistics.</summary>
    ModelStatistics GetStatistics();

    /// <summary>The replica's configuration; throws 503 until loaded.</summary>
    ModelConfiguration GetConfiguration();
}

/// <summary>The replicas active on this silo, by grain key.</summary>
public interface ILocalModelDirectory
{
    /// <summary>The local replica for <paramref name="modelKey"/>, when one is active here.</summary>
    bool TryGet(string modelKey, [NotNullWhen(true)] out ILocalModelEndpoint? endpoint);
}
