using System.Reflection;
using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Orleans.KServe.Contracts.Inference;
using Orleans.KServe.Contracts.Models;
using Orleans.KServe.Contracts.Tensors;
using Orleans.KServe.Gateway.Codecs;
using Orleans.KServe.Gateway.Routing;

namespace Orleans.KServe.Gateway.Endpoints;

/// <summary>The v1 and v2 REST handlers. One instance per gateway; every handler is safe to run concurrently.</summary>
public sealed partial class InferenceHandlers(ModelRouter router, GatewayOptions options, ILogger<InferenceHandlers> logger)
{
    private static readonly string ServerVersion =
        typeof(InferenceHandlers).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? "0.0.0";

    private int _inFlight;

    /// <summary>Inference requests in progress.</summary>
    public int InFlight => Volatile.Read(ref _inFlight);

    /// <summary><c>GET /v2</c>.</summary>
    public Task ServerMetadataAsync(HttpContext context) =>
        HttpIo.WriteJsonAsync(context.Response, 200, 0, static (w, _) =>
        {
            w.WriteStartObject();
            w.WriteString("name", "orleans-kserve");
            w.WriteString("version", ServerVersion);
            w.WriteStartArray("extensions");
            w.WriteStringValue("model_repository");
            w.WriteEndArray();
            w.WriteEndObject();
        });

    /// <summary><c>GET /v2/health/live</c>.</summary>
    public Task LiveAsync(HttpContext context) => WriteFlagAsync(context, 200, "live", true);

    /// <summary><c>GET /v2/health/ready</c>: ready when the routing table arrived and every model is Loaded or FailedToLoad.</summary>
    public async Task ReadyAsync(HttpContext context)
    {
        var ready = await IsReadyAsync();
        await WriteFlagAsync(context, ready ? 200 : 503, "ready", ready);
    }

    /// <summary>True when every declared model has settled (loaded, or failed with a reason).</summary>
    public async Task<bool> IsReadyAsync()
    {
        if (router.Version < 0)
        {
            return false;
        }

        foreach (var route in router.Routes)
        {
            var status = await router.GetStatusAsync(route);
            if (status.State is not (ModelState.Loaded or ModelState.FailedToLoad))
            {
                return false;
            }
        }

        return true;
    }

    private static Task WriteFlagAsync(HttpContext context, int status, string name, bool value) =>
        HttpIo.WriteJsonAsync(context.Response, status, (name, value), static (w, s) =>
        {
            w.WriteStartObject();
            w.WriteBoolean(s.name, s.value);
            w.WriteEndObject();
        });

    /// <summary><c>GET /v2/models</c> and <c>GET /v1/models</c>: the served model names.</summary>
    public Task ListModelsAsync(HttpContext context) =>
        HttpIo.WriteJsonAsync(context.Response, 200, router.Routes, static (w, routes) =>
        {
            w.WriteStartObject();
            w.WriteStartArray("models");
            foreach (var route in routes)
            {
                if (route.Grain is not null)
                {
                    w.WriteStringValue(route.Name);
                }
            }

            w.WriteEndArray();
            w.WriteEndObject();
        });

    /// <summary><c>GET /v2/models/{model}[/versions/{version}]</c>.</summary>
    public Task ModelMetadataAsync(HttpContext context) => GuardAsync(context, async () =>
    {
        var route = Route(context);
        var metadata = await router.GetMetadataAsync(route);
        await HttpIo.WriteJsonAsync(context.Response, 200, metadata, static (w, m) =>
        {
            w.WriteStartObject();
            w.WriteString("name", m.Name);
            w.WriteStartArray("versions");
            foreach (var v in m.Versions)
            {
                w.WriteStringValue(v);
            }

            w.WriteEndArray();
            w.WriteString("platform", m.Platform);
            WriteTensorMetadata(w, "inputs", m.Inputs);
            WriteTensorMetadata(w, "outputs", m.Outputs);
            w.WriteEndObject();
        });
    });

    private static void WriteTensorMetadata(Utf8JsonWriter w, string property, IEnumerable<TensorMetadata> tensors)
    {
        w.WriteStartArray(property);
        foreach (var t in tensors)
        {
            w.WriteStartObject();
            w.WriteString("name", t.Name);
            w.WriteString("datatype", t.DataType.ToProtocolName());
            w.WriteStartArray("shape");
            foreach (var d in t.Shape)
            {
                w.WriteNumberValue(d);
            }

            w.WriteEndArray();
            w.WriteEndObject();
        }

        w.WriteEndArray();
    }

    /// <summary><c>GET /v2/models/{model}[/versions/{version}]/ready</c> and <c>GET /v1/models/{model}</c>: 200 when ready, 503 otherwise.</summary>
    public Task ModelReadyAsync(HttpContext context) => GuardAsync(context, async () =>
    {
        var route = Route(context);
        var status = await router.GetStatusAsync(route);
        var ready = status.State == ModelState.Loaded;
        await HttpIo.WriteJsonAsync(context.Response, ready ? 200 : 503, (route.Name, ready, status), static (w, s) =>
        {
            w.WriteStartObject();
            w.WriteString("name", s.Name);
            w.WriteBoolean("ready", s.ready);
            if (!s.ready)
            {
                w.WriteString("error", $"model '{s.Name}' is {Describe(s.status)}");
            }

            w.WriteEndObject();
        });
    });

    private static string Describe(ModelStatus status) => status.State switch
    {
        ModelState.FailedToLoad => $"not ready: it failed to load: {status.Reason}",
        ModelState.Unloaded => "unloaded",
        _ => "loading",
    };

