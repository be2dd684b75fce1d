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

    /// <summary>
    /// Publishes a staged revision in place of the service's current one, unless a newer revision was published
    /// meanwhile (then the staged one is dropped: it is superseded). Says which entry it replaced, whose replicas the
    /// caller retires once every router has the new table (<see cref="WaitForRoutersAsync"/>).
    /// </summary>
    [Alias("publish")]
    ValueTask<PublishResult> PublishAsync(string @namespace, string name, int revision);

    /// <summary>Drops a staged revision without publishing it (its replicas failed to load); true when it was staged.</summary>
    [Alias("discard")]
    ValueTask<bool> DiscardAsync(string @namespace, string name, int revision);

    /// <summary>Marks a service unloaded (listed, not served); returns the entry as it was, or null when unknown.</summary>
    [Alias("markUnloaded")]
    ValueTask<ServiceEntry?> MarkUnloadedAsync(string @namespace, string name);

    /// <summary>The current table.</summary>
    [Alias("table")]
    ValueTask<RoutingTable> GetTableAsync();

    /// <summary>
    /// Answers when the table's version differs from <paramref name="knownVersion"/>, or after <paramref name="maxWait"/>.
    /// A router that names itself (<paramref name="routerId"/>) tells the registry which table it routes by: the
    /// rollouts wait for it (<see cref="WaitForRoutersAsync"/>) until it leaves or stops watching.
    /// </summary>
    [Alias("watch")]
    Task<RoutingTable> WaitForChangeAsync(long knownVersion, TimeSpan maxWait, string? routerId = null, CancellationToken cancellationToken = default);

    /// <summary>A router that stops (its gateway shuts down) says so, so that no rollout waits for it.</summary>
    [Alias("leave")]
    ValueTask LeaveAsync(string routerId);

    /// <summary>
    /// Answers once every router that watches the table routes by version <paramref name="version"/> or later, or
    /// after <paramref name="maxWait"/>, with the routers still behind (empty when none is). A router that has not
    /// watched for longer than a watch's length is taken as gone.
    /// </summary>
    [Alias("routers")]
    Task<ImmutableArray<string>> WaitForRoutersAsync(long version, TimeSpan maxWait);

    /// <summary>The spec of the model replica with grain key <paramref name="modelKey"/>, or null when it is not (or no longer) declared.</summary>
    [Alias("spec")]
    ValueTask<ModelSpec?> GetSpecAsync(string modelKey);
}

/// <summary>What publishing a staged revision did.</summary>
/// <param name="Table">The table after the publish.</param>
/// <param name="Published">False when a newer revision of the service was already published: the staged one was dropped.</param>
/// <param name="Replaced">The entry the published revision replaced (null when the service was new, or when nothing was published).</param>
/// <param name="Current">The service's entry in <paramref name="Table"/>.</param>
[GenerateSerializer, Immutable]
[Alias("Orleans.KServe.Contracts.PublishResult")]
public sealed record PublishResult(
    [property: Id(0)] RoutingTable Table,
    [property: Id(1)] bool Published,
    [property: Id(2)] ServiceEntry? Replaced,
    [property: Id(3)] ServiceEntry? Current);
