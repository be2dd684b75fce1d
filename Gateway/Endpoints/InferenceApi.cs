using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Orleans.KServe.Gateway.Serving;

namespace Orleans.KServe.Gateway.Endpoints;

/// <summary>Maps KServe's v1 and v2 (Open Inference Protocol) REST endpoints, each area from its own group.</summary>
public static class InferenceApi
{
    /// <summary>Answers unknown paths (404) and wrong methods (405) with a JSON error body.</summary>
    public static IApplicationBuilder UseInferenceErrorBodies(this IApplicationBuilder app) =>
        app.UseStatusCodePages(context => RestSupport.WriteStatusCodeErrorAsync(context.HttpContext));

    /// <summary>Maps every REST endpoint of the inference protocols.</summary>
    public static IEndpointRouteBuilder MapInferenceApi(this IEndpointRouteBuilder endpoints)
    {
        var services = endpoints.ServiceProvider;
        var serving = services.GetRequiredService<ServingLayer>();
        var options = services.GetRequiredService<GatewayOptions>();
        var logger = services.GetRequiredService<ILoggerFactory>().CreateLogger("Orleans.KServe.Gateway.Endpoints");
        endpoints.MapHealthApi(serving);
        endpoints.MapModelApi(serving, logger);
        endpoints.MapInferenceEndpoints(serving, options, logger);
        endpoints.MapRepositoryApi(serving, logger);
        return endpoints;
    }
}
