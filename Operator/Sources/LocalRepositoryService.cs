using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Orleans.KServe.Contracts.Grains;
using Orleans.KServe.Contracts.Inference;
using Orleans.KServe.Contracts.Models;
using Orleans.KServe.Contracts.Serving;
using Orleans.KServe.Operator.Rollout;

namespace Orleans.KServe.Operator.Sources;

/// <summary>
/// Feeds the local folder's declarations to the cluster registry at start (and on <see cref="ReloadAsync"/>), then
/// activates every declared replica so models load before the first request.
/// </summary>
public sealed partial class LocalRepositoryService(
    LocalFolderSource source,
    IGrainFactory grains,
    RevisionRollout rollout,
    ILogger<LocalRepositoryService> logger) : IHostedService, IModelRepositoryControl
{
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

            foreach (var key in entry.ReplicaKeys())
            {
                activations.Add(grains.GetGrain<IModelGrain>(key.ToString()).GetStatusAsync().AsTask());
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

        // The new revision loads while the current one keeps serving; it serves once loaded, and the call answers
        // once every router routes to it.
        var result = await rollout.RollOutAsync(source.SourceName, entry, cancellationToken);
        LogReloaded(model, result.Entry.Revision, result.Status.State);
        if (entry.Spec is null)
        {
            throw new InferenceException(InferenceErrorKind.InvalidInput, $"model '{model}' cannot be loaded: {entry.FailureReason}: {entry.FailureMessage}");
        }

        if (result.Status.State != ModelState.Loaded)
        {
            var kept = result.Published ? "" : "; the revision that served keeps serving";
            throw new InferenceException(InferenceErrorKind.InvalidInput,
                $"model '{model}' failed to load: {result.Status.Reason ?? result.Status.State.ToString()}{kept}");
        }
    }

    /// <inheritdoc />
    public async Task UnloadAsync(string model, CancellationToken cancellationToken)
    {
        var registry = grains.GetGrain<IModelRegistryGrain>(IModelRegistryGrain.ClusterKey);
        var entry = (await registry.GetTableAsync()).Services.FirstOrDefault(e => e.Name == model)
            ?? throw InferenceException.ModelNotFound(model);
        await registry.MarkUnloadedAsync(entry.Namespace, entry.Name);
        foreach (var key in entry.ReplicaKeys())
        {
            await grains.GetGrain<IModelGrain>(key.ToString()).UnloadAsync();
        }

        LogUnloaded(model);
    }

    [LoggerMessage(3, LogLevel.Information, "Model {Model} reloaded from the repository as revision {Revision}: {State}")]
    private partial void LogReloaded(string model, int revision, ModelState state);

    [LoggerMessage(4, LogLevel.Information, "Model {Model} unloaded")]
    private partial void LogUnloaded(string model);

    [LoggerMessage(1, LogLevel.Warning, "Model {Model} is not served: {Reason}: {Message}")]
    private partial void LogRejected(string model, string reason, string message);

    [LoggerMessage(2, LogLevel.Information, "Model repository {Folder}: {Served} models declared, {Rejected} rejected (routing table version {Version})")]
    private partial void LogApplied(string folder, int served, int rejected, long version);
}
