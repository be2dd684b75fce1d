using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Orleans.KServe.Gateway.Serving;

namespace Orleans.KServe.Gateway.Endpoints;

/// <summary>Liveness, readiness and server metadata: KServe ModelServer's <c>/</c> and the protocol's <c>/v2</c> routes.</summary>
public static class HealthEndpoints
{
    /// <summary>Maps <c>GET /</c>, <c>GET /v2</c>, <c>GET /v2/health/live</c> and <c>GET /v2/health/ready</c>.</summary>
    public static IEndpointRouteBuilder MapHealthApi(this IEndpointRouteBuilder endpoints, ServingLayer serving)
    {
        // KServe's ModelServer answers its liveness here; KServe's REST client asks it for the v1 protocol's is_server_live.
        endpoints.MapGet("/", AliveAsync);
        var v2 = endpoints.MapGroup("/v2");
        v2.MapGet("", ServerMetadataAsync);
        v2.MapGet("/health/live", context => WriteFlagAsync(context, 200, "live", true));
        v2.MapGet("/health/ready", context => ReadyAsync(context, serving));
        return endpoints;
    }

    private static Task AliveAsync(HttpContext context) =>
        HttpIo.WriteJsonAsync(context.Response, 200, 0, static (w, _) =>
        {
            w.WriteStartObject();
            w.WriteString("status", "alive");
            w.WriteEndObject();
        });

    private static Task ServerMetadataAsync(HttpContext context) =>
        HttpIo.WriteJsonAsync(context.Response, 200, 0, static (w, _) =>
        {
            w.WriteStartObject();
            w.WriteString("name", ServerDescription.Name);
            w.WriteString("version", ServerDescription.Version);
            w.WriteStartArray("extensions");
            foreach (var extension in ServerDescription.Extensions)
            {
                w.WriteStringValue(extension);
            }

            w.WriteEndArray();
            w.WriteEndObject();
        });

    private static async Task ReadyAsync(HttpContext context, ServingLayer serving)
    {
        var ready = await serving.IsReadyAsync();
        await WriteFlagAsync(context, ready ? 200 : 503, "ready", ready);
    }

    private static Task WriteFlagAsync(HttpContext context, int status, string name, bool value) =>
        HttpIo.WriteJsonAsync(context.Response, status, (name, value), static (w, s) =>
        {
            w.WriteStartObject();
            w.WriteBoolean(s.name, s.value);
            w.WriteEndObject();
        });
}
