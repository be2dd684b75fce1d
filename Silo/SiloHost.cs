using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Orleans.KServe.Gateway;
using Orleans.KServe.Contracts.Serving;
using Orleans.KServe.Gateway.Endpoints;
using Orleans.KServe.Gateway.Grpc;
using Orleans.KServe.Grains;
using Orleans.KServe.Operator.Rollout;
using Orleans.KServe.Operator.Sources;

namespace Orleans.KServe.Silo;

/// <summary>Thrown when the settings are invalid; the message lists every problem.</summary>
public sealed class InvalidServerOptionsException(IReadOnlyList<string> errors)
    : Exception("invalid settings:" + Environment.NewLine + string.Join(Environment.NewLine, errors.Select(e => "  - " + e)))
{
    /// <summary>The problems, one sentence each.</summary>
    public IReadOnlyList<string> Errors { get; } = errors;
}

/// <summary>
/// Builds the single-process server: one Orleans silo (localhost clustering, in-memory state) with the gateway
/// co-hosted, serving the model repository folder.
/// </summary>
public static class SiloHost
{
    /// <summary>Builds the application from command-line arguments; throws <see cref="InvalidServerOptionsException"/> on bad settings.</summary>
    public static WebApplication Build(string[] args, Action<WebApplicationBuilder>? customize = null)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = [] });
        builder.Configuration.AddCommandLine(args, ServerOptions.SwitchMappings);
        customize?.Invoke(builder);

        var options = new ServerOptions();
        try
        {
            builder.Configuration.GetSection(ServerOptions.Section).Bind(options);
        }
        catch (InvalidOperationException e)
        {
            throw new InvalidServerOptionsException([e.InnerException?.Message ?? e.Message]);
        }

        options.ModelRepository ??= ServerOptions.FindDefaultRepository(AppContext.BaseDirectory);
        var errors = options.Validate();
        if (errors.Count > 0)
        {
            throw new InvalidServerOptionsException(errors);
        }

        builder.Services.AddSingleton(options);
        // The drain runs inside the host's stop, before the listeners close: the stop may take both.
        builder.Services.Configure<HostOptions>(h => h.ShutdownTimeout = TimeSpan.FromSeconds(options.DrainDelaySeconds + options.ShutdownTimeoutSeconds));
        builder.Logging.AddFilter("Orleans", LogLevel.Warning);
        builder.Logging.AddFilter("Orleans.KServe", LogLevel.Information);
        builder.Logging.AddFilter("Polly", LogLevel.Warning);
        builder.Logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning);
        builder.Logging.AddSimpleConsole(c => c.SingleLine = true);

        if (options.TransportBlockBytes > 0)
        {
            // Kestrel's socket transport takes its pools from this factory (registered after Kestrel's own, so it wins).
            builder.Services.AddSingleton<IMemoryPoolFactory<byte>>(new TransportMemoryPoolFactory(options.TransportBlockBytes));
        }

        var endpoints = new ServerEndpoints();
        builder.Services.AddSingleton(endpoints);
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            kestrel.Limits.MaxRequestBodySize = options.MaxRequestBodyBytes;

            // Tensors of hundreds of KiB per gRPC message: windows wide enough that several streams of one
            // connection upload at once without waiting on WINDOW_UPDATE round trips.
            kestrel.Limits.Http2.InitialStreamWindowSize = 4 * 1024 * 1024;
            kestrel.Limits.Http2.InitialConnectionWindowSize = 16 * 1024 * 1024;
            endpoints.Http = Listen(kestrel, options.Host, options.HttpPort, HttpProtocols.Http1);
            endpoints.Grpc = GatewayDrain.TrackConnections(Listen(kestrel, options.Host, options.GrpcPort, HttpProtocols.Http2));
        });

        var siloPort = options.SiloPort == 0 ? FreePort() : options.SiloPort;
        var gatewayPort = options.GatewayPort == 0 ? FreePort() : options.GatewayPort;
        builder.UseOrleans(silo =>
        {
            silo.UseLocalhostClustering(siloPort, gatewayPort);
            silo.AddModelServing(executor => executor.Threads = options.ExecutorThreads);
        });

        builder.Services.AddSingleton(new LocalFolderSource(options.ModelRepository!));
        builder.Services.AddSingleton<RevisionRollout>();
        builder.Services.AddSingleton<LocalRepositoryService>();
        builder.Services.AddSingleton<IModelRepositoryControl>(sp => sp.GetRequiredService<LocalRepositoryService>());
        builder.Services.AddHostedService(sp => sp.GetRequiredService<LocalRepositoryService>());
        builder.Services.AddInferenceGateway(gateway =>
        {
            gateway.MaxRequestBodyBytes = options.MaxRequestBodyBytes;
            gateway.MaxInFlightRequests = options.MaxInFlightRequests;
            gateway.LocalFastPath = options.LocalFastPath;
            gateway.DrainDelay = TimeSpan.FromSeconds(options.DrainDelaySeconds);
            gateway.GrpcMaxMessageBytes = options.GrpcMaxMessageBytes;
            gateway.GrpcMaxDecompressedBytes = options.EffectiveGrpcMaxDecompressedBytes;
            gateway.MaxBufferedRequestBytes = options.EffectiveMaxBufferedRequestBytes;
        });
        builder.Services.AddInferenceGrpc(grpc =>
        {
            grpc.MaxReceiveMessageSize = (int)options.GrpcMaxMessageBytes;
            grpc.MaxSendMessageSize = (int)options.GrpcMaxMessageBytes;
            grpc.CompressionProviders = BoundedCompressionProvider.All(options.EffectiveGrpcMaxDecompressedBytes);
        });
        builder.Services.AddHostedService<ShutdownReporter>();

        var app = builder.Build();
        GatewayDrain.UseDrain(app);
        app.UseInferenceErrorBodies();
        app.MapPrometheusScrapingEndpoint("/metrics");
        app.UseGrpcRequestGuard();
        app.MapInferenceApi();
        app.MapInferenceGrpc();
        return app;
    }

    private static ListenOptions Listen(KestrelServerOptions kestrel, string host, int port, HttpProtocols protocols)
    {
        ListenOptions? listen = null;
        var address = host == "localhost" ? IPAddress.Loopback : IPAddress.Parse(host);
        kestrel.Listen(address, port, o =>
        {
            o.Protocols = protocols;
            listen = o;
        });
        return listen!;
    }

    /// <summary>A port free on the loopback interface right now.</summary>
    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}

