using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using System.Diagnostics.Metrics;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using Orleans.KServe.Contracts.Serving;
using Orleans.KServe.Gateway.Endpoints;
using Orleans.KServe.Gateway.Routing;

namespace Orleans.KServe.Gateway;

/// <summary>Registers the inference gateway.</summary>
public static class GatewayHostingExtensions
{
    /// <summary>The meter of the Orleans.KServe instruments (the model grains record on it).</summary>
    public const string MeterName = "Orleans.KServe";

    /// <summary>
    /// Adds the routing cache and its watcher, the REST handlers and the Prometheus metrics exporter. Runs in a silo
    /// (co-hosted, with the local fast path) or beside an Orleans client.
    /// </summary>
    public static IServiceCollection AddInferenceGateway(this IServiceCollection services, Action<GatewayOptions>? configure = null)
    {
        var options = services.AddOptions<GatewayOptions>();
        if (configure is not null)
        {
            options.Configure(configure);
        }

        options.ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<GatewayOptions>, GatewayOptionsValidator>());
        services.TryAddSingleton(sp => sp.GetRequiredService<IOptions<GatewayOptions>>().Value);
        services.TryAddSingleton(sp => new ModelRouter(
            sp.GetRequiredService<IGrainFactory>(),
            sp.GetRequiredService<GatewayOptions>(),
            sp.GetRequiredService<ServerIdentity>(),
            sp.GetService<ILocalModelDirectory>()));
        services.TryAddSingleton<RequestAdmission>();
        services.TryAddSingleton(sp => new Serving.RequestBytesBudget(sp.GetRequiredService<GatewayOptions>().MaxBufferedRequestBytes));
        services.TryAddSingleton<InferenceHandlers>();
        services.TryAddSingleton<GatewayDrain>();
        services.AddHostedService(sp => sp.GetRequiredService<GatewayDrain>());
        services.AddHostedService<RoutingTableWatcher>();
        var identity = Identity(services);
        services.AddOpenTelemetry()
            .ConfigureResource(resource => resource.AddService(
                InferenceHandlers.ServerName, serviceVersion: InferenceHandlers.ServerVersion, serviceInstanceId: identity.InstanceId))
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
