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

    /// <summary>Revisions staged but not yet published, by <c>namespace/name/revision</c>.</summary>
    [Id(2)] public ImmutableDictionary<string, ServiceEntry> Staged { get; set; } = ImmutableDictionary<string, ServiceEntry>.Empty;
}

/// <summary>The cluster's registry of served models; see <see cref="IModelRegistryGrain"/>.</summary>
[Reentrant]
public sealed class ModelRegistryGrain(
    [PersistentState("registry", GrainsHostingExtensions.RegistryStorage)] IPersistentState<RegistryState> state)
    : Grain, IModelRegistryGrain
{
    private static readonly TimeSpan MaxWatch = TimeSpan.FromSeconds(20);

    // A router that has not watched for this long is taken as gone: a watching router calls again at least every MaxWatch.
    private static readonly TimeSpan RouterLease = MaxWatch + TimeSpan.FromSeconds(10);
    private static readonly TimeSpan MaxRouterWait = TimeSpan.FromSeconds(20);
    private TaskCompletionSource<RoutingTable> _changed = NewSignal();

    // Which table each router routes by; in memory only: after a re-activation routers report again within a watch.
    private readonly Dictionary<string, RouterView> _routers = new(StringComparer.Ordinal);
    private TaskCompletionSource _routersMoved = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private static TaskCompletionSource<RoutingTable> NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    private sealed class RouterView(long version)
    {
        public long Version { get; set; } = version;

        public int Watching { get; set; }

        public DateTime LastSeen { get; set; } = DateTime.UtcNow;

        public bool Alive(DateTime now) => Watching > 0 || now - LastSeen < RouterLease;
    }

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
            if (previous is not null && previous.Spec is not null && SameSpecs(previous, incoming))
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

        state.State.Revisions = revisions;
        return await PublishAsync(result.ToImmutable());
    }

    /// <inheritdoc />
    public async ValueTask<ServiceEntry> StageAsync(string source, ServiceEntry service)
    {
        var serviceKey = $"{service.Namespace}/{service.Name}";
        var revision = state.State.Revisions.GetValueOrDefault(serviceKey) + 1;
        var staged = service with { Revision = revision, Source = source, Unloaded = false };
        state.State.Revisions = state.State.Revisions.SetItem(serviceKey, revision);
        state.State.Staged = state.State.Staged.SetItem($"{serviceKey}/{revision}", staged);
        await state.WriteStateAsync();
        return staged;
    }

    /// <inheritdoc />
    public async ValueTask<PublishResult> PublishAsync(string @namespace, string name, int revision)
    {
        var stagedKey = $"{@namespace}/{name}/{revision}";
        if (!state.State.Staged.TryGetValue(stagedKey, out var staged))
        {
            throw new InvalidOperationException($"revision {revision} of {@namespace}/{name} is not staged");
        }

        state.State.Staged = state.State.Staged.Remove(stagedKey);
        var current = state.State.Table.Services.FirstOrDefault(e => e.Namespace == @namespace && e.Name == name);
        if (current is not null && current.Revision > revision)
        {
            // Two rollouts raced and the later revision was published first: it stays.
            await state.WriteStateAsync();
            return new PublishResult(state.State.Table, Published: false, Replaced: null, Current: current);
        }

        var services = state.State.Table.Services.Where(e => !(e.Namespace == @namespace && e.Name == name)).Append(staged);
        var table = await PublishAsync(services.ToImmutableArray());
        return new PublishResult(table, Published: true, Replaced: current, Current: staged);
    }

    /// <inheritdoc />
    public async ValueTask<bool> DiscardAsync(string @namespace, string name, int revision)
    {
        var stagedKey = $"{@namespace}/{name}/{revision}";
        if (!state.State.Staged.ContainsKey(stagedKey))
        {
            return false;
        }

        state.State.Staged = state.State.Staged.Remove(stagedKey);
        await state.WriteStateAsync();
        return true;
    }

    /// <inheritdoc />
    public async ValueTask<ServiceEntry?> MarkUnloadedAsync(string @namespace, string name)
    {
        var current = state.State.Table.Services.FirstOrDefault(e => e.Namespace == @namespace && e.Name == name);
        if (current is null)
        {
            return null;
        }

        if (!current.Unloaded)
        {
            await PublishAsync(state.State.Table.Services.Select(e => e == current ? e with { Unloaded = true } : e).ToImmutableArray());
        }

        return current;
    }

    private async Task<RoutingTable> PublishAsync(ImmutableArray<ServiceEntry> services)
    {
        var table = new RoutingTable(state.State.Table.Version + 1, services);
        state.State.Table = table;
        await state.WriteStateAsync();
        var signal = _changed;
        _changed = NewSignal();
        signal.TrySetResult(table);
        return table;
    }

    /// <inheritdoc />
    public ValueTask<RoutingTable> GetTableAsync() => new(state.State.Table);

    /// <inheritdoc />
    public async Task<RoutingTable> WaitForChangeAsync(long knownVersion, TimeSpan maxWait, string? routerId = null, CancellationToken cancellationToken = default)
    {
        var table = state.State.Table;
        var router = routerId is null ? null : Report(routerId, knownVersion);
        if (table.Version != knownVersion)
        {
            return table;
        }

        // A watcher that stops (its gateway shuts down) cancels the call, so the wait never holds up deactivation.
        var wait = maxWait < MaxWatch ? maxWait : MaxWatch;
        var signal = _changed.Task;
        if (router is not null)
        {
            router.Watching++;
        }

        try
        {
            await Task.WhenAny(signal, Task.Delay(wait, cancellationToken));
        }
        finally
        {
            if (router is not null)
            {
                router.Watching--;
            }
        }

        return state.State.Table;
    }

    private RouterView Report(string routerId, long version)
    {
        if (!_routers.TryGetValue(routerId, out var router))
        {
            router = new RouterView(version);
            _routers[routerId] = router;
        }

        router.Version = version;
        router.LastSeen = DateTime.UtcNow;
        MoveRouters();
        return router;
    }

    private void MoveRouters()
    {
        var moved = _routersMoved;
        _routersMoved = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        moved.TrySetResult();
    }

    /// <inheritdoc />
    public ValueTask LeaveAsync(string routerId)
    {
        if (_routers.Remove(routerId))
        {
            MoveRouters();
        }

        return ValueTask.CompletedTask;
    }

    /// <inheritdoc />
    public async Task<ImmutableArray<string>> WaitForRoutersAsync(long version, TimeSpan maxWait)
    {
        var deadline = DateTime.UtcNow + (maxWait < MaxRouterWait ? maxWait : MaxRouterWait);
        while (true)
        {
            var now = DateTime.UtcNow;
            var behind = ImmutableArray.CreateBuilder<string>();
            List<string>? gone = null;
            foreach (var (id, router) in _routers)
            {
                if (!router.Alive(now))
                {
                    (gone ??= []).Add(id);
                }
                else if (router.Version < version)
                {
                    behind.Add(id);
                }
            }

            foreach (var id in gone ?? [])
            {
                _routers.Remove(id);
            }

            if (behind.Count == 0 || now >= deadline)
            {
                return behind.ToImmutable();
            }

            // Woken by any router's report; at least once a second so that a lease running out is noticed.
            var remaining = deadline - now;
            await Task.WhenAny(_routersMoved.Task, Task.Delay(remaining < TimeSpan.FromSeconds(1) ? remaining : TimeSpan.FromSeconds(1)));
        }
    }

    /// <inheritdoc />
    public ValueTask<ModelSpec?> GetSpecAsync(string modelKey)
    {
        var key = ModelKey.Parse(modelKey);
        if (state.State.Staged.TryGetValue($"{key.Namespace}/{key.Service}/{key.Revision}", out var staged) && key.Replica < staged.Replicas)
        {
            return new ValueTask<ModelSpec?>(VersionOf(staged, key.Version));
        }

        foreach (var entry in state.State.Table.Services)
        {
            if (entry.Namespace == key.Namespace && entry.Name == key.Service && entry.Revision == key.Revision
                && key.Replica < entry.Replicas)
            {
                return new ValueTask<ModelSpec?>(VersionOf(entry, key.Version));
            }
        }

        return new ValueTask<ModelSpec?>((ModelSpec?)null);
    }

    private static ModelSpec? VersionOf(ServiceEntry entry, string version)
    {
        foreach (var spec in entry.AllVersions)
        {
            if (spec.Version == version)
            {
                return spec;
            }
        }

        return null;
    }

    private static bool SameService(ServiceEntry a, ServiceEntry b) => a.Namespace == b.Namespace && a.Name == b.Name;

    private static bool SameEntry(ServiceEntry a, ServiceEntry b) =>
        a.Revision == b.Revision && a.Replicas == b.Replicas && a.FailureReason == b.FailureReason && a.Unloaded == b.Unloaded
        && a.FailureMessage == b.FailureMessage && a.Source == b.Source
        && a.VersionPolicy.SameAs(b.VersionPolicy) && SameSpecs(a, b);

    private static bool SameSpecs(ServiceEntry a, ServiceEntry b)
    {
        var x = a.AllVersions;
        var y = b.AllVersions;
        if (x.Length != y.Length)
        {
            return false;
        }

        for (var i = 0; i < x.Length; i++)
        {
            if (!x[i].SameAs(y[i]))
            {
                return false;
            }
        }

        return true;
    }
}
