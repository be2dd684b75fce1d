using System.Collections.Immutable;
using Microsoft.Extensions.Logging;
using Orleans.KServe.Contracts.Grains;
using Orleans.KServe.Contracts.Models;

namespace Orleans.KServe.Operator.Rollout;

/// <summary>How long each step of a rollout may take.</summary>
public sealed class RolloutOptions
{
    /// <summary>How long the new revision's replicas may take to load. Default 5 minutes.</summary>
    public TimeSpan LoadTimeout { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>How long to wait for every router to route by the new table before the old revision retires. Default 30 s.</summary>
    public TimeSpan RouterTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How long a retiring replica's calls in progress may take before the rollout answers. Default 30 s.</summary>
    public TimeSpan DrainTimeout { get; set; } = TimeSpan.FromSeconds(30);
}

/// <summary>What a rollout did.</summary>
/// <param name="Entry">The revision rolled out (as staged, with its revision number).</param>
/// <param name="Status">Its replicas' state: Loaded when it serves.</param>
/// <param name="Published">True when it serves now (or reports its failure, with nothing else to serve).</param>
/// <param name="Superseded">True when a newer revision was published while this one loaded: that one serves.</param>
/// <param name="RoutersBehind">Routers that had not switched to the new table when the old revision retired.</param>
/// <param name="Retired">The revision that stopped serving, if any.</param>
public sealed record RolloutResult(
    ServiceEntry Entry, ModelStatus Status, bool Published, bool Superseded, ImmutableArray<string> RoutersBehind, ServiceEntry? Retired);

/// <summary>
/// Replaces the revision a service serves, make-before-break: stage the new revision → its replicas load while
/// the old one serves → publish → every router routes by the new table → the old revision's replicas retire
/// (calls in progress finish; a call that reaches one later is routed again to the new revision). A revision that
/// fails to load is not published while another one serves, so a bad artifact never takes a model down. Every
/// source of declarations uses it: the folder's repository extension now, later watches and canaries.
/// </summary>
public sealed partial class RevisionRollout(IGrainFactory grains, ILogger<RevisionRollout> logger, RolloutOptions? options = null)
{
    private static readonly TimeSpan CallSlice = TimeSpan.FromSeconds(10);
    private readonly RolloutOptions _options = options ?? new RolloutOptions();

    /// <summary>Rolls <paramref name="entry"/> out as the service's next revision; answers once it serves wherever it is routed.</summary>
    public async Task<RolloutResult> RollOutAsync(string source, ServiceEntry entry, CancellationToken cancellationToken)
    {
        var registry = grains.GetGrain<IModelRegistryGrain>(IModelRegistryGrain.ClusterKey);
        var staged = await registry.StageAsync(source, entry);
        var status = staged.Spec is null
            ? new ModelStatus(ModelState.FailedToLoad, $"{staged.FailureReason}: {staged.FailureMessage}")
            : await WaitUntilLoadedAsync(staged, cancellationToken);

        if (status.State != ModelState.Loaded)
        {
            var serving = (await registry.GetTableAsync()).Services
                .FirstOrDefault(e => e.Namespace == staged.Namespace && e.Name == staged.Name);
            if (serving is { Spec: not null, Unloaded: false })
            {
                // The revision that serves keeps serving; the failed one never gets traffic.
                await registry.DiscardAsync(staged.Namespace, staged.Name, staged.Revision);
                await RetireAsync(staged);
                LogKept(staged.Name, staged.Revision, serving.Revision, status.Reason ?? status.State.ToString());
                return new RolloutResult(staged, status, Published: false, Superseded: false, [], null);
            }

            // Nothing else serves: publish the failure, so that the index and every request say why.
        }

        var published = await registry.PublishAsync(staged.Namespace, staged.Name, staged.Revision);
        if (!published.Published)
        {
            await RetireAsync(staged);
            LogSuperseded(staged.Name, staged.Revision, published.Current?.Revision ?? 0);
            return new RolloutResult(staged, status, Published: false, Superseded: true, [], null);
        }

        var behind = await WaitForRoutersAsync(registry, published.Table.Version, cancellationToken);
        if (!behind.IsEmpty)
        {
            LogRoutersBehind(staged.Name, staged.Revision, behind.Length, string.Join(", ", behind));
        }

        if (published.Replaced is { Spec: not null } replaced)
        {
            await RetireAsync(replaced);
        }

        LogRolledOut(staged.Name, staged.Revision, status.State, published.Replaced?.Revision ?? 0);
        return new RolloutResult(staged, status, Published: true, Superseded: false, behind, published.Replaced);
    }

