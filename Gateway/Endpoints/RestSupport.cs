using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Orleans.KServe.Contracts.Inference;
using Orleans.KServe.Gateway.Routing;
using Orleans.KServe.Gateway.Serving;

namespace Orleans.KServe.Gateway.Endpoints;

/// <summary>What every REST endpoint shares: reading its route, and answering a failure by the failure table.</summary>
internal static partial class RestSupport
{
    /// <summary>The route the request's <c>{model}</c> and <c>{version}</c> name (404 when not served).</summary>
    public static ModelRoute Route(HttpContext context, ServingLayer serving)
    {
        var values = context.Request.RouteValues;
        var model = values["model"] as string ?? throw InferenceException.Invalid("no model name in the path");
        return serving.Route(
            model, values.TryGetValue("version", out var v) ? v as string : null,
            context.Request.Host.Value, context.Features.Get<ModelNamespaceFeature>()?.Namespace);
    }

    /// <summary>The path's <c>{model}</c>.</summary>
    public static string Model(HttpContext context) => context.Request.RouteValues["model"] as string ?? "";

    /// <summary>Runs <paramref name="handle"/>, answering what it throws with its status and <c>{"error": …}</c>.</summary>
    public static async Task GuardAsync(HttpContext context, ILogger logger, Func<Task> handle)
    {
        try
        {
            await handle();
        }
        catch (Exception e)
        {
            await WriteFailureAsync(context, logger, e);
        }
    }

    /// <summary>Answers a failure: a server fault is logged; a response already under way is cut.</summary>
    public static async Task WriteFailureAsync(HttpContext context, ILogger logger, Exception e)
    {
        var (status, message) = FailureTable.ForHttp(e);
        if (status >= 500 && status != 503 && status != 501)
        {
            LogFailure(logger, context.Request.Path, e);
        }

        if (context.Response.HasStarted)
        {
            context.Abort();
            return;
        }

        context.Response.Clear();
        await HttpIo.WriteErrorAsync(context.Response, status, message);
    }

    /// <summary>Gives routing's bodiless 404 and 405 answers a JSON error naming the method and path.</summary>
    public static Task WriteStatusCodeErrorAsync(HttpContext context)
    {
        var request = context.Request;
        var message = context.Response.StatusCode switch
        {
            404 => $"no endpoint {request.Method} {request.Path}",
            405 => $"method {request.Method} is not allowed on {request.Path}",
            var status => $"{request.Method} {request.Path} failed with status {status}",
        };
        return HttpIo.WriteErrorAsync(context.Response, context.Response.StatusCode, message);
    }

    [LoggerMessage(1, LogLevel.Error, "Request {Path} failed")]
    private static partial void LogFailure(ILogger logger, PathString path, Exception exception);
}
