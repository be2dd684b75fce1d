using System.Diagnostics.Metrics;
using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using Orleans.KServe.Contracts.Serving;
using Orleans.KServe.Gateway.Endpoints;
using Orleans.KServe.Gateway.Grpc;
using Orleans.KServe.Gateway.Routing;

namespace Orleans.KServe.Gateway;

/// <summary>Registers and maps the inference gateway: v1 and v2 REST, v2 gRPC, health and metrics.</summary>
public static class GatewayHostingExtensions
{
    /// <summary>The meter of the Orleans.KServe instruments (the model grains record on it).</summary>
    public const string MeterName = "Orleans.KServe";

    /// <summary>
    /// Adds the gateway to a web application: its settings (<see cref="GatewayOptions"/>, from the <c>KServe</c>
    /// section, validated at start), Kestrel's two listeners and limits, the routing cache and its watcher, the
    /// handlers, the gRPC service and the Prometheus exporter. Runs in a silo (co-hosted, with the local fast path)
    /// or beside an Orleans client. Map it with <see cref="UseInferenceGateway"/>.
    /// </summary>
    public static WebApplicationBuilder AddInferenceGateway(this WebApplicationBuilder builder)
    {
        var options = new GatewayOptions();
        builder.Configuration.GetSection(GatewayOptions.Section).Bind(options);
        builder.Services.AddInferenceGateway(builder.Configuration);

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

        builder.Services.AddInferenceGrpc(grpc =>
        {
            grpc.MaxReceiveMessageSize = (int)options.GrpcMaxMessageBytes;
            grpc.MaxSendMessageSize = (int)options.GrpcMaxMessageBytes;
            grpc.CompressionProviders = BoundedCompressionProvider.All(options.EffectiveGrpcMaxDecompressedBytes);
        });
        return builder;
    }

    /// <summary>
    /// The gateway's middleware and endpoints, in order: the drain, the path template, routing, JSON error bodies,
    /// the gRPC request guard, <c>/metrics</c>, the REST endpoints and the gRPC service.
    /// </summary>
    public static WebApplication UseInferenceGateway(this WebApplication app)
    {
        GatewayDrain.UseDrain(app);

        // A path-template prefix names the namespace and is stripped before the routes match.
        app.Services.GetRequiredService<ModelRouter>().Addressing.UsePathTemplate(app);
        app.UseRouting();
        app.UseInferenceErrorBodies();
        app.UseGrpcRequestGuard();
        app.MapPrometheusScrapingEndpoint("/metrics");
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

    /// <summary>
    /// The gateway's services, its settings bound from <paramref name="configuration"/>'s <c>KServe</c> section and
    /// validated at start: the routing cache and its watcher, the REST handlers, the drain and the metrics exporter.
    /// </summary>
    public static IServiceCollection AddInferenceGateway(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<GatewayOptions>().Bind(configuration.GetSection(GatewayOptions.Section)).ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<GatewayOptions>, GatewayOptionsValidator>());
        services.TryAddSingleton(sp => sp.GetRequiredService<IOptions<GatewayOptions>>().Value);
        services.TryAddSingleton(sp => new ModelRouter(
            sp.GetRequiredService<IGrainFactory>(),
            sp.GetRequiredService<GatewayOptions>(),
            sp.GetRequiredService<ServerIdentity>(),
            sp.GetService<ILocalModelDirectory>(),
            sp.GetRequiredService<GatewayMetrics>().RecordRetry));
        services.TryAddSingleton<GatewayMetrics>();
        services.TryAddSingleton<RequestAdmission>();
        services.TryAddSingleton(sp => new Serving.RequestBytesBudget(sp.GetRequiredService<GatewayOptions>().EffectiveMaxBufferedRequestBytes));
        services.TryAddSingleton(sp => new Serving.ServingLayer(
            sp.GetRequiredService<ModelRouter>(),
            sp.GetRequiredService<RequestAdmission>(),
            sp.GetRequiredService<Serving.RequestBytesBudget>(),
            sp.GetRequiredService<GatewayDrain>(),
            sp.GetService<IModelRepositoryControl>()));
        services.TryAddSingleton<GatewayDrain>();
        services.AddHostedService(sp => sp.GetRequiredService<GatewayDrain>());
        services.AddHostedService<RoutingTableWatcher>();
        var identity = Identity(services);
        services.AddOpenTelemetry()
            .ConfigureResource(resource => resource.AddService(
                Serving.ServerDescription.Name, serviceVersion: Serving.ServerDescription.Version, serviceInstanceId: identity.InstanceId))
            .WithMetrics(metrics =>
            {
                // Scraped when Prometheus asks, not from a copy up to 300 ms old.
                metrics.AddMeter(MeterName).AddPrometheusExporter(prometheus => prometheus.ScrapeResponseCacheDurationMilliseconds = 0);

                // OpenTelemetry listens to meters by name, process-wide: two servers in one process (tests, a silo
                // and a front end) would each export the other's series. Each keeps the instruments of its own
                // container's meter factory.
                ((IDeferredMeterProviderBuilder)metrics).Configure((provider, builder) =>
                {
                    var mine = provider.GetRequiredService<IMeterFactory>();
                    builder.AddView(instrument => ReferenceEquals(instrument.Meter.Scope, mine) ? null : MetricStreamConfiguration.Drop);
                });
            });
        return services;
    }

    // One identity per server: its router's name in the registry and its telemetry's service.instance.id.
    private static ServerIdentity Identity(IServiceCollection services)
    {
        var identity = services.Where(d => !d.IsKeyedService).Select(d => d.ImplementationInstance).OfType<ServerIdentity>().FirstOrDefault();
        if (identity is null)
        {
            identity = new ServerIdentity();
            services.AddSingleton(identity);
        }

        return identity;
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