    /// <summary>Waits until every replica of <paramref name="entry"/> has settled; the first that did not load, else Loaded.</summary>
    private async Task<ModelStatus> WaitUntilLoadedAsync(ServiceEntry entry, CancellationToken cancellationToken)
    {
        var deadline = DateTime.UtcNow + _options.LoadTimeout;
        var replicas = entry.ReplicaKeys().Select(k => grains.GetGrain<IModelGrain>(k.ToString())).ToList();
        var statuses = await Task.WhenAll(replicas.Select(async replica =>
        {
            while (true)
            {
                cancellationToken.ThrowIfCancellationRequested();
                var remaining = deadline - DateTime.UtcNow;
                var status = await replica.WaitUntilSettledAsync(remaining < CallSlice ? Max(remaining, TimeSpan.Zero) : CallSlice);
                if (status.IsSettled)
                {
                    return status;
                }

                if (DateTime.UtcNow >= deadline)
                {
                    return new ModelStatus(ModelState.FailedToLoad, $"still {status.State} after {_options.LoadTimeout.TotalSeconds:0} s");
                }
            }
        }));
        return statuses.FirstOrDefault(s => s.State != ModelState.Loaded) ?? statuses.FirstOrDefault() ?? new ModelStatus(ModelState.Loaded);
    }

    private async Task<ImmutableArray<string>> WaitForRoutersAsync(IModelRegistryGrain registry, long version, CancellationToken cancellationToken)
    {
        var deadline = DateTime.UtcNow + _options.RouterTimeout;
        while (true)
        {
            var remaining = deadline - DateTime.UtcNow;
            var behind = await registry.WaitForRoutersAsync(version, remaining < CallSlice ? Max(remaining, TimeSpan.Zero) : CallSlice);
            if (behind.IsEmpty || DateTime.UtcNow >= deadline || cancellationToken.IsCancellationRequested)
            {
                return behind;
            }
        }
    }

    /// <summary>Retires every replica of <paramref name="entry"/>, each once its calls in progress have finished.</summary>
    private Task RetireAsync(ServiceEntry entry) =>
        Task.WhenAll(entry.ReplicaKeys().Select(k => grains.GetGrain<IModelGrain>(k.ToString()).RetireAsync(Min(_options.DrainTimeout, CallSlice * 2))));

    private static TimeSpan Max(TimeSpan a, TimeSpan b) => a > b ? a : b;

    private static TimeSpan Min(TimeSpan a, TimeSpan b) => a < b ? a : b;

    [LoggerMessage(1, LogLevel.Information, "Model {Model} revision {Revision} serves ({State}); revision {Replaced} retired")]
    private partial void LogRolledOut(string model, int revision, ModelState state, int replaced);

    [LoggerMessage(2, LogLevel.Warning, "Model {Model} revision {Revision} did not load ({Reason}); revision {Serving} keeps serving")]
    private partial void LogKept(string model, int revision, int serving, string reason);

    [LoggerMessage(3, LogLevel.Information, "Model {Model} revision {Revision} was superseded by revision {Current} while it loaded")]
    private partial void LogSuperseded(string model, int revision, int current);

    [LoggerMessage(4, LogLevel.Warning, "Model {Model} revision {Revision}: {Count} routers had not switched to it in time ({Routers}); calls that reach the old revision are routed again")]
    private partial void LogRoutersBehind(string model, int revision, int count, string routers);
}
