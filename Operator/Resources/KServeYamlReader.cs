using System.Globalization;
using Orleans.KServe.Contracts.Resources;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Orleans.KServe.Operator.Resources;

/// <summary>One YAML document of a file: a recognised resource, another kind, or an error.</summary>
public sealed record ResourceDocument(int Index, string? ApiVersion, string? Kind, InferenceService? InferenceService, string? Error);

/// <summary>Raised when a document is not a valid resource; the message names the field.</summary>
public sealed class ResourceFormatException(string message) : Exception(message);

/// <summary>Reads KServe resources from YAML (several documents per file, separated by <c>---</c>).</summary>
public static class KServeYamlReader
{
    /// <summary>The most replicas one revision of a model may ask for (<c>minReplicas</c>).</summary>
    public const int MaxReplicaCount = 64;

    /// <summary>The old-schema framework keys under <c>spec.predictor</c>.</summary>
    public static readonly IReadOnlySet<string> FrameworkShorthands = new HashSet<string>(StringComparer.Ordinal)
    {
        "onnx", "sklearn", "xgboost", "tensorflow", "pytorch", "triton", "lightgbm", "paddle", "pmml", "huggingface",
    };

    /// <summary>Parses every document in <paramref name="yaml"/>. Throws <see cref="ResourceFormatException"/> when the text is not YAML.</summary>
    public static IReadOnlyList<ResourceDocument> Read(string yaml)
    {
        var stream = new YamlStream();
        try
        {
            stream.Load(new StringReader(yaml));
        }
        catch (YamlException e)
        {
            throw new ResourceFormatException($"not valid YAML at line {e.Start.Line}, column {e.Start.Column}: {Innermost(e).Message}");
        }
        catch (InvalidOperationException e)
        {
            // YamlDotNet reports some unterminated flow collections this way rather than as a YamlException.
            throw new ResourceFormatException($"not valid YAML: {e.Message}");
        }

        var result = new List<ResourceDocument>();
        for (var i = 0; i < stream.Documents.Count; i++)
        {
            var root = stream.Documents[i].RootNode;
            if (root is YamlScalarNode { Value: null or "" })
            {
                continue;
            }

            if (root is not YamlMappingNode mapping)
            {
                result.Add(new ResourceDocument(i, null, null, null, "the document is not a mapping"));
                continue;
            }

            string? apiVersion = null, kind = null;
            try
            {
                apiVersion = Scalar(mapping, "apiVersion");
                kind = Scalar(mapping, "kind");
                if (kind != InferenceService.KindName)
                {
                    result.Add(new ResourceDocument(i, apiVersion, kind, null, null));
                    continue;
                }

                if (apiVersion is not null && !apiVersion.StartsWith("serving.kserve.io/", StringComparison.Ordinal))
                {
                    throw new ResourceFormatException($"apiVersion '{apiVersion}' is not serving.kserve.io");
                }

                result.Add(new ResourceDocument(i, apiVersion, kind, ReadInferenceService(mapping), null));
            }
            catch (ResourceFormatException e)
            {
                result.Add(new ResourceDocument(i, apiVersion, kind, null, e.Message));
            }
        }

        return result;
    }

    private static Exception Innermost(Exception e) => e.InnerException is null ? e : Innermost(e.InnerException);

    private static InferenceService ReadInferenceService(YamlMappingNode root)
    {
        var metadata = Mapping(root, "metadata", "metadata") ?? throw new ResourceFormatException("metadata is required");
        var service = new InferenceService
        {
            Metadata = new ObjectMeta
            {
                Name = Scalar(metadata, "name") ?? throw new ResourceFormatException("metadata.name is required"),
                Namespace = Scalar(metadata, "namespace") ?? "default",
                Annotations = StringMap(metadata, "annotations", "metadata.annotations"),
                Labels = StringMap(metadata, "labels", "metadata.labels"),
                Generation = Integer(metadata, "generation", "metadata.generation") ?? 0,
            },
        };

        if (!IsDnsLabel(service.Metadata.Name))
        {
            throw new ResourceFormatException(
                $"metadata.name '{service.Metadata.Name}' must be a DNS-1123 label (lower-case letters, digits and '-', at most 63 characters)");
        }

        var spec = Mapping(root, "spec", "spec") ?? throw new ResourceFormatException("spec is required");
        if (Mapping(spec, "predictor", "spec.predictor") is { } predictor)
        {
            service.Predictor = ReadPredictor(predictor);
        }

        if (Mapping(spec, "transformer", "spec.transformer") is { } transformer)
        {
            service.Transformer = ReadComponent(new ComponentSpec(), transformer, "spec.transformer");
        }

        if (Mapping(spec, "explainer", "spec.explainer") is { } explainer)
        {
            service.Explainer = ReadComponent(new ComponentSpec(), explainer, "spec.explainer");
        }

        return service;
    }

