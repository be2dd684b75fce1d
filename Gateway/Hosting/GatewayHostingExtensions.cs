using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using OpenTelemetry.Metrics;
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
            sp.GetService<ILocalModelDirectory>()));
        services.TryAddSingleton<RequestAdmission>();
        services.TryAddSingleton(sp => new Serving.RequestBytesBudget(sp.GetRequiredService<GatewayOptions>().MaxBufferedRequestBytes));
        services.TryAddSingleton<InferenceHandlers>();
        services.TryAddSingleton<GatewayDrain>();
        services.AddHostedService(sp => sp.GetRequiredService<GatewayDrain>());
        services.AddHostedService<RoutingTableWatcher>();
        services.AddOpenTelemetry().WithMetrics(metrics => metrics
            .AddMeter(MeterName)
            .AddPrometheusExporter());
        return services;
    }
}
