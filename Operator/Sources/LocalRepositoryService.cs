using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Orleans.KServe.Contracts.Grains;
using Orleans.KServe.Contracts.Models;

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
    ILogger<LocalRepositoryService> logger) : IHostedService
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

            for (var replica = 0; replica < entry.Replicas; replica++)
            {
                activations.Add(grains.GetGrain<IModelGrain>(entry.ReplicaKey(replica).ToString()).GetStatusAsync().AsTask());
            }
        }

        await Task.WhenAll(activations);
        return table;
    }

    [LoggerMessage(1, LogLevel.Warning, "Model {Model} is not served: {Reason}: {Message}")]
    private partial void LogRejected(string model, string reason, string message);

    [LoggerMessage(2, LogLevel.Information, "Model repository {Folder}: {Served} models declared, {Rejected} rejected (routing table version {Version})")]
    private partial void LogApplied(string folder, int served, int rejected, long version);
}