    private static PredictorSpec ReadPredictor(YamlMappingNode node)
    {
        var predictor = ReadComponent(new PredictorSpec(), node, "spec.predictor");
        if (Mapping(node, "model", "spec.predictor.model") is { } model)
        {
            if (Mapping(model, "modelFormat", "spec.predictor.model.modelFormat") is { } format)
            {
                var name = Scalar(format, "name") ?? throw new ResourceFormatException("spec.predictor.model.modelFormat.name is required");
                predictor.ModelFormat = new ModelFormat(name.ToLowerInvariant(), Scalar(format, "version"));
            }

            predictor.Runtime = Scalar(model, "runtime");
            predictor.StorageUri = Scalar(model, "storageUri");
            predictor.ProtocolVersion = Scalar(model, "protocolVersion");
            return predictor;
        }

        foreach (var (key, value) in node.Children)
        {
            if (key is YamlScalarNode { Value: { } framework } && FrameworkShorthands.Contains(framework))
            {
                if (predictor.Shorthand is not null)
                {
                    throw new ResourceFormatException($"spec.predictor names two frameworks: '{predictor.Shorthand}' and '{framework}'");
                }

                var body = value as YamlMappingNode ?? throw new ResourceFormatException($"spec.predictor.{framework} must be a mapping");
                predictor.Shorthand = framework;
                // runtimeVersion in the old schema is the runtime image's tag, not a model format version.
                predictor.ModelFormat = new ModelFormat(framework, null);
                predictor.Runtime = Scalar(body, "runtime");
                predictor.StorageUri = Scalar(body, "storageUri");
                predictor.ProtocolVersion = Scalar(body, "protocolVersion");
            }
        }

        return predictor;
    }

    private static T ReadComponent<T>(T component, YamlMappingNode node, string path)
        where T : ComponentSpec
    {
        component.MinReplicas = Integer32(node, "minReplicas", path);
        component.MaxReplicas = Integer32(node, "maxReplicas", path);
        component.ScaleTarget = Integer32(node, "scaleTarget", path);
        component.ScaleMetric = Scalar(node, "scaleMetric");
        component.ContainerConcurrency = Integer32(node, "containerConcurrency", path);
        component.TimeoutSeconds = Integer32(node, "timeout", path);
        component.CanaryTrafficPercent = Integer32(node, "canaryTrafficPercent", path);
        component.HasContainers = node.Children.ContainsKey(new YamlScalarNode("containers"));
        if (Mapping(node, "batcher", path + ".batcher") is { } batcher)
        {
            component.Batcher = new BatcherSpec(
                Integer32(batcher, "maxBatchSize", path + ".batcher"),
                Integer32(batcher, "maxLatency", path + ".batcher"),
                Integer32(batcher, "timeout", path + ".batcher"));
        }

        if (component.MinReplicas < 0 || component.MaxReplicas < 0)
        {
            throw new ResourceFormatException($"{path}: replica counts cannot be negative");
        }

        if (component.MinReplicas > component.MaxReplicas && component.MaxReplicas > 0)
        {
            throw new ResourceFormatException($"{path}: minReplicas ({component.MinReplicas}) cannot be greater than maxReplicas ({component.MaxReplicas})");
        }

        if (component.MinReplicas > MaxReplicaCount)
        {
            throw new ResourceFormatException($"{path}: minReplicas ({component.MinReplicas}) is more than this server runs of one model ({MaxReplicaCount})");
        }

        if (component.CanaryTrafficPercent is < 0 or > 100)
        {
            throw new ResourceFormatException($"{path}.canaryTrafficPercent must be between 0 and 100");
        }

        return component;
    }

    private static bool IsDnsLabel(string name) =>
        name.Length is > 0 and <= 63
        && char.IsAsciiLetterLower(name[0])
        && name.All(c => char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) || c == '-')
        && name[^1] != '-';

    private static YamlNode? Child(YamlMappingNode node, string key) =>
        node.Children.TryGetValue(new YamlScalarNode(key), out var value) ? value : null;

    private static string? Scalar(YamlMappingNode node, string key) => Child(node, key) switch
    {
        null => null,
        YamlScalarNode scalar => string.IsNullOrEmpty(scalar.Value) && scalar.Style == ScalarStyle.Plain ? null : scalar.Value,
        _ => throw new ResourceFormatException($"'{key}' must be a single value"),
    };

    private static YamlMappingNode? Mapping(YamlMappingNode node, string key, string path) => Child(node, key) switch
    {
        null => null,
        YamlMappingNode mapping => mapping,
        YamlScalarNode { Value: null or "" } => null,
        _ => throw new ResourceFormatException($"{path} must be a mapping"),
    };

    private static long? Integer(YamlMappingNode node, string key, string path)
    {
        var text = Scalar(node, key);
        if (text is null)
        {
            return null;
        }

        return long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var value)
            ? value
            : throw new ResourceFormatException($"{path}.{key} must be an integer, not '{text}'");
    }

    private static int? Integer32(YamlMappingNode node, string key, string path)
    {
        var value = Integer(node, key, path);
        return value is null ? null
            : value is >= int.MinValue and <= int.MaxValue ? (int)value
            : throw new ResourceFormatException($"{path}.{key} is out of range");
    }

    private static Dictionary<string, string> StringMap(YamlMappingNode node, string key, string path)
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        if (Mapping(node, key, path) is { } map)
        {
            foreach (var (k, v) in map.Children)
            {
                if (k is YamlScalarNode { Value: { } name } && v is YamlScalarNode scalar)
                {
                    result[name] = scalar.Value ?? "";
                }
                else
                {
                    throw new ResourceFormatException($"{path} must map names to single values");
                }
            }
        }

        return result;
    }
}
