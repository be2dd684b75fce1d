using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace Orleans.KServe.Gateway.Endpoints;

/// <summary>Maps KServe's v1 and v2 (Open Inference Protocol) REST endpoints.</summary>
public static class InferenceApi
{
    /// <summary>Answers unknown paths (404) and wrong methods (405) with a JSON error body.</summary>
    public static IApplicationBuilder UseInferenceErrorBodies(this IApplicationBuilder app) =>
        app.UseStatusCodePages(context => InferenceHandlers.WriteStatusCodeErrorAsync(context.HttpContext));

    /// <summary>Maps every REST endpoint of the inference protocols.</summary>
    public static IEndpointRouteBuilder MapInferenceApi(this IEndpointRouteBuilder endpoints)
    {
        var h = endpoints.ServiceProvider.GetRequiredService<InferenceHandlers>();

        // KServe's ModelServer answers its liveness here; KServe's REST client asks it for the v1 protocol's is_server_live.
        endpoints.MapGet("/", h.AliveAsync);

        var v2 = endpoints.MapGroup("/v2");
        v2.MapGet("", h.ServerMetadataAsync);
        v2.MapGet("/health/live", h.LiveAsync);
        v2.MapGet("/health/ready", h.ReadyAsync);
        v2.MapGet("/models", h.ListModelsAsync);
        v2.MapGet("/models/{model}", h.ModelMetadataAsync);
        v2.MapGet("/models/{model}/versions/{version}", h.ModelMetadataAsync);
        v2.MapGet("/models/{model}/ready", h.ModelReadyAsync);
        v2.MapGet("/models/{model}/versions/{version}/ready", h.ModelReadyAsync);
        v2.MapPost("/models/{model}/infer", h.InferV2Async);
        v2.MapPost("/models/{model}/versions/{version}/infer", h.InferV2Async);
        v2.MapGet("/models/stats", h.ModelStatsAsync);
        v2.MapGet("/models/{model}/stats", h.ModelStatsAsync);
        v2.MapGet("/models/{model}/versions/{version}/stats", h.ModelStatsAsync);
        v2.MapGet("/models/{model}/config", h.ModelConfigAsync);
        v2.MapGet("/models/{model}/versions/{version}/config", h.ModelConfigAsync);
        v2.MapMethods("/repository/index", [HttpMethods.Get, HttpMethods.Post], h.RepositoryIndexAsync);
        v2.MapPost("/repository/models/{model}/load", h.RepositoryLoadAsync);
        v2.MapPost("/repository/models/{model}/unload", h.RepositoryUnloadAsync);

        var v1 = endpoints.MapGroup("/v1");
        v1.MapGet("/models", h.ListModelsAsync);
        v1.MapGet("/models/{model}", h.ModelReadyAsync);
        v1.MapPost("/models/{model}:predict", h.PredictV1Async);
        v1.MapPost("/models/{model}:explain", h.ExplainV1Async);

        return endpoints;
    }
}
