using System.Collections.Immutable;
using Orleans.KServe.Contracts.Grains;
using Orleans.KServe.Contracts.Models;
using Orleans.Concurrency;
using Orleans.Runtime;
using Orleans.Runtime.MembershipService.SiloMetadata;

namespace Orleans.KServe.Silo;

/// <summary>One silo as membership records it, with its metadata (<c>kserve.role</c> among them).</summary>
[GenerateSerializer, Immutable, Alias("Orleans.KServe.Silo.SiloView")]
public sealed record SiloView(
    [property: Id(0)] string Name,
    [property: Id(1)] string Address,
    [property: Id(2)] string Host,
    [property: Id(3)] string Status,
    [property: Id(4)] DateTime Since,
    [property: Id(5)] DateTime LastAlive,
    [property: Id(6)] ImmutableDictionary<string, string> Labels);

/// <summary>One active model replica and the silo it is active on.</summary>
[GenerateSerializer, Immutable, Alias("Orleans.KServe.Silo.ReplicaView")]
public sealed record ReplicaView([property: Id(0)] string GrainKey, [property: Id(1)] string Silo)
{
    /// <summary>The replica's identity.</summary>
    public ModelKey Key => ModelKey.Parse(GrainKey);
}

/// <summary>The cluster's silos and where every model replica is active.</summary>
[GenerateSerializer, Immutable, Alias("Orleans.KServe.Silo.ClusterView")]
public sealed record ClusterView(
    [property: Id(0)] ImmutableArray<SiloView> Silos,
    [property: Id(1)] ImmutableArray<ReplicaView> Replicas,
    [property: Id(2)] string? RegistrySilo);

/// <summary>Reads the cluster's view on a silo, for front ends of any role (an Orleans client reads silo metadata through it).</summary>
[Alias("Orleans.KServe.Silo.IClusterViewGrain")]
public interface IClusterViewGrain : IGrainWithIntegerKey
{
    /// <summary>Membership's silos with their metadata, and every active model replica.</summary>
    [Alias("Get")]
    Task<ClusterView> GetAsync();
}

/// <summary>Answers on whichever silo it is called on: nothing it keeps is state.</summary>
[StatelessWorker]
internal sealed class ClusterViewGrain(ISiloMetadataCache metadata) : Grain, IClusterViewGrain
{
    public async Task<ClusterView> GetAsync()
    {
        var management = GrainFactory.GetGrain<IManagementGrain>(0);
        var hosts = await management.GetDetailedHosts(onlyActive: false);
        var active = hosts.Where(h => h.Status == SiloStatus.Active).Select(h => h.SiloAddress).ToArray();

        // Every activation, filtered by the model grain's type (the type filter takes Orleans' runtime type names).
        var modelType = GrainFactory.GetGrain<IModelGrain>(new ModelKey("default", "x", 1, 0).ToString()).GetGrainId().Type;
        var registry = GrainFactory.GetGrain<IModelRegistryGrain>(IModelRegistryGrain.ClusterKey).GetGrainId();
        var activations = active.Length == 0 ? [] : await management.GetDetailedGrainStatistics(hostsIds: active);
        var silos = hosts.OrderBy(h => h.StartTime).Select(h => new SiloView(
            h.SiloName, h.SiloAddress.ToParsableString(), h.HostName, h.Status.ToString(), h.StartTime.ToUniversalTime(),
            h.IAmAliveTime.ToUniversalTime(), metadata.GetSiloMetadata(h.SiloAddress).Metadata)).ToImmutableArray();
        var replicas = activations
            .Where(a => a.GrainId.Type == modelType)
            .Select(a => new ReplicaView(a.GrainId.Key.ToString()!, a.SiloAddress.ToParsableString()))
            .OrderBy(r => r.Key.Namespace, StringComparer.Ordinal).ThenBy(r => r.Key.Service, StringComparer.Ordinal)
            .ThenBy(r => r.Key.Version, StringComparer.Ordinal).ThenBy(r => r.Key.Revision).ThenBy(r => r.Key.Replica)
            .ToImmutableArray();
        var registrySilo = activations.FirstOrDefault(a => a.GrainId == registry)?.SiloAddress.ToParsableString();
        return new ClusterView(silos, replicas, registrySilo);
    }
}
