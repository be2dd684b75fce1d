using System.Collections.Immutable;
using System.Globalization;
using Orleans.KServe.Contracts.Models;
using Orleans.KServe.Contracts.Resources;

namespace Orleans.KServe.Operator.Reconcile;

/// <summary>
/// The pure reconcile step for one InferenceService: resource in, the model the cluster should serve (or why it
/// cannot) out. No I/O except looking at the local artifact path.
/// </summary>
public static class InferenceServiceReconciler
{
    /// <summary>Annotation prefix for settings that are not part of KServe's spec.</summary>
    public const string AnnotationPrefix = "orleans.kserve.io/";

    /// <summary>Annotation: ONNX Runtime intra-op threads per execution.</summary>
    public const string IntraOpThreadsAnnotation = AnnotationPrefix + "intra-op-threads";

    /// <summary>Reconciles <paramref name="service"/> whose YAML lies in <paramref name="baseFolder"/>.</summary>
    public static ServiceEntry Reconcile(InferenceService service, string baseFolder, IReadOnlyList<ServingRuntimeInfo> runtimes)
    {
        var meta = service.Metadata;
        ServiceEntry Fail(string reason, string message) => new(meta.Namespace, meta.Name, null, reason, message);

        var predictor = service.Predictor;
        if (predictor is null)
        {
            return Fail("InvalidSpec", "spec.predictor is required");
        }

        if (predictor.ModelFormat is null)
        {
            return predictor.HasContainers
                ? Fail("NoSupportingRuntime", "custom predictor containers are not run by this server; declare a model with modelFormat and storageUri")
                : Fail("InvalidSpec", "spec.predictor.model.modelFormat.name is required");
        }

        if (service.Transformer is not null || service.Explainer is not null)
        {
            return Fail("NoSupportingRuntime", "transformer and explainer components are not served yet; remove them to serve the predictor alone");
        }

        var protocol = predictor.ProtocolVersion ?? "v1";
        var (runtime, reason, message) = RuntimeSelector.Select(
            runtimes, predictor.ModelFormat.Name, predictor.ModelFormat.Version, predictor.Runtime, protocol);
        if (runtime is null)
        {
            return Fail(reason!, message!);
        }

        if (string.IsNullOrWhiteSpace(predictor.StorageUri))
        {
            return Fail("InvalidSpec", "spec.predictor.model.storageUri is required");
        }

        if (!TryResolveStorage(predictor.StorageUri, baseFolder, out var path, out var storageError))
        {
            return Fail("StorageUriNotSupported", storageError!);
        }

        if (!TryFindArtifact(path, predictor.ModelFormat.Name, out var artifact, out var version, out var artifactError))
        {
            return Fail("ModelArtifactNotFound", artifactError!);
        }

        if (!TryReadSettings(meta.Annotations, out var settings, out var settingsError))
        {
            return Fail("InvalidSpec", settingsError!);
        }

        var spec = new ModelSpec(meta.Name, predictor.ModelFormat.Name, runtime.Name, artifact, settings)
        {
            FormatVersion = predictor.ModelFormat.Version,
            Version = version,
        };
        return new ServiceEntry(meta.Namespace, meta.Name, spec);
    }

    /// <summary>
    /// Resolves a storage URI to a local path. <c>file://</c> paths without a leading '/' are relative to the YAML's
    /// folder; a bare path is taken as a file path.
    /// </summary>
    public static bool TryResolveStorage(string storageUri, string baseFolder, out string path, out string? error)
    {
        path = "";
        error = null;
        string local;
        var schemeEnd = storageUri.IndexOf("://", StringComparison.Ordinal);
        if (schemeEnd < 0)
        {
            local = storageUri;
        }
        else
        {
            var scheme = storageUri[..schemeEnd];
            if (scheme != "file")
            {
                error = $"storage scheme '{scheme}://' is not available in this server yet; use file:// paths";
                return false;
            }

            local = Uri.UnescapeDataString(storageUri[(schemeEnd + 3)..]);
        }

        if (local.Length == 0)
        {
            error = $"storageUri '{storageUri}' names no path";
            return false;
        }

        path = Path.GetFullPath(Path.IsPathRooted(local) ? local : Path.Combine(baseFolder, local));
        return true;
    }

    /// <summary>
    /// Finds the model file: the path itself, <c>model.onnx</c> inside it, or Triton's <c>&lt;version&gt;/model.onnx</c>
    /// layout (the highest numeric version).
    /// </summary>
    public static bool TryFindArtifact(string path, string format, out string artifact, out string version, out string? error)
    {
        artifact = "";
        version = "1";
        error = null;
        if (File.Exists(path))
        {
            artifact = path;
            return true;
        }

        if (!Directory.Exists(path))
        {
            error = $"'{path}' does not exist";
            return false;
        }

        var fileName = $"model.{format}";
        var direct = Path.Combine(path, fileName);
        if (File.Exists(direct))
        {
            artifact = direct;
            return true;
        }

        var versions = Directory.EnumerateDirectories(path)
            .Select(d => (Dir: d, Ok: long.TryParse(Path.GetFileName(d), NumberStyles.None, CultureInfo.InvariantCulture, out var v), Version: v))
            .Where(v => v.Ok && File.Exists(Path.Combine(v.Dir, fileName)))
            .OrderByDescending(v => v.Version)
            .ToList();
        if (versions.Count > 0)
        {
            artifact = Path.Combine(versions[0].Dir, fileName);
            version = versions[0].Version.ToString(CultureInfo.InvariantCulture);
            return true;
        }

        error = $"'{path}' holds no {fileName} (nor <version>/{fileName})";
        return false;
    }

    private static bool TryReadSettings(IReadOnlyDictionary<string, string> annotations, out ModelRuntimeSettings settings, out string? error)
    {
        settings = ModelRuntimeSettings.Default;
        error = null;
        var extra = ImmutableDictionary.CreateBuilder<string, string>();
        foreach (var (key, value) in annotations)
        {
            if (!key.StartsWith(AnnotationPrefix, StringComparison.Ordinal))
            {
                continue;
            }

            if (key == IntraOpThreadsAnnotation)
            {
                if (!int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var threads) || threads is < 1 or > 1024)
                {
                    error = $"annotation {key} must be an integer from 1 to 1024, not '{value}'";
                    return false;
                }

                settings = settings with { IntraOpThreads = threads };
            }
            else
            {
                extra[key] = value;
            }
        }

        settings = settings with { Extra = extra.ToImmutable() };
        return true;
    }
}
