using System.Collections.Frozen;
using Orleans.KServe.Contracts.Grains;
using Orleans.KServe.Contracts.Inference;
using Orleans.KServe.Contracts.Models;
using Orleans.KServe.Contracts.Serving;

namespace Orleans.KServe.Gateway.Routing;

/// <summary>One version of a served model as the gateway caches it.</summary>
public sealed class ModelRoute
{
    internal ModelRoute(ServiceEntry entry, ModelSpec? spec, IGrainFactory grains)
    {
        Entry = entry;
        Version = spec?.Version ?? "1";
        if (spec is not null)
        {
            GrainKey = entry.ReplicaKey(0, spec.Version).ToString();
            Grain = grains.GetGrain<IModelGrain>(GrainKey);
        }
    }

    /// <summary>The registry entry.</summary>
    public ServiceEntry Entry { get; }

    /// <summary>The served model name.</summary>
    public string Name => Entry.Name;

    /// <summary>The version this route serves.</summary>
    public string Version { get; }

    /// <summary>Every version of the model served, newest first.</summary>
    public IEnumerable<string> AllVersions => Entry.AllVersions.IsEmpty ? [Version] : Entry.AllVersions.Select(v => v.Version);

    /// <summary>The replica grain key, when the model can be served.</summary>
    public string? GrainKey { get; }

    /// <summary>The replica grain (cached reference), when the model can be served.</summary>
    public IModelGrain? Grain { get; }

    /// <summary>Metadata cached once the model has loaded.</summary>
    internal ModelMetadata? Metadata { get; set; }
}

/// <summary>
/// The gateway's locally cached routing table: model name to replica grain, refreshed when the registry changes.
/// No request calls the control plane. When a replica is active on this very silo and
/// <see cref="GatewayOptions.LocalFastPath"/> is on, requests go straight to it without an Orleans message.
/// </summary>
public sealed class ModelRouter(IGrainFactory grains, GatewayOptions options, ILocalModelDirectory? localDirectory = null)
{
    private volatile Snapshot _snapshot = new(-1, FrozenDictionary<string, ModelRoute[]>.Empty, []);

    /// <summary>The version of the table in use; -1 before the first table arrived.</summary>
    public long Version => _snapshot.Version;

    /// <summary>Every route (each version of each model), in the registry's order, newest version first.</summary>
    public IReadOnlyList<ModelRoute> Routes => _snapshot.Ordered;

    /// <summary>Installs a new table, keeping cached metadata of unchanged revisions.</summary>
    public void Update(RoutingTable table)
    {
        var previous = _snapshot;
        if (table.Version == previous.Version)
        {
            return;
        }

        var ordered = new List<ModelRoute>(table.Services.Length);
        var byName = new Dictionary<string, ModelRoute[]>(StringComparer.Ordinal);
        foreach (var entry in table.Services)
        {
            var versions = entry.AllVersions.IsEmpty
                ? [new ModelRoute(entry, null, grains)]
                : entry.AllVersions.Select(spec => new ModelRoute(entry, spec, grains)).ToArray();
            foreach (var route in versions)
            {
                var old = previous.ByName.GetValueOrDefault(entry.Name)?.FirstOrDefault(r => r.GrainKey == route.GrainKey);
                route.Metadata = old?.Metadata;
                ordered.Add(route);
            }

            byName.TryAdd(entry.Name, versions);
        }

        _snapshot = new Snapshot(table.Version, byName.ToFrozenDictionary(StringComparer.Ordinal), ordered);
    }

    /// <summary>
    /// Finds the route for a model and version; without a version, the newest version that is ready (the newest
    /// when none is). Throws 404 when the model or version is not served.
    /// </summary>
    public ModelRoute Get(string model, string? version = null)
    {
        if (!_snapshot.ByName.TryGetValue(model, out var versions))
        {
            throw InferenceException.ModelNotFound(model);
        }

        if (version is not null)
        {
            foreach (var route in versions)
            {
                if (route.Version == version)
                {
                    return route;
                }
            }

            throw new InferenceException(InferenceErrorKind.NotFound,
                $"model '{model}' has no version '{version}'; it serves version {string.Join(", ", versions.Select(v => v.Version))}");
        }

        if (versions.Length > 1 && localDirectory is not null)
        {
            foreach (var route in versions)
            {
                if (route.GrainKey is not null && localDirectory.TryGet(route.GrainKey, out var local) && local.IsLoaded)
                {
                    return route;
                }
            }
        }

        return versions[0];
    }

