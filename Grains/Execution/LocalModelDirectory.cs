using System.Collections.Concurrent;
using System.Diagnostics.CodeAnalysis;
using Orleans.KServe.Contracts.Serving;

namespace Orleans.KServe.Grains.Execution;

/// <summary>
/// The model replicas active on this silo, by grain key. Model grains register on activation and leave on
/// deactivation; a gateway co-hosted in the silo looks here first to hand a request straight to a local replica.
/// </summary>
public sealed class LocalModelDirectory : ILocalModelDirectory
{
    private readonly ConcurrentDictionary<string, ModelReplica> _replicas = new(StringComparer.Ordinal);

    /// <summary>Registers an active replica.</summary>
    public void Register(string key, ModelReplica replica) => _replicas[key] = replica;

    /// <summary>Removes <paramref name="replica"/> if it is still the one registered under <paramref name="key"/>.</summary>
    public void Unregister(string key, ModelReplica replica) =>
        _replicas.TryRemove(new KeyValuePair<string, ModelReplica>(key, replica));

    /// <summary>The local replica for <paramref name="key"/>, when one is active here.</summary>
    public bool TryGet(string key, [NotNullWhen(true)] out ModelReplica? replica) => _replicas.TryGetValue(key, out replica);

    /// <inheritdoc />
    bool ILocalModelDirectory.TryGet(string modelKey, [NotNullWhen(true)] out ILocalModelEndpoint? endpoint)
    {
        var found = _replicas.TryGetValue(modelKey, out var replica);
        endpoint = replica;
        return found;
    }
}
