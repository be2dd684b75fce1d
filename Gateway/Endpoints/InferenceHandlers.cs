using System.Reflection;
using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Orleans.KServe.Contracts.Inference;
using Orleans.KServe.Contracts.Models;
using Orleans.KServe.Contracts.Serving;
using Orleans.KServe.Contracts.Tensors;
using Orleans.KServe.Gateway.Codecs;
using Orleans.KServe.Gateway.Routing;
using Orleans.KServe.Gateway.Serving;

namespace Orleans.KServe.Gateway.Endpoints;

/// <summary>The v1 and v2 REST handlers. One instance per gateway; every handler is safe to run concurrently.</summary>
public sealed partial class InferenceHandlers(
    ModelRouter router,
    GatewayOptions options,
    RequestAdmission admission,
    Serving.RequestBytesBudget budget,
    GatewayDrain drain,
    ILogger<InferenceHandlers> logger,
    IModelRepositoryControl? repository = null)
{
    /// <summary>The server name reported by server metadata.</summary>
    public const string ServerName = "orleans-kserve";

    /// <summary>The server version reported by server metadata.</summary>
    public static readonly string ServerVersion =
        typeof(InferenceHandlers).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? "0.0.0";

    /// <summary>The protocol extensions served.</summary>
    public static readonly IReadOnlyList<string> Extensions = ["model_repository", "model_configuration", "statistics", "binary_tensor_data"];

    /// <summary>Inference requests in progress.</summary>
    public int InFlight => admission.InFlight;

    /// <summary><c>GET /v2</c>.</summary>
    public Task ServerMetadataAsync(HttpContext context) =>
        HttpIo.WriteJsonAsync(context.Response, 200, 0, static (w, _) =>
        {
            w.WriteStartObject();
            w.WriteString("name", ServerName);
            w.WriteString("version", ServerVersion);
            w.WriteStartArray("extensions");
            foreach (var extension in Extensions)
            {
                w.WriteStringValue(extension);
            }

            w.WriteEndArray();
            w.WriteEndObject();
        });

    /// <summary><c>GET /</c>: KServe ModelServer's liveness, <c>{"status": "alive"}</c>.</summary>
    public Task AliveAsync(HttpContext context) =>
        HttpIo.WriteJsonAsync(context.Response, 200, 0, static (w, _) =>
        {
            w.WriteStartObject();
            w.WriteString("status", "alive");
            w.WriteEndObject();
        });

    /// <summary><c>GET /v2/health/live</c>.</summary>
    public Task LiveAsync(HttpContext context) => WriteFlagAsync(context, 200, "live", true);

    /// <summary>
    /// <c>GET /v2/health/ready</c>: ready when the routing table arrived and every model is Loaded or FailedToLoad,
    /// and not once the server has begun to stop (503 from SIGTERM on, while it drains).
    /// </summary>
    public async Task ReadyAsync(HttpContext context)
    {
        var ready = await IsReadyAsync();
        await WriteFlagAsync(context, ready ? 200 : 503, "ready", ready);
    }

    /// <summary>True when every declared model has settled (loaded, or failed with a reason).</summary>
    public async Task<bool> IsReadyAsync()
    {
        if (router.Version < 0 || drain.Draining)
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
        HttpIo.WriteJsonAsync(context.Response, 200, router.Routes.Where(r => r.Grain is not null).Select(r => r.Name).Distinct().ToList(), static (w, names) =>
        {
            w.WriteStartObject();
            w.WriteStartArray("models");
            foreach (var name in names)
            {
                w.WriteStringValue(name);
            }

            w.WriteEndArray();
            w.WriteEndObject();
        });

    /// <summary><c>GET /v2/models/{model}[/versions/{version}]</c>.</summary>
    public Task ModelMetadataAsync(HttpContext context) => GuardAsync(context, async () =>
    {
        var route = Route(context);
        var metadata = await router.GetMetadataAsync(route);
        await HttpIo.WriteJsonAsync(context.Response, 200, (metadata, route), static (w, s) =>
        {
            var m = s.metadata;
            w.WriteStartObject();
            w.WriteString("name", m.Name);
            w.WriteStartArray("versions");
            foreach (var v in s.route.AllVersions)
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
        ModelState.Retired => "retired: a newer revision serves in its place",
        _ => "loading",
    };

    /// <summary>Every declared model with its status.</summary>
    public async Task<IReadOnlyList<(ModelRoute Route, ModelStatus Status)>> IndexAsync()
    {
        var result = new List<(ModelRoute, ModelStatus)>();
        foreach (var route in router.Routes)
        {
            ModelStatus status;
            try
            {
                status = await router.GetStatusAsync(route);
            }
            catch (Exception e)
            {
                status = new ModelStatus(ModelState.FailedToLoad, FailureTable.Classify(e).Message);
            }

            result.Add((route, status));
        }

        return result;
    }

    /// <summary>The index's reason: the typed failure reason first when there is one (<c>ModelLoadFailed: …</c>).</summary>
    public static string IndexReason(ModelStatus status) =>
        status.FailureReason is { } kind ? $"{kind}: {status.Reason}" : status.Reason ?? "";

    /// <summary>Triton's repository index state for a model state.</summary>
    public static string TritonState(ModelState state) => state switch
    {
        ModelState.Loaded => "READY",
        ModelState.Loading or ModelState.Pending => "LOADING",
        _ => "UNAVAILABLE",
    };

    /// <summary><c>POST|GET /v2/repository/index</c>: every declared model with its state and reason (Triton's shape).</summary>
    public async Task RepositoryIndexAsync(HttpContext context)
    {
        var index = await IndexAsync();
        await HttpIo.WriteJsonAsync(context.Response, 200, index, static (w, entries) =>
        {
            w.WriteStartArray();
            foreach (var (route, status) in entries)
            {
                w.WriteStartObject();
                w.WriteString("name", route.Name);
                w.WriteString("version", route.Version);
                w.WriteString("state", TritonState(status.State));
                w.WriteString("reason", IndexReason(status));
                w.WriteEndObject();
            }

            w.WriteEndArray();
        });
    }

    /// <summary><c>POST /v2/repository/models/{model}/load</c>: reads the repository again for the model and serves it.</summary>
    public Task RepositoryLoadAsync(HttpContext context) => GuardAsync(context, async () =>
    {
        var model = context.Request.RouteValues["model"] as string ?? "";
        await Repository.LoadAsync(model, context.RequestAborted);
        await HttpIo.WriteJsonAsync(context.Response, 200, model, static (w, m) =>
        {
            w.WriteStartObject();
            w.WriteString("name", m);
            w.WriteBoolean("load", true);
            w.WriteEndObject();
        });
    });

    /// <summary><c>POST /v2/repository/models/{model}/unload</c>.</summary>
    public Task RepositoryUnloadAsync(HttpContext context) => GuardAsync(context, async () =>
    {
        var model = context.Request.RouteValues["model"] as string ?? "";
        await Repository.UnloadAsync(model, context.RequestAborted);
        await HttpIo.WriteJsonAsync(context.Response, 200, model, static (w, m) =>
        {
            w.WriteStartObject();
            w.WriteString("name", m);
            w.WriteBoolean("unload", true);
            w.WriteEndObject();
        });
    });

    private IModelRepositoryControl Repository =>
        repository ?? throw new InferenceException(InferenceErrorKind.NotImplemented, "this gateway has no model repository to load from");

    /// <summary><c>GET /v2/models/{model}[/versions/{version}]/config</c>: Triton's model configuration shape.</summary>
    public Task ModelConfigAsync(HttpContext context) => GuardAsync(context, async () =>
    {
        var route = Route(context);
        var config = await router.GetConfigurationAsync(route);
        await HttpIo.WriteJsonAsync(context.Response, 200, (config, route.Entry.VersionPolicy), static (w, s) =>
        {
            var c = s.config;
            w.WriteStartObject();
            w.WriteString("name", c.Name);
            w.WriteString("platform", c.Platform);
            w.WriteString("backend", c.Backend);
            w.WriteStartObject("version_policy");
            var policy = s.VersionPolicy;
            if (policy == "all")
            {
                w.WriteStartObject("all");
                w.WriteEndObject();
            }
            else if (policy.StartsWith("specific:", StringComparison.Ordinal))
            {
                w.WriteStartObject("specific");
                w.WriteStartArray("versions");
                foreach (var v in policy[9..].Split(','))
                {
                    w.WriteNumberValue(long.Parse(v, System.Globalization.CultureInfo.InvariantCulture));
                }

                w.WriteEndArray();
                w.WriteEndObject();
            }
            else
            {
                w.WriteStartObject("latest");
                w.WriteNumber("num_versions", int.Parse(policy.Split(':')[^1], System.Globalization.CultureInfo.InvariantCulture));
                w.WriteEndObject();
            }

            w.WriteEndObject();
            w.WriteNumber("max_batch_size", c.MaxBatchSize);
            WriteConfigTensors(w, "input", c.Inputs);
            WriteConfigTensors(w, "output", c.Outputs);
            w.WriteStartArray("instance_group");
            w.WriteStartObject();
            w.WriteString("name", c.Name);
            w.WriteString("kind", "KIND_CPU");
            w.WriteNumber("count", c.InstanceCount);
            w.WriteEndObject();
            w.WriteEndArray();
            if (c.Batching is { } b)
            {
                w.WriteStartObject("dynamic_batching");
                w.WriteStartArray("preferred_batch_size");
                foreach (var size in b.PreferredBatchSizes)
                {
                    w.WriteNumberValue(size);
                }

                w.WriteEndArray();
                w.WriteNumber("max_queue_delay_microseconds", b.MaxQueueDelayMicroseconds);
                w.WriteBoolean("preserve_ordering", b.PreserveOrdering);
                w.WriteNumber("priority_levels", b.PriorityLevels);
                w.WriteNumber("default_priority_level", b.DefaultPriorityLevel);
                w.WriteStartObject("default_queue_policy");
                w.WriteString("timeout_action", "REJECT");
                w.WriteNumber("default_timeout_microseconds", b.DefaultQueueTimeoutMicroseconds);
                w.WriteBoolean("allow_timeout_override", b.AllowTimeoutOverride);
                w.WriteNumber("max_queue_size", b.MaxQueueSize);
                w.WriteEndObject();
                w.WriteEndObject();
            }

            if (c.BatchingNote is { } note)
            {
                w.WriteString("batching_note", note);
            }

            w.WriteEndObject();
        });
    });

    private static void WriteConfigTensors(Utf8JsonWriter w, string property, IEnumerable<TensorMetadata> tensors)
    {
        w.WriteStartArray(property);
        foreach (var t in tensors)
        {
            w.WriteStartObject();
            w.WriteString("name", t.Name);
            w.WriteString("data_type", "TYPE_" + (t.DataType == TensorDataType.Bytes ? "STRING" : t.DataType.ToProtocolName()));
            w.WriteStartArray("dims");
            foreach (var d in t.Shape)
            {
                w.WriteNumberValue(d);
            }

            w.WriteEndArray();
            w.WriteEndObject();
        }

        w.WriteEndArray();
    }

    /// <summary><c>GET /v2/models/stats</c> and <c>GET /v2/models/{model}[/versions/{version}]/stats</c>: Triton's statistics shape.</summary>
    public Task ModelStatsAsync(HttpContext context) => GuardAsync(context, async () =>
    {
        var routes = context.Request.RouteValues.ContainsKey("model")
            ? [Route(context)]
            : router.Routes.Where(r => r.Grain is not null && !r.Entry.Unloaded).ToList();
        var stats = new List<ModelStatistics>();
        foreach (var route in routes)
        {
            stats.Add(await router.GetStatisticsAsync(route));
        }

        await HttpIo.WriteJsonAsync(context.Response, 200, stats, static (w, all) =>
        {
            w.WriteStartObject();
            w.WriteStartArray("model_stats");
            foreach (var s in all)
            {
                w.WriteStartObject();
                w.WriteString("name", s.Name);
                w.WriteString("version", s.Version);
                w.WriteNumber("last_inference", s.LastInferenceMilliseconds);
                w.WriteNumber("inference_count", s.InferenceCount);
                w.WriteNumber("execution_count", s.ExecutionCount);
                w.WriteStartObject("inference_stats");
                WriteDuration(w, "success", s.Success);
                WriteDuration(w, "fail", s.Fail);
                WriteDuration(w, "queue", s.Queue);
                WriteDuration(w, "compute_input", s.ComputeInput);
                WriteDuration(w, "compute_infer", s.ComputeInfer);
                WriteDuration(w, "compute_output", s.ComputeOutput);
                WriteDuration(w, "cache_hit", default);
                WriteDuration(w, "cache_miss", default);
                w.WriteEndObject();
                w.WriteStartArray("batch_stats");
                foreach (var b in s.Batches)
                {
                    w.WriteStartObject();
                    w.WriteNumber("batch_size", b.BatchSize);
                    WriteDuration(w, "compute_input", b.ComputeInput);
                    WriteDuration(w, "compute_infer", b.ComputeInfer);
                    WriteDuration(w, "compute_output", b.ComputeOutput);
                    w.WriteEndObject();
                }

                w.WriteEndArray();
                w.WriteEndObject();
            }

            w.WriteEndArray();
            w.WriteEndObject();
        });
    });

    private static void WriteDuration(Utf8JsonWriter w, string name, StatisticDuration d)
    {
        w.WriteStartObject(name);
        w.WriteNumber("count", d.Count);
        w.WriteNumber("ns", d.Nanoseconds);
        w.WriteEndObject();
    }

    /// <summary>
    /// <c>POST /v2/models/{model}[/versions/{version}]/infer</c>: a JSON body, or a JSON header followed by binary
    /// tensor data (<c>Inference-Header-Content-Length</c>), optionally gzip- or deflate-compressed. The answer is
    /// JSON unless outputs were asked for in binary, and compressed when the request's Accept-Encoding allows.
    /// </summary>
    public Task InferV2Async(HttpContext context) => RunInferenceAsync(context, static async (handlers, context, buffers) =>
    {
        var route = handlers.Route(context);
        handlers.Router.EnsureAvailable(route);
        var headers = context.Request.Headers;
        var body = await HttpIo.ReadBodyAsync(context.Request, handlers.Options.MaxRequestBodyBytes, buffers);
        var headerLength = BinaryTensorCodec.ParseHeaderLength(ReadHeader(headers, BinaryTensorCodec.HeaderLengthHeader), body.Length);
        var request = V2JsonCodec.DecodeRequest(body, headerLength, buffers);
        var binary = BinaryOutputs.For(request);
        var coding = HttpCompression.ChooseResponseCoding(headers.AcceptEncoding);
        var response = await handlers.Router.InferAsync(route, request, context.RequestAborted);
        if (!binary.Any && coding == ContentCoding.Identity)
        {
            await HttpIo.WriteJsonAsync(context.Response, 200, response, V2JsonCodec.WriteResponse);
        }
        else
        {
            await HttpIo.WriteInferResponseAsync(context.Response, response, binary.Mask(response), coding);
        }
    });

    private static string? ReadHeader(IHeaderDictionary headers, string name) =>
        headers.TryGetValue(name, out var value) && value.Count > 0 ? value.ToString() : null;

    /// <summary><c>POST /v1/models/{model}:predict</c>.</summary>
    public Task PredictV1Async(HttpContext context) => RunInferenceAsync(context, static async (handlers, context, buffers) =>
    {
        var route = handlers.Route(context);
        handlers.Router.EnsureAvailable(route);
        var body = await HttpIo.ReadBodyAsync(context.Request, handlers.Options.MaxRequestBodyBytes, buffers);
        var metadata = await handlers.Router.GetMetadataAsync(route);
        var request = V1JsonCodec.DecodeRequest(body.Span, metadata, buffers);
        var rows = request.Inputs[0].Shape.Length > 0 ? request.Inputs[0].Shape[0] : 1;
        var response = await handlers.Router.InferAsync(route, request, context.RequestAborted);
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
        RequestAdmission.Ticket ticket;
        try
        {
            ticket = admission.Enter();
        }
        catch (InferenceException e)
        {
            context.Response.Headers.RetryAfter = "1";
            await HttpIo.WriteErrorAsync(context.Response, FailureTable.HttpStatus(e.Kind), e.Message);
            return;
        }

        var buffers = new PooledBuffers(budget);
        var release = true;
        try
        {
            await handle(this, context, buffers);
        }
        catch (Exception e)
        {
            // A call that timed out may still be reading the request's buffers somewhere: let the GC have them.
            release = e is not (TimeoutException or OperationCanceledException);

            // A client that went away reads no answer and is no server failure worth logging.
            if (!context.RequestAborted.IsCancellationRequested)
            {
                await WriteFailureAsync(context, e);
            }
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

            ticket.Dispose();
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
        var (status, message) = FailureTable.ForHttp(e);
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
