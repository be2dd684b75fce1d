using System.Collections.Immutable;
using Orleans.KServe.Contracts.Grains;
using Orleans.KServe.Contracts.Models;

namespace Orleans.KServe.Gateway.Routing;

/// <summary>The replicas that serve one revision: grain keys and references, in replica order.</summary>
public sealed record ReplicaSet(ImmutableArray<string> Keys, ImmutableArray<IModelGrain> Grains);

/// <summary>One revision a route sends traffic to, with its share of it (percent) and its replicas.</summary>
public sealed record RevisionRoute(int Revision, int Weight, ReplicaSet Replicas);

/// <summary>
/// One version of a served model as the gateway caches it: (namespace, name, version) → revisions with weights →
/// replica set. For now a route holds one revision at weight 100 and sends every call to its first replica; the
/// replica and canary work fill the rest in.
/// </summary>
public sealed class ModelRoute
{
    internal ModelRoute(ServiceEntry entry, ModelSpec? spec, IGrainFactory grains)
    {
        Entry = entry;
        Version = spec?.Version ?? "1";
        if (spec is null)
        {
            Revisions = ImmutableArray<RevisionRoute>.Empty;
            return;
        }

        var keys = Enumerable.Range(0, Math.Max(1, entry.Replicas)).Select(r => entry.ReplicaKey(r, spec.Version).ToString()).ToImmutableArray();
        var replicas = new ReplicaSet(keys, keys.Select(k => grains.GetGrain<IModelGrain>(k)).ToImmutableArray());
        Revisions = [new RevisionRoute(entry.Revision, 100, replicas)];
        GrainKey = replicas.Keys[0];
        Grain = replicas.Grains[0];
    }

    /// <summary>The registry entry.</summary>
    public ServiceEntry Entry { get; }

    /// <summary>The namespace the model is declared in.</summary>
    public string Namespace => Entry.Namespace;

    /// <summary>The served model name.</summary>
    public string Name => Entry.Name;

    /// <summary>The version this route serves.</summary>
    public string Version { get; }

    /// <summary>The revisions this route sends traffic to, with their weights (empty when the model cannot be served).</summary>
    public ImmutableArray<RevisionRoute> Revisions { get; }

    /// <summary>Every version of the model served, newest first.</summary>
    public IEnumerable<string> AllVersions => Entry.AllVersions.IsEmpty ? [Version] : Entry.AllVersions.Select(v => v.Version);

    /// <summary>The grain key of the replica calls go to, when the model can be served.</summary>
    public string? GrainKey { get; }

    /// <summary>The replica grain calls go to (cached reference), when the model can be served.</summary>
    public IModelGrain? Grain { get; }

    /// <summary>Metadata cached once the model has loaded.</summary>
    internal ModelMetadata? Metadata { get; set; }
}
