using Orleans.KServe.Gateway;
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
        builder.Logging.AddFilter("Orleans.KServe", LogLevel.Information);
        builder.Logging.AddFilter("Polly", LogLevel.Warning);
        builder.Logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning);
        builder.Logging.AddSimpleConsole(c => c.SingleLine = true);

        builder.UseModelServingSilo();
        builder.Services.AddModelRepository(builder.Configuration);
        builder.AddInferenceGateway();
        builder.Services.AddHostedService<ShutdownReporter>();

        var app = builder.Build();
        app.UseInferenceGateway();
        return app;
    }
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
