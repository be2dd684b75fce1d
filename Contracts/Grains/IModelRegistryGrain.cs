using System.Collections.Immutable;
using Orleans.KServe.Contracts.Models;

namespace Orleans.KServe.Contracts.Grains;

/// <summary>
/// The control plane's registry of served models (one per cluster, key <see cref="ClusterKey"/>). Sources such
/// as the local folder of YAML or a Kubernetes watch apply their declarations; gateways cache the resulting
/// <see cref="RoutingTable"/> and wait for changes, so no request calls the registry.
/// </summary>
[Alias("Orleans.KServe.Contracts.IModelRegistryGrain")]
public interface IModelRegistryGrain : IGrainWithStringKey
{
    /// <summary>The key of the cluster's registry.</summary>
    const string ClusterKey = "cluster";

    /// <summary>
    /// Replaces every declaration from <paramref name="source"/> with <paramref name="services"/>. A service whose
    /// spec changed gets a new revision; one that disappeared is removed. Returns the new table.
    /// </summary>
    [Alias("apply")]
    ValueTask<RoutingTable> ApplyAsync(string source, ImmutableArray<ServiceEntry> services);

    /// <summary>
    /// Stages <paramref name="service"/> under a new revision without publishing it: its replicas can activate and
    /// load while gateways keep routing to the current revision. Returns the staged entry.
    /// </summary>
    [Alias("stage")]
    ValueTask<ServiceEntry> StageAsync(string source, ServiceEntry service);

    /// <summary>Publishes a staged revision (replacing the service's current one); returns the new table.</summary>
    [Alias("publish")]
    ValueTask<RoutingTable> PublishAsync(string @namespace, string name, int revision);

    /// <summary>Marks a service unloaded (listed, not served); returns the entry as it was, or null when unknown.</summary>
    [Alias("markUnloaded")]
    ValueTask<ServiceEntry?> MarkUnloadedAsync(string @namespace, string name);

    /// <summary>The current table.</summary>
    [Alias("table")]
    ValueTask<RoutingTable> GetTableAsync();

    /// <summary>Answers when the table's version differs from <paramref name="knownVersion"/>, or after <paramref name="maxWait"/>.</summary>
    [Alias("watch")]
    Task<RoutingTable> WaitForChangeAsync(long knownVersion, TimeSpan maxWait, CancellationToken cancellationToken = default);

    /// <summary>The spec of the model replica with grain key <paramref name="modelKey"/>, or null when it is not (or no longer) declared.</summary>
    [Alias("spec")]
    ValueTask<ModelSpec?> GetSpecAsync(string modelKey);
}
