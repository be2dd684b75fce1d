using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Logging;
using Orleans.KServe.Contracts.Models;
using Orleans.KServe.Contracts.Tensors;
using Orleans.KServe.Gateway.Serving;

namespace Orleans.KServe.Gateway.Endpoints;

/// <summary>The models: list, metadata, readiness, Triton's configuration and statistics.</summary>
public static class ModelEndpoints
{
    /// <summary>Maps the model routes of v2 and v1.</summary>
    public static IEndpointRouteBuilder MapModelApi(this IEndpointRouteBuilder endpoints, ServingLayer serving, ILogger logger)
    {
        var v2 = endpoints.MapGroup("/v2");
        v2.MapGet("/models", context => ListAsync(context, serving));
        v2.MapGet("/models/{model}", context => MetadataAsync(context, serving, logger));
        v2.MapGet("/models/{model}/versions/{version}", context => MetadataAsync(context, serving, logger));
        v2.MapGet("/models/{model}/ready", context => ReadyAsync(context, serving, logger));
        v2.MapGet("/models/{model}/versions/{version}/ready", context => ReadyAsync(context, serving, logger));
        v2.MapGet("/models/stats", context => StatisticsAsync(context, serving, logger));
        v2.MapGet("/models/{model}/stats", context => StatisticsAsync(context, serving, logger));
        v2.MapGet("/models/{model}/versions/{version}/stats", context => StatisticsAsync(context, serving, logger));
        v2.MapGet("/models/{model}/config", context => ConfigAsync(context, serving, logger));
        v2.MapGet("/models/{model}/versions/{version}/config", context => ConfigAsync(context, serving, logger));

        var v1 = endpoints.MapGroup("/v1");
        v1.MapGet("/models", context => ListAsync(context, serving));
        v1.MapGet("/models/{model}", context => ReadyAsync(context, serving, logger));
        return endpoints;
    }

    /// <summary><c>GET /v2/models</c> and <c>GET /v1/models</c>: the served model names.</summary>
    private static Task ListAsync(HttpContext context, ServingLayer serving) =>
        HttpIo.WriteJsonAsync(context.Response, 200, serving.ModelNames(), static (w, names) =>
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
    private static Task MetadataAsync(HttpContext context, ServingLayer serving, ILogger logger) => RestSupport.GuardAsync(context, logger, async () =>
    {
        var route = RestSupport.Route(context, serving);
        var metadata = await serving.MetadataAsync(route);
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
            WriteTensors(w, "inputs", m.Inputs);
            WriteTensors(w, "outputs", m.Outputs);
            w.WriteEndObject();
        });
    });

    private static void WriteTensors(Utf8JsonWriter w, string property, IEnumerable<TensorMetadata> tensors)
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
    private static Task ReadyAsync(HttpContext context, ServingLayer serving, ILogger logger) => RestSupport.GuardAsync(context, logger, async () =>
    {
        var route = RestSupport.Route(context, serving);
        var status = await serving.StatusAsync(route);
        var ready = status.State == ModelState.Loaded;
        await HttpIo.WriteJsonAsync(context.Response, ready ? 200 : 503, (route.Name, ready, status), static (w, s) =>
        {
            w.WriteStartObject();
            w.WriteString("name", s.Name);
            w.WriteBoolean("ready", s.ready);
            if (!s.ready)
            {
                w.WriteString("error", $"model '{s.Name}' is {ServingViews.NotReady(s.status)}");
            }

            w.WriteEndObject();
        });
    });

    /// <summary><c>GET /v2/models/{model}[/versions/{version}]/config</c>: Triton's model configuration shape.</summary>
    private static Task ConfigAsync(HttpContext context, ServingLayer serving, ILogger logger) => RestSupport.GuardAsync(context, logger, async () =>
    {
        var config = await serving.ConfigAsync(RestSupport.Route(context, serving));
        await HttpIo.WriteJsonAsync(context.Response, 200, config, static (w, c) =>
        {
            w.WriteStartObject();
            w.WriteString("name", c.Name);
            w.WriteString("platform", c.Platform);
            w.WriteString("backend", c.Backend);
            WriteVersionPolicy(w, c.VersionPolicy);
            w.WriteNumber("max_batch_size", c.MaxBatchSize);
            WriteConfigTensors(w, "input", c.Inputs);
            WriteConfigTensors(w, "output", c.Outputs);
            w.WriteStartArray("instance_group");
            w.WriteStartObject();
            w.WriteString("name", c.Name);
            w.WriteString("kind", ModelConfigView.InstanceKind);
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
                w.WriteString("timeout_action", ModelConfigView.TimeoutAction);
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

    private static void WriteVersionPolicy(Utf8JsonWriter w, ModelVersionPolicy policy)
    {
        w.WriteStartObject("version_policy");
        switch (policy.Kind)
        {
            case VersionPolicyKind.All:
                w.WriteStartObject("all");
                w.WriteEndObject();
                break;
            case VersionPolicyKind.Specific:
                w.WriteStartObject("specific");
                w.WriteStartArray("versions");
                foreach (var v in policy.Versions)
                {
                    w.WriteNumberValue(v);
                }

                w.WriteEndArray();
                w.WriteEndObject();
                break;
            default:
                w.WriteStartObject("latest");
                w.WriteNumber("num_versions", policy.Latest);
                w.WriteEndObject();
                break;
        }

        w.WriteEndObject();
    }

    private static void WriteConfigTensors(Utf8JsonWriter w, string property, IEnumerable<ConfigTensor> tensors)
    {
        w.WriteStartArray(property);
        foreach (var t in tensors)
        {
            w.WriteStartObject();
            w.WriteString("name", t.Name);
            w.WriteString("data_type", t.DataType.ConfigName);
            w.WriteStartArray("dims");
            foreach (var d in t.Dims)
            {
                w.WriteNumberValue(d);
            }

            w.WriteEndArray();
            w.WriteEndObject();
        }

        w.WriteEndArray();
    }

    /// <summary><c>GET /v2/models/stats</c> and <c>GET /v2/models/{model}[/versions/{version}]/stats</c>: Triton's statistics shape.</summary>
    private static Task StatisticsAsync(HttpContext context, ServingLayer serving, ILogger logger) => RestSupport.GuardAsync(context, logger, async () =>
    {
        var stats = context.Request.RouteValues.ContainsKey("model")
            ? await serving.StatisticsAsync(RestSupport.Route(context, serving))
            : await serving.StatisticsAsync();
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
}