/// <summary>The addresses the server listens on, known once it has started (ports 0 resolved).</summary>
public sealed class ServerEndpoints
{
    internal ListenOptions? Http { get; set; }

    internal ListenOptions? Grpc { get; set; }

    /// <summary>The REST (HTTP/1.1) address.</summary>
    public Uri HttpAddress => Address(Http);

    /// <summary>The gRPC (h2c) address.</summary>
    public Uri GrpcAddress => Address(Grpc);

    private static Uri Address(ListenOptions? listen) =>
        listen?.IPEndPoint is { } endpoint
            ? new Uri($"http://{(endpoint.Address.Equals(IPAddress.Any) ? IPAddress.Loopback : endpoint.Address)}:{endpoint.Port}")
            : throw new InvalidOperationException("the server has not started");
}

/// <summary>Says in the log when a stop begins (SIGTERM) and when the requests in flight have drained.</summary>
internal sealed partial class ShutdownReporter(
    IHostApplicationLifetime lifetime, InferenceHandlers handlers, ServerEndpoints endpoints, ILogger<ShutdownReporter> logger) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken)
    {
        lifetime.ApplicationStarted.Register(() => LogServing(endpoints.HttpAddress, endpoints.GrpcAddress));
        lifetime.ApplicationStopping.Register(() => LogStopping(handlers.InFlight));
        lifetime.ApplicationStopped.Register(() => LogStopped(handlers.InFlight));
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
