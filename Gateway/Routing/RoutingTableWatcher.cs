using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Orleans.KServe.Contracts.Grains;

namespace Orleans.KServe.Gateway.Routing;

/// <summary>
/// Keeps <see cref="ModelRouter"/> current: loads the table at start, then long-polls the registry for changes. Each
/// poll names the router and the table it routes by, which is how a rollout knows every router has switched.
/// </summary>
public sealed partial class RoutingTableWatcher(IGrainFactory grains, ModelRouter router, ILogger<RoutingTableWatcher> logger) : BackgroundService
{
    private static readonly TimeSpan PollWait = TimeSpan.FromSeconds(15);

    /// <inheritdoc />
    public override async Task StartAsync(CancellationToken cancellationToken)
    {
        // The first table arrives before the gateway starts listening, so no request meets an empty router.
        var registry = grains.GetGrain<IModelRegistryGrain>(IModelRegistryGrain.ClusterKey);
        router.Update(await registry.GetTableAsync());
        await base.StartAsync(cancellationToken);
    }

    /// <inheritdoc />
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var registry = grains.GetGrain<IModelRegistryGrain>(IModelRegistryGrain.ClusterKey);
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                var table = await registry.WaitForChangeAsync(router.Version, PollWait, router.Id, stoppingToken).WaitAsync(stoppingToken);
                if (table.Version != router.Version)
                {
                    router.Update(table);
                    LogUpdated(table.Version, table.Services.Length);
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                LogWatchFailed(e);
                await Task.Delay(TimeSpan.FromSeconds(1), stoppingToken).ContinueWith(_ => { }, TaskScheduler.Default);
            }
        }
    }

    /// <inheritdoc />
    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken);
        try
        {
            // No rollout waits for a router that has stopped.
            await grains.GetGrain<IModelRegistryGrain>(IModelRegistryGrain.ClusterKey).LeaveAsync(router.Id).AsTask()
                .WaitAsync(TimeSpan.FromSeconds(5), cancellationToken);
        }
        catch (OperationCanceledException)
        {
            // The stop's own deadline passed: the registry takes the router as gone after a watch's length anyway.
        }
        catch (Exception e)
        {
            LogLeaveFailed(e);
        }
    }

    [LoggerMessage(3, LogLevel.Warning, "Could not tell the model registry that this router stops")]
    private partial void LogLeaveFailed(Exception exception);

    [LoggerMessage(1, LogLevel.Information, "Routing table version {Version}: {Count} models")]
    private partial void LogUpdated(long version, int count);

    [LoggerMessage(2, LogLevel.Warning, "Watching the model registry failed; retrying")]
    private partial void LogWatchFailed(Exception exception);
}