    /// <summary><c>POST|GET /v2/repository/index</c>: every declared model with its state and reason (Triton's shape).</summary>
    public async Task RepositoryIndexAsync(HttpContext context)
    {
        var routes = router.Routes;
        var statuses = new ModelStatus[routes.Count];
        for (var i = 0; i < routes.Count; i++)
        {
            try
            {
                statuses[i] = await router.GetStatusAsync(routes[i]);
            }
            catch (Exception e)
            {
                statuses[i] = new ModelStatus(ModelState.FailedToLoad, HttpIo.Classify(e).Message);
            }
        }

        await HttpIo.WriteJsonAsync(context.Response, 200, (routes, statuses), static (w, s) =>
        {
            w.WriteStartArray();
            for (var i = 0; i < s.routes.Count; i++)
            {
                var status = s.statuses[i];
                w.WriteStartObject();
                w.WriteString("name", s.routes[i].Name);
                w.WriteString("version", s.routes[i].Version);
                w.WriteString("state", status.State switch
                {
                    ModelState.Loaded => "READY",
                    ModelState.Loading or ModelState.Pending => "LOADING",
                    _ => "UNAVAILABLE",
                });
                w.WriteString("reason", status.Reason ?? "");
                w.WriteEndObject();
            }

            w.WriteEndArray();
        });
    }

    /// <summary><c>POST /v2/models/{model}[/versions/{version}]/infer</c> with a JSON body.</summary>
    public Task InferV2Async(HttpContext context) => RunInferenceAsync(context, static async (handlers, context, buffers) =>
    {
        var route = handlers.Route(context);
        handlers.Router.EnsureAvailable(route);
        var body = await HttpIo.ReadBodyAsync(context.Request, handlers.Options.MaxRequestBodyBytes, buffers);
        var request = V2JsonCodec.DecodeRequest(body.Span, buffers);
        var response = await handlers.Router.InferAsync(route, request);
        await HttpIo.WriteJsonAsync(context.Response, 200, response, V2JsonCodec.WriteResponse);
    });

    /// <summary><c>POST /v1/models/{model}:predict</c>.</summary>
    public Task PredictV1Async(HttpContext context) => RunInferenceAsync(context, static async (handlers, context, buffers) =>
    {
        var route = handlers.Route(context);
        handlers.Router.EnsureAvailable(route);
        var body = await HttpIo.ReadBodyAsync(context.Request, handlers.Options.MaxRequestBodyBytes, buffers);
        var metadata = await handlers.Router.GetMetadataAsync(route);
        var request = V1JsonCodec.DecodeRequest(body.Span, metadata, buffers);
        var rows = request.Inputs[0].Shape.Length > 0 ? request.Inputs[0].Shape[0] : 1;
        var response = await handlers.Router.InferAsync(route, request);
        await HttpIo.WriteJsonAsync(context.Response, 200, (response, rows), static (w, s) => V1JsonCodec.WriteResponse(w, s.response, s.rows));
    });

    /// <summary><c>POST /v1/models/{model}:explain</c>: 501 until an explainer can be declared.</summary>
    public Task ExplainV1Async(HttpContext context) => GuardAsync(context, () =>
    {
        var route = Route(context);
        throw new InferenceException(InferenceErrorKind.NotImplemented, $"model '{route.Name}' has no explainer");
    });

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

    internal ModelRouter Router => router;

    internal GatewayOptions Options => options;

    private ModelRoute Route(HttpContext context)
    {
        var values = context.Request.RouteValues;
        var model = values["model"] as string ?? throw InferenceException.Invalid("no model name in the path");
        return router.Get(model, values.TryGetValue("version", out var v) ? v as string : null);
    }

    private async Task RunInferenceAsync(HttpContext context, Func<InferenceHandlers, HttpContext, PooledBuffers, Task> handle)
    {
        if (Interlocked.Increment(ref _inFlight) > options.MaxInFlightRequests)
        {
            Interlocked.Decrement(ref _inFlight);
            context.Response.Headers.RetryAfter = "1";
            await HttpIo.WriteErrorAsync(context.Response, 503,
                $"the server is at its limit of {options.MaxInFlightRequests} inference requests in flight; retry later");
            return;
        }

        var buffers = new PooledBuffers();
        var release = true;
        try
        {
            await handle(this, context, buffers);
        }
        catch (Exception e)
        {
            // A call that timed out may still be reading the request's buffers somewhere: let the GC have them.
            release = e is not (TimeoutException or OperationCanceledException);
            await WriteFailureAsync(context, e);
        }
        finally
        {
            if (release)
            {
                buffers.Dispose();
            }
            else
            {
                buffers.Abandon();
            }

            Interlocked.Decrement(ref _inFlight);
        }
    }

    private async Task GuardAsync(HttpContext context, Func<Task> handle)
    {
        try
        {
            await handle();
        }
        catch (Exception e)
        {
            await WriteFailureAsync(context, e);
        }
    }

    private async Task WriteFailureAsync(HttpContext context, Exception e)
    {
        var (status, message) = HttpIo.Classify(e);
        if (status >= 500 && status != 503 && status != 501)
        {
            LogFailure(context.Request.Path, e);
        }

        if (context.Response.HasStarted)
        {
            context.Abort();
            return;
        }

        context.Response.Clear();
        await HttpIo.WriteErrorAsync(context.Response, status, message);
    }

    [LoggerMessage(1, LogLevel.Error, "Request {Path} failed")]
    private partial void LogFailure(PathString path, Exception exception);
}
