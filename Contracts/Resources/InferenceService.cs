namespace Orleans.KServe.Contracts.Resources;

/// <summary>Kubernetes object metadata, the fields the operator reads.</summary>
public sealed class ObjectMeta
{
    /// <summary>The object name.</summary>
    public string Name { get; set; } = "";

    /// <summary>The namespace; <c>default</c> when the resource names none.</summary>
    public string Namespace { get; set; } = "default";

    /// <summary>Annotations, including <c>orleans.kserve.io/*</c> settings.</summary>
    public Dictionary<string, string> Annotations { get; set; } = new(StringComparer.Ordinal);

    /// <summary>Labels.</summary>
    public Dictionary<string, string> Labels { get; set; } = new(StringComparer.Ordinal);

    /// <summary>The spec generation, when the source tracks one.</summary>
    public long Generation { get; set; }
}

/// <summary><c>serving.kserve.io/v1beta1</c> InferenceService: the fields this server acts on.</summary>
public sealed class InferenceService
{
    /// <summary>The API group and version.</summary>
    public const string ApiVersion = "serving.kserve.io/v1beta1";

    /// <summary>The kind.</summary>
    public const string KindName = "InferenceService";

    /// <summary>Object metadata.</summary>
    public ObjectMeta Metadata { get; set; } = new();

    /// <summary>The predictor (required).</summary>
    public PredictorSpec? Predictor { get; set; }

    /// <summary>An optional transformer component.</summary>
    public ComponentSpec? Transformer { get; set; }

    /// <summary>An optional explainer component.</summary>
    public ComponentSpec? Explainer { get; set; }
}

/// <summary>KServe's <c>modelFormat</c>.</summary>
public sealed record ModelFormat(string Name, string? Version);

/// <summary>KServe's <c>batcher</c> on a component.</summary>
public sealed record BatcherSpec(int? MaxBatchSize, int? MaxLatencyMilliseconds, int? TimeoutSeconds);

/// <summary>Fields every component (predictor, transformer, explainer) shares.</summary>
public class ComponentSpec
{
    /// <summary>Minimum replicas; 0 allows scale to zero.</summary>
    public int? MinReplicas { get; set; }

    /// <summary>Maximum replicas.</summary>
    public int? MaxReplicas { get; set; }

    /// <summary>Autoscaling target value.</summary>
    public int? ScaleTarget { get; set; }

    /// <summary>Autoscaling metric: concurrency, rps, cpu, memory.</summary>
    public string? ScaleMetric { get; set; }

    /// <summary>Requests one replica handles at once.</summary>
    public int? ContainerConcurrency { get; set; }

    /// <summary>Request timeout in seconds.</summary>
    public int? TimeoutSeconds { get; set; }

    /// <summary>Traffic percentage for the newest revision during a canary rollout.</summary>
    public int? CanaryTrafficPercent { get; set; }

    /// <summary>Batching settings.</summary>
    public BatcherSpec? Batcher { get; set; }

    /// <summary>Container-based component (custom images), which this server cannot run.</summary>
    public bool HasContainers { get; set; }
}

/// <summary>The predictor: a model (new schema) or a framework shorthand (old schema).</summary>
public sealed class PredictorSpec : ComponentSpec
{
    /// <summary>The model format; from <c>model.modelFormat</c> or the shorthand key (<c>onnx:</c>, <c>sklearn:</c>, …).</summary>
    public ModelFormat? ModelFormat { get; set; }

    /// <summary>An explicitly named runtime.</summary>
    public string? Runtime { get; set; }

    /// <summary>Where the model lies.</summary>
    public string? StorageUri { get; set; }

    /// <summary>v1, v2, grpc-v1 or grpc-v2.</summary>
    public string? ProtocolVersion { get; set; }

    /// <summary>The old-schema framework key when the resource used one (e.g. <c>onnx</c>).</summary>
    public string? Shorthand { get; set; }
}
