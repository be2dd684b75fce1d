using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Http.Features;
using Orleans.KServe.Gateway;
using Orleans.Runtime;
using Orleans.KServe.Gateway.Serving;
using Orleans.KServe.Operator.Hosting;

namespace Orleans.KServe.Silo;

/// <summary>
/// Builds the server from its parts: the silo (clustering, model serving), the folder of KServe resources, and the
/// gateway co-hosted in the silo. Each part owns its settings; <see cref="ServerSettings"/> checks them all first.
/// </summary>
public static class SiloHost
{
    /// <summary>Builds the application from command-line arguments; throws <see cref="InvalidServerOptionsException"/> on bad settings.</summary>
    public static WebApplication Build(string[] args, Action<WebApplicationBuilder>? customize = null)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = [] });
        builder.Configuration.AddCommandLine(args, ServerSettings.SwitchMappings);
        customize?.Invoke(builder);
        ServerSettings.Check(args, builder.Configuration);

        builder.Logging.AddFilter("Orleans", LogLevel.Warning);

        // Suspicions, votes and deaths of silos: rare, and what an operator reads first after a silo was lost.
        builder.Logging.AddFilter("Orleans.Runtime.MembershipService.MembershipTableManager", LogLevel.Information);
        builder.Logging.AddFilter("Orleans.Runtime.MembershipService.ClusterHealthMonitor", LogLevel.Information);
        builder.Logging.AddFilter("Orleans.KServe", LogLevel.Information);
        builder.Logging.AddFilter("Polly", LogLevel.Warning);
        builder.Logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning);
        builder.Logging.AddSimpleConsole(c => c.SingleLine = true);

        builder.Services.AddClusteringInit(builder.Configuration);
        var roles = ServerRoles.Parse(builder.Configuration.GetSection(ServerSettings.Section)[nameof(SiloOptions.Role)]);
        if (roles.HostsModels)
        {
            builder.UseModelServingSilo();
            builder.Services.AddModelRepository(builder.Configuration);
        }
        else
        {
            builder.UseModelServingClient();
        }

        if (!roles.ServesFrontEnd)
        {
            // A silo-only process opens no HTTP port: the web host runs without a server.
            builder.Services.AddSingleton<IServer, NoListenerServer>();
            builder.Services.AddHostedService<SiloReporter>();
            return builder.Build();
        }

        builder.AddInferenceGateway();
        builder.Services.AddHostedService<ShutdownReporter>();

        var app = builder.Build();
        app.UseInferenceGateway();
        app.MapClusterEndpoints();
        return app;
    }
}

/// <summary>The web host's server in a silo-only process: it listens nowhere.</summary>
internal sealed class NoListenerServer : IServer
{
    public IFeatureCollection Features { get; } = new FeatureCollection();

    public Task StartAsync<TContext>(IHttpApplication<TContext> application, CancellationToken cancellationToken)
        where TContext : notnull => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public void Dispose()
    {
    }
}

/// <summary>Says in the log that a silo-only process has joined its cluster, and when it stops.</summary>
internal sealed partial class SiloReporter(
    IHostApplicationLifetime lifetime, ILocalSiloDetails silo, ILogger<SiloReporter> logger) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken)
    {
        lifetime.ApplicationStarted.Register(() => LogHosting(silo.SiloAddress.ToParsableString(), silo.GatewayAddress?.ToParsableString()));
        lifetime.ApplicationStopping.Register(LogStopping);
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    [LoggerMessage(4, LogLevel.Information, "Hosting models as silo {Silo} (client gateway {Gateway}); no HTTP ports (--role silo)")]
    private partial void LogHosting(string silo, string? gateway);

    [LoggerMessage(5, LogLevel.Information, "Stopping: the silo leaves its cluster")]
    private partial void LogStopping();
}

/// <summary>Says in the log when a stop begins (SIGTERM) and when the requests in flight have drained.</summary>
internal sealed partial class ShutdownReporter(
    IHostApplicationLifetime lifetime, ServingLayer serving, ServerEndpoints endpoints, ILogger<ShutdownReporter> logger) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken)
    {
        lifetime.ApplicationStarted.Register(() => LogServing(endpoints.HttpAddress, endpoints.GrpcAddress));
        lifetime.ApplicationStopping.Register(() => LogStopping(serving.InFlight));
        lifetime.ApplicationStopped.Register(() => LogStopped(serving.InFlight));
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    [LoggerMessage(3, LogLevel.Information, "Serving REST (v1, v2) on {Rest} and gRPC (v2, h2c) on {Grpc}")]
    private partial void LogServing(Uri rest, Uri grpc);

    [LoggerMessage(1, LogLevel.Information, "Stopping: draining {InFlight} inference requests in flight")]
    private partial void LogStopping(int inFlight);

    [LoggerMessage(2, LogLevel.Information, "Stopped: {InFlight} inference requests left in flight")]
    private partial void LogStopped(int inFlight);
}
