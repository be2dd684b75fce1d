using System.Collections.Immutable;

namespace Orleans.KServe.Contracts.Models;

/// <summary>
/// One served model as the control plane declares it: the service, its current revision and replica count, the
/// spec to load, or why it cannot be served.
/// </summary>
[GenerateSerializer, Immutable]
[Alias("Orleans.KServe.Contracts.ServiceEntry")]
public sealed record ServiceEntry(
    [property: Id(0)] string Namespace,
    [property: Id(1)] string Name,
    [property: Id(2)] ModelSpec? Spec,
    [property: Id(3)] string? FailureReason = null,
    [property: Id(4)] string? FailureMessage = null)
{
    /// <summary>The revision the registry assigned (1, 2, …); 0 before registration.</summary>
    [Id(5)] public int Revision { get; init; }

    /// <summary>How many replica grains serve the revision.</summary>
    [Id(6)] public int Replicas { get; init; } = 1;

    /// <summary>Where the declaration came from (a file path, a Kubernetes object).</summary>
    [Id(7)] public string? Source { get; init; }

    /// <summary>True when the repository extension unloaded the model: listed, not served, until loaded again.</summary>
    [Id(8)] public bool Unloaded { get; init; }

    /// <summary>
    /// Every version served, newest first, when the model has several (Triton's version folders under a policy,
    /// or several InferenceServices naming one model); empty means <see cref="Spec"/> is the only one.
    /// </summary>
    [Id(9)] public ImmutableArray<ModelSpec> Versions { get; init; } = ImmutableArray<ModelSpec>.Empty;

    /// <summary>The version policy in effect (field 10, its text form, is retired).</summary>
    [Id(11)] public ModelVersionPolicy VersionPolicy { get; init; } = ModelVersionPolicy.Default;

    /// <summary>The specs of every version served, newest first.</summary>
    public ImmutableArray<ModelSpec> AllVersions =>
        !Versions.IsDefaultOrEmpty ? Versions : Spec is null ? ImmutableArray<ModelSpec>.Empty : [Spec];

    /// <summary>The grain key of one replica of one version (the newest when <paramref name="version"/> is null).</summary>
    public ModelKey ReplicaKey(int replica, string? version = null) =>
        new(Namespace, Name, Revision, replica, version ?? Spec?.Version ?? "1");

    /// <summary>The grain keys of every replica of every version served; none when the entry cannot be served.</summary>
    public IEnumerable<ModelKey> ReplicaKeys()
    {
        foreach (var version in AllVersions)
        {
            for (var replica = 0; replica < Replicas; replica++)
            {
                yield return ReplicaKey(replica, version.Version);
            }
        }
    }
}

/// <summary>The set of served models, versioned so gateways can cache it and refresh on change.</summary>
[GenerateSerializer, Immutable]
[Alias("Orleans.KServe.Contracts.RoutingTable")]
public sealed record RoutingTable(
    [property: Id(0)] long Version,
    [property: Id(1)] ImmutableArray<ServiceEntry> Services)
{
    /// <summary>The empty table.</summary>
    public static RoutingTable Empty { get; } = new(0, ImmutableArray<ServiceEntry>.Empty);
}
