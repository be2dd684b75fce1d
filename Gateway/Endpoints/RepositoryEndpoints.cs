using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Logging;
using Orleans.KServe.Gateway.Serving;

namespace Orleans.KServe.Gateway.Endpoints;

/// <summary>The repository extension: Triton's index, KServe's and Triton's load and unload.</summary>
public static class RepositoryEndpoints
{
    /// <summary>Maps <c>GET|POST /v2/repository/index</c> and <c>POST /v2/repository/models/{model}/load|unload</c>.</summary>
    public static IEndpointRouteBuilder MapRepositoryApi(this IEndpointRouteBuilder endpoints, ServingLayer serving, ILogger logger)
    {
        var repository = endpoints.MapGroup("/v2/repository");
        repository.MapMethods("/index", [HttpMethods.Get, HttpMethods.Post], context => IndexAsync(context, serving));
        repository.MapPost("/models/{model}/load", context => RestSupport.GuardAsync(context, logger, async () =>
        {
            var model = RestSupport.Model(context);
            await serving.LoadAsync(model, context.RequestAborted);
            await WriteDoneAsync(context, model, "load");
        }));
        repository.MapPost("/models/{model}/unload", context => RestSupport.GuardAsync(context, logger, async () =>
        {
            var model = RestSupport.Model(context);
            await serving.UnloadAsync(model, context.RequestAborted);
            await WriteDoneAsync(context, model, "unload");
        }));
        return endpoints;
    }

    /// <summary>Every declared model with its state and reason (Triton's shape).</summary>
    private static async Task IndexAsync(HttpContext context, ServingLayer serving)
    {
        var index = await serving.IndexAsync();
        await HttpIo.WriteJsonAsync(context.Response, 200, index, static (w, entries) =>
        {
            w.WriteStartArray();
            foreach (var entry in entries)
            {
                w.WriteStartObject();
                w.WriteString("name", entry.Name);
                w.WriteString("version", entry.Version);
                w.WriteString("state", entry.State);
                w.WriteString("reason", entry.Reason);
                w.WriteEndObject();
            }

            w.WriteEndArray();
        });
    }

    private static Task WriteDoneAsync(HttpContext context, string model, string action) =>
        HttpIo.WriteJsonAsync(context.Response, 200, (model, action), static (w, s) =>
        {
            w.WriteStartObject();
            w.WriteString("name", s.model);
            w.WriteBoolean(s.action, true);
            w.WriteEndObject();
        });
}
