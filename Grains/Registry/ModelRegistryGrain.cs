using System.Collections.Immutable;
using Orleans.Concurrency;
using Orleans.KServe.Contracts.Grains;
using Orleans.KServe.Contracts.Models;

namespace Orleans.KServe.Grains.Registry;

/// <summary>Persistent state of the registry.</summary>
[GenerateSerializer]
[Alias("Orleans.KServe.Grains.RegistryState")]
public sealed class RegistryState
{
    /// <summary>The table gateways cache.</summary>
    [Id(0)] public RoutingTable Table { get; set; } = RoutingTable.Empty;

    /// <summary>The last revision number given to each service (<c>namespace/name</c>).</summary>
    [Id(1)] public ImmutableDictionary<string, int> Revisions { get; set; } = ImmutableDictionary<string, int>.Empty;
}

/// <summary>The cluster's registry of served models; see <see cref="IModelRegistryGrain"/>.</summary>
[Reentrant]
public sealed class ModelRegistryGrain(
    [PersistentState("registry", GrainsHostingExtensions.RegistryStorage)] IPersistentState<RegistryState> state)
    : Grain, IModelRegistryGrain
{
    private static readonly TimeSpan MaxWatch = TimeSpan.FromSeconds(20);
    private TaskCompletionSource<RoutingTable> _changed = NewSignal();

    private static TaskCompletionSource<RoutingTable> NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <inheritdoc />
    public async ValueTask<RoutingTable> ApplyAsync(string source, ImmutableArray<ServiceEntry> services)
    {
        var current = state.State.Table;
        var revisions = state.State.Revisions;
        var result = ImmutableArray.CreateBuilder<ServiceEntry>();

        // Declarations from other sources stay as they are.
        foreach (var entry in current.Services)
        {
            if (entry.Source != source && !services.Any(s => SameService(s, entry)))
            {
                result.Add(entry);
            }
        }

        var changed = result.Count != current.Services.Length;
        foreach (var incoming in services)
        {
            var previous = current.Services.FirstOrDefault(e => SameService(e, incoming));
            var serviceKey = $"{incoming.Namespace}/{incoming.Name}";
            int revision;
            if (previous is not null && previous.Spec is not null && previous.Spec.SameAs(incoming.Spec))
            {
                revision = previous.Revision;
            }
            else
            {
                revision = revisions.GetValueOrDefault(serviceKey) + 1;
                revisions = revisions.SetItem(serviceKey, revision);
            }

            var entry = incoming with { Revision = revision, Source = source };
            changed |= previous is null || !SameEntry(previous, entry);
            result.Add(entry);
        }

        if (!changed)
        {
            return current;
        }

        var table = new RoutingTable(current.Version + 1, result.ToImmutable());
        state.State.Table = table;
        state.State.Revisions = revisions;
        await state.WriteStateAsync();

        var signal = _changed;
        _changed = NewSignal();
        signal.TrySetResult(table);
        return table;
    }

    /// <inheritdoc />
    public ValueTask<RoutingTable> GetTableAsync() => new(state.State.Table);

    /// <inheritdoc />
    public async Task<RoutingTable> WaitForChangeAsync(long knownVersion, TimeSpan maxWait)
    {
        var table = state.State.Table;
        if (table.Version != knownVersion)
        {
            return table;
        }

        var wait = maxWait < MaxWatch ? maxWait : MaxWatch;
        var signal = _changed.Task;
        await Task.WhenAny(signal, Task.Delay(wait));
        return state.State.Table;
    }

    /// <inheritdoc />
    public ValueTask<ModelSpec?> GetSpecAsync(string modelKey)
    {
        var key = ModelKey.Parse(modelKey);
        foreach (var entry in state.State.Table.Services)
        {
            if (entry.Namespace == key.Namespace && entry.Name == key.Service && entry.Revision == key.Revision
                && key.Replica < entry.Replicas)
            {
                return new ValueTask<ModelSpec?>(entry.Spec);
            }
        }

        return new ValueTask<ModelSpec?>((ModelSpec?)null);
    }

    private static bool SameService(ServiceEntry a, ServiceEntry b) => a.Namespace == b.Namespace && a.Name == b.Name;

    private static bool SameEntry(ServiceEntry a, ServiceEntry b) =>
        a.Revision == b.Revision && a.Replicas == b.Replicas && a.FailureReason == b.FailureReason
        && a.FailureMessage == b.FailureMessage && a.Source == b.Source
        && (a.Spec is null ? b.Spec is null : a.Spec.SameAs(b.Spec));
}
