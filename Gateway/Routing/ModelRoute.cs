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
/// replica set. A route holds one revision at weight 100; with several replicas the router picks one per call
/// (<see cref="ModelRouter"/>), the canary work fills in weights.
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
        if (keys.Length > 1)
        {
            Outstanding = new int[keys.Length];
            var views = new ModelRoute[keys.Length];
            views[0] = this;
            for (var r = 1; r < views.Length; r++)
            {
                views[r] = new ModelRoute(this, r);
            }

            Views = views;
        }
    }

    // One replica of a route of several: the same model, revision and counters, another grain.
    private ModelRoute(ModelRoute first, int replica)
    {
        Entry = first.Entry;
        Version = first.Version;
        Revisions = first.Revisions;
        GrainKey = first.Revisions[0].Replicas.Keys[replica];
        Grain = first.Revisions[0].Replicas.Grains[replica];
        Replica = replica;
        Outstanding = first.Outstanding;
    }

    /// <summary>Which replica of the revision this route (or view of it) calls: 0 unless chosen among several.</summary>
    public int Replica { get; }

    /// <summary>The key of the revision's first replica: the same for every view of one revision and version.</summary>
    public string? RevisionKey => Revisions.IsDefaultOrEmpty ? null : Revisions[0].Replicas.Keys[0];

    /// <summary>A view per replica when the revision has several (replica r calls grain r), else null.</summary>
    internal ModelRoute[]? Views { get; }

    /// <summary>Calls this front end has outstanding on each replica, when there are several.</summary>
    internal int[]? Outstanding { get; }

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
