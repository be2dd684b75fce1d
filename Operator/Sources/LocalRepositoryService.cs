using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Orleans.KServe.Contracts.Grains;
using Orleans.KServe.Contracts.Inference;
using Orleans.KServe.Contracts.Models;
using Orleans.KServe.Contracts.Serving;

namespace Orleans.KServe.Operator.Sources;

/// <summary>Where the single-process server reads its resources from.</summary>
public sealed class ModelRepositoryOptions
{
    /// <summary>The folder of KServe YAML.</summary>
    public string Path { get; set; } = "";
}

/// <summary>
/// Feeds the local folder's declarations to the cluster registry at start (and on <see cref="ReloadAsync"/>), then
/// activates every declared replica so models load before the first request.
/// </summary>
public sealed partial class LocalRepositoryService(
    LocalFolderSource source,
    IGrainFactory grains,
    ILogger<LocalRepositoryService> logger) : IHostedService, IModelRepositoryControl
{
    private static readonly TimeSpan LoadTimeout = TimeSpan.FromMinutes(5);

    /// <inheritdoc />
    public Task StartAsync(CancellationToken cancellationToken) => ReloadAsync();

    /// <inheritdoc />
    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>Reads the folder again and applies what it declares.</summary>
    public async Task<RoutingTable> ReloadAsync()
    {
        var entries = source.Scan();
        foreach (var entry in entries)
        {
            if (entry.Spec is null)
            {
                LogRejected(entry.Name, entry.FailureReason ?? "", entry.FailureMessage ?? "");
            }
        }

        var registry = grains.GetGrain<IModelRegistryGrain>(IModelRegistryGrain.ClusterKey);
        var table = await registry.ApplyAsync(source.SourceName, entries);
        LogApplied(source.Folder, entries.Count(e => e.Spec is not null), entries.Count(e => e.Spec is null), table.Version);

        var activations = new List<Task>();
        foreach (var entry in table.Services)
        {
            if (entry.Spec is null)
            {
                continue;
            }

            foreach (var key in ReplicaKeys(entry))
            {
                activations.Add(grains.GetGrain<IModelGrain>(key).GetStatusAsync().AsTask());
            }
        }

        await Task.WhenAll(activations);
        return table;
    }

    /// <inheritdoc />
    public async Task LoadAsync(string model, CancellationToken cancellationToken)
    {
        var entry = source.Scan().FirstOrDefault(e => e.Name == model)
            ?? throw new InferenceException(InferenceErrorKind.NotFound, $"the model repository {source.Folder} declares no model '{model}'");
        var registry = grains.GetGrain<IModelRegistryGrain>(IModelRegistryGrain.ClusterKey);
        var previous = (await registry.GetTableAsync()).Services.FirstOrDefault(e => e.Namespace == entry.Namespace && e.Name == entry.Name);
        if (entry.Spec is null)
        {
            // Not servable as declared now: publish the reason so the index and requests report it.
            var failed = await registry.StageAsync(source.SourceName, entry);
            await registry.PublishAsync(failed.Namespace, failed.Name, failed.Revision);
            throw new InferenceException(InferenceErrorKind.InvalidInput, $"model '{model}' cannot be loaded: {entry.FailureReason}: {entry.FailureMessage}");
        }

        // The new revision loads while the current one keeps serving; it is published once it has settled.
        var staged = await registry.StageAsync(source.SourceName, entry);
        var replicas = ReplicaKeys(staged).Select(k => grains.GetGrain<IModelGrain>(k)).ToList();
        var deadline = DateTime.UtcNow + LoadTimeout;
        var status = new ModelStatus(ModelState.Pending);
        foreach (var replica in replicas)
        {
            while (true)
            {
                status = await replica.GetStatusAsync();
                if (status.IsSettled || DateTime.UtcNow > deadline)
                {
                    break;
                }

                await Task.Delay(20, cancellationToken);
            }

            if (status.State != ModelState.Loaded)
            {
                break;
            }
        }

        await registry.PublishAsync(staged.Namespace, staged.Name, staged.Revision);
        LogReloaded(model, staged.Revision, status.State);
        if (previous?.Spec is not null)
        {
            foreach (var key in ReplicaKeys(previous))
            {
                await grains.GetGrain<IModelGrain>(key).UnloadAsync();
            }
        }

        if (status.State != ModelState.Loaded)
        {
            throw new InferenceException(InferenceErrorKind.InvalidInput, $"model '{model}' failed to load: {status.Reason ?? status.State.ToString()}");
        }
    }

    /// <inheritdoc />
    public async Task UnloadAsync(string model, CancellationToken cancellationToken)
    {
        var registry = grains.GetGrain<IModelRegistryGrain>(IModelRegistryGrain.ClusterKey);
        var entry = (await registry.GetTableAsync()).Services.FirstOrDefault(e => e.Name == model)
            ?? throw InferenceException.ModelNotFound(model);
        await registry.MarkUnloadedAsync(entry.Namespace, entry.Name);
        foreach (var key in ReplicaKeys(entry))
        {
            await grains.GetGrain<IModelGrain>(key).UnloadAsync();
        }

        LogUnloaded(model);
    }

    /// <summary>The grain keys of every replica of every version an entry serves.</summary>
    public static IEnumerable<string> ReplicaKeys(ServiceEntry entry) =>
        entry.AllVersions.SelectMany(version => Enumerable.Range(0, entry.Replicas).Select(r => entry.ReplicaKey(r, version.Version).ToString()));

    [LoggerMessage(3, LogLevel.Information, "Model {Model} reloaded from the repository as revision {Revision}: {State}")]
    private partial void LogReloaded(string model, int revision, ModelState state);

    [LoggerMessage(4, LogLevel.Information, "Model {Model} unloaded")]
    private partial void LogUnloaded(string model);

    [LoggerMessage(1, LogLevel.Warning, "Model {Model} is not served: {Reason}: {Message}")]
    private partial void LogRejected(string model, string reason, string message);

    [LoggerMessage(2, LogLevel.Information, "Model repository {Folder}: {Served} models declared, {Rejected} rejected (routing table version {Version})")]
    private partial void LogApplied(string folder, int served, int rejected, long version);
}
