using Orleans.KServe.Contracts.Models;
using Orleans.Placement;
using Orleans.Runtime;
using Orleans.Runtime.Placement;

namespace Orleans.KServe.Grains.Placement;

/// <summary>
/// Places the replicas of one model revision on distinct silos: replica r of a revision goes to the silo at
/// (a stable hash of the revision + r) in the ordered list of compatible silos, so that N replicas take N silos
/// while there are that many, and share silos only when there are fewer.
/// </summary>
[Serializable, GenerateSerializer, Immutable, SuppressReferenceTracking, Alias("Orleans.KServe.ReplicaSpreadPlacement")]
public sealed class ReplicaSpreadPlacement : PlacementStrategy
{
    internal static readonly ReplicaSpreadPlacement Instance = new();
}

/// <summary>Marks a grain class whose activations <see cref="ReplicaSpreadPlacement"/> places.</summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = false)]
public sealed class ReplicaSpreadPlacementAttribute() : PlacementAttribute(ReplicaSpreadPlacement.Instance);

/// <summary>Chooses the silo of a model replica's activation.</summary>
public sealed class ReplicaSpreadPlacementDirector : IPlacementDirector
{
    /// <inheritdoc />
    public Task<SiloAddress> OnAddActivation(PlacementStrategy strategy, PlacementTarget target, IPlacementContext context)
    {
        var silos = context.GetCompatibleSilos(target);
        if (silos.Length == 1)
        {
            return Task.FromResult(silos[0]);
        }

        var ordered = silos.OrderBy(s => s.ToParsableString(), StringComparer.Ordinal).ToArray();
        var key = target.GrainIdentity.Key.ToString()!;
        ModelKey model;
        try
        {
            model = ModelKey.Parse(key);
        }
        catch (FormatException)
        {
            return Task.FromResult(ordered[(int)(Hash(key) % (uint)ordered.Length)]);
        }

        var revision = Hash($"{model.Namespace}/{model.Service}/{model.Revision}/{model.Version}");
        return Task.FromResult(ordered[(int)((revision + (uint)model.Replica) % (uint)ordered.Length)]);
    }

    // FNV-1a: the same on every silo and in every process, unlike string.GetHashCode.
    private static uint Hash(string text)
    {
        var hash = 2166136261u;
        foreach (var c in text)
        {
            hash = (hash ^ c) * 16777619u;
        }

        return hash;
    }
}