    /// <summary>The names of the models served.</summary>
    public IEnumerable<string> ModelNames => _snapshot.ByName.Keys;

    /// <summary>
    /// Fails fast with 503 when the model cannot answer (not servable, or a local replica that is loading or
    /// failed), before the caller spends time reading and decoding a body.
    /// </summary>
    public void EnsureAvailable(ModelRoute route)
    {
        _ = Servable(route);
        if (localDirectory is not null && localDirectory.TryGet(route.GrainKey!, out var local) && !local.IsLoaded)
        {
            // Throws the replica's own 503 (loading, failed with its reason, unloaded).
            local.GetMetadata();
        }
    }

    /// <summary>Runs an inference on the route's replica.</summary>
    public ValueTask<InferenceResponse> InferAsync(ModelRoute route, InferenceRequest request, CancellationToken cancellationToken = default)
    {
        if (TryLocal(route, out var local))
        {
            return local.InferAsync(request, cancellationToken);
        }

        return Servable(route).InferAsync(request, cancellationToken);
    }

    /// <summary>The route's metadata, cached after the first answer.</summary>
    public async ValueTask<ModelMetadata> GetMetadataAsync(ModelRoute route)
    {
        if (route.Metadata is { } cached)
        {
            return cached;
        }

        var metadata = TryLocal(route, out var local) ? local.GetMetadata() : await Servable(route).GetMetadataAsync();
        route.Metadata = metadata;
        return metadata;
    }

    /// <summary>The route's configuration.</summary>
    public async ValueTask<ModelConfiguration> GetConfigurationAsync(ModelRoute route) =>
        TryLocal(route, out var local) ? local.GetConfiguration() : await Servable(route).GetConfigurationAsync();

    /// <summary>The route's statistics.</summary>
    public async ValueTask<ModelStatistics> GetStatisticsAsync(ModelRoute route)
    {
        if (localDirectory is not null && route.GrainKey is not null && localDirectory.TryGet(route.GrainKey, out var local))
        {
            return local.GetStatistics();
        }

        return await Servable(route).GetStatisticsAsync();
    }

    /// <summary>The replica's status; a model that cannot be served reports FailedToLoad with its reason.</summary>
    public async ValueTask<ModelStatus> GetStatusAsync(ModelRoute route)
    {
        if (route.Grain is null)
        {
            return new ModelStatus(ModelState.FailedToLoad, $"{route.Entry.FailureReason}: {route.Entry.FailureMessage}");
        }

        if (route.Entry.Unloaded)
        {
            return new ModelStatus(ModelState.Unloaded, "unloaded through the repository extension");
        }

        if (localDirectory is not null && localDirectory.TryGet(route.GrainKey!, out var local))
        {
            return local.Status;
        }

        return await route.Grain.GetStatusAsync();
    }

    private bool TryLocal(ModelRoute route, out ILocalModelEndpoint endpoint)
    {
        if (options.LocalFastPath && localDirectory is not null && route.GrainKey is not null && !route.Entry.Unloaded
            && localDirectory.TryGet(route.GrainKey, out var found) && found.IsLoaded)
        {
            endpoint = found;
            return true;
        }

        endpoint = null!;
        return false;
    }

    private static IModelGrain Servable(ModelRoute route)
    {
        if (route.Grain is null)
        {
            throw InferenceException.Unavailable($"model '{route.Name}' cannot be served: {route.Entry.FailureReason}: {route.Entry.FailureMessage}");
        }

        if (route.Entry.Unloaded)
        {
            throw InferenceException.Unavailable($"model '{route.Name}' is unloaded; load it through the repository extension");
        }

        return route.Grain;
    }

    private sealed record Snapshot(long Version, FrozenDictionary<string, ModelRoute[]> ByName, IReadOnlyList<ModelRoute> Ordered);
}
