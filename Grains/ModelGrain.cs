using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Orleans.Concurrency;
using Orleans.KServe.Contracts.Grains;
using Orleans.KServe.Contracts.Inference;
using Orleans.KServe.Contracts.Models;
using Orleans.KServe.Grains.Execution;
using Orleans.KServe.Grains.Runtime;
using Orleans.KServe.Grains.Telemetry;

namespace Orleans.KServe.Grains;

/// <summary>
/// One replica of one model revision. On activation it asks the registry for its spec and loads the artifact in
/// the background (metadata and infer answer 503 "loading" meanwhile). Reentrant: many inference calls run at
/// once, their executions on the bounded <see cref="InferenceExecutor"/>. Stays active until the residency work
/// decides otherwise.
/// </summary>
[Reentrant]
[CollectionAgeLimit(AlwaysActive = true)]
[Placement.ReplicaSpreadPlacement]
public sealed partial class ModelGrain(
    ModelRuntimeCatalog runtimes,
    Storage.ArtifactStorage storage,
    InferenceExecutor executor,
    InferenceMetrics metrics,
    LocalModelDirectory directory,
    ILogger<ModelGrain> logger) : Grain, IModelGrain
{
    private ModelReplica? _replica;
    private string? _notDeclared;

    /// <inheritdoc />
    public override async Task OnActivateAsync(CancellationToken cancellationToken)
    {
        var keyString = this.GetPrimaryKeyString();
        var key = ModelKey.Parse(keyString);
        var registry = GrainFactory.GetGrain<IModelRegistryGrain>(IModelRegistryGrain.ClusterKey);
        var spec = await registry.GetSpecAsync(keyString);
        if (spec is null)
        {
            // A call for a revision that is no longer declared (a gateway's table was older than the registry's) is
            // answered Retired so that the gateway routes it again; the activation leaves once it has answered.
            _notDeclared = $"no model is declared as '{key.Service}' revision {key.Revision} in namespace '{key.Namespace}'";
            return;
        }

        // A revision the table already routes to has served before: this activation replaces one that was lost.
        var table = await registry.GetTableAsync();
        var again = table.Services.Any(e => e.Namespace == key.Namespace && e.Name == key.Service && e.Revision == key.Revision);
        metrics.RecordActivation(spec.Name, spec.Version, again);
        var replica = new ModelReplica(key, spec, executor, metrics);
        replica.MarkLoading();
        _replica = replica;
        directory.Register(keyString, replica);
        _ = LoadAsync(replica);
    }

    private async Task LoadAsync(ModelReplica replica)
    {
        var spec = replica.Spec;
        var started = Stopwatch.GetTimestamp();
        LogLoading(spec.Name, replica.Key.Revision, spec.StorageUri);
        try
        {
            var factory = runtimes.Resolve(spec);

            // The artifact becomes a local file here, on the silo that loads it.
            var artifact = await storage.ResolveAsync(spec, replica.Key, CancellationToken.None);

            // Loading parses and optimises the graph: seconds of CPU that must not run on a grain turn.
            var runtime = await Task.Run(() => factory.Load(spec, artifact, CancellationToken.None));
            var elapsed = Stopwatch.GetElapsedTime(started);
            if (replica.Status.State is ModelState.Unloaded or ModelState.Retired)
            {
                runtime.Dispose();
                return;
            }

            replica.MarkLoaded(runtime, elapsed);
            LogLoaded(spec.Name, replica.Key.Revision, elapsed.TotalMilliseconds);
        }
        catch (Exception e)
        {
            var reason = e is ModelLoadException ? e.Message : $"{e.GetType().Name}: {e.Message}";
            var kind = (e as ModelLoadException)?.Reason ?? FailureReasons.ModelLoadFailed;
            replica.MarkFailed(reason, kind);
            LogLoadFailed(spec.Name, replica.Key.Revision, kind, reason);
        }
    }

    /// <inheritdoc />
    public override async Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        if (_replica is { } replica)
        {
            // Calls already here finish; one that still finds this replica is answered Retired and sent on to the
            // grain's next activation (a stopping silo's replicas move to the others this way).
            directory.Unregister(this.GetPrimaryKeyString(), replica);
            await replica.LeaveAsync(TimeSpan.FromSeconds(30));
        }
    }

    /// <inheritdoc />
    public ValueTask<InferenceResponse> InferAsync(InferenceRequest request, CancellationToken cancellationToken = default) =>
        Replica.InferAsync(request, cancellationToken);

    /// <inheritdoc />
    public ValueTask<ModelMetadata> GetMetadataAsync() => new(Replica.GetMetadata());

    /// <inheritdoc />
    public ValueTask<ModelStatistics> GetStatisticsAsync() => new(Replica.GetStatistics());

    /// <inheritdoc />
    public ValueTask<ModelConfiguration> GetConfigurationAsync() => new(Replica.GetConfiguration());

    /// <inheritdoc />
    public async Task UnloadAsync()
    {
        if (_replica is { } replica)
        {
            directory.Unregister(this.GetPrimaryKeyString(), replica);
            await replica.UnloadAsync(TimeSpan.FromSeconds(30));
        }
    }

    /// <inheritdoc />
    public ValueTask<ModelStatus> GetStatusAsync()
    {
        if (_replica is null)
        {
            DeactivateOnIdle();
        }

        return new(Status);
    }

    /// <inheritdoc />
    public async Task<ModelStatus> WaitUntilSettledAsync(TimeSpan maxWait)
    {
        if (_replica is { } replica)
        {
            await Task.WhenAny(replica.WhenSettled, Task.Delay(maxWait));
        }

        return Status;
    }

    /// <inheritdoc />
    public async Task<ModelStatus> RetireAsync(TimeSpan drain)
    {
        if (_replica is { } replica)
        {
            directory.Unregister(this.GetPrimaryKeyString(), replica);
            await replica.RetireAsync(drain);
            LogRetired(replica.Spec.Name, replica.Key.Revision, replica.InFlight);
        }

        DeactivateOnIdle();
        return Status;
    }

    private ModelStatus Status => _replica?.Status ?? new ModelStatus(ModelState.Retired, _notDeclared);

    private ModelReplica Replica => _replica ?? throw NotDeclared();

    private InferenceException NotDeclared()
    {
        // Deactivating while activating would bounce the messages queued here between activations; after a call is fine.
        DeactivateOnIdle();
        return new InferenceException(InferenceErrorKind.Retired, _notDeclared ?? "model not declared");
    }

    [LoggerMessage(1, LogLevel.Information, "Loading model {Model} revision {Revision} from {Artifact}")]
    private partial void LogLoading(string model, int revision, string artifact);

    [LoggerMessage(2, LogLevel.Information, "Loaded model {Model} revision {Revision} in {Milliseconds:F0} ms")]
    private partial void LogLoaded(string model, int revision, double milliseconds);

    [LoggerMessage(3, LogLevel.Error, "Model {Model} revision {Revision} failed to load: {FailureReason}: {Reason}")]
    private partial void LogLoadFailed(string model, int revision, string failureReason, string reason);

    [LoggerMessage(4, LogLevel.Information, "Model {Model} revision {Revision} retired ({InFlight} calls still finishing)")]
    private partial void LogRetired(string model, int revision, int inFlight);
}
