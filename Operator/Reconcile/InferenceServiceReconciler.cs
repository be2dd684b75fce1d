using System.Collections.Immutable;
using System.Globalization;
using Orleans.KServe.Contracts.Models;
using Orleans.KServe.Contracts.Resources;
using Orleans.KServe.Operator.Storage;

namespace Orleans.KServe.Operator.Reconcile;

/// <summary>
/// The pure reconcile step for one InferenceService: resource in, the model the cluster should serve (or why it
/// cannot) out. It reads no storage: which versions a <c>storageUri</c> holds comes from the source's
/// <see cref="IStorageCatalog"/>, and the silo that loads a model resolves its URI to files.
/// </summary>
public static class InferenceServiceReconciler
{
    /// <summary>Annotation prefix for settings that are not part of KServe's spec.</summary>
    public const string AnnotationPrefix = "orleans.kserve.io/";

    /// <summary>Annotation: ONNX Runtime intra-op threads per execution.</summary>
    public const string IntraOpThreadsAnnotation = AnnotationPrefix + "intra-op-threads";

    /// <summary>Annotation: which versions of a Triton-layout folder to serve: <c>latest[:N]</c>, <c>all</c>, <c>specific:1,3</c>.</summary>
    public const string VersionPolicyAnnotation = AnnotationPrefix + "version-policy";

    /// <summary>Annotation: this InferenceService is one version of the model named by <see cref="ModelNameAnnotation"/>.</summary>
    public const string ModelVersionAnnotation = AnnotationPrefix + "model-version";

    /// <summary>Annotation: the model name served (default: the InferenceService's name); with <see cref="ModelVersionAnnotation"/>, several resources make one model's versions.</summary>
    public const string ModelNameAnnotation = AnnotationPrefix + "model-name";

    /// <summary>
    /// Reconciles <paramref name="service"/>, whose relative <c>file://</c> URIs are relative to
    /// <paramref name="baseFolder"/>, with the versions <paramref name="storage"/> lists at its storage URI.
    /// </summary>
    public static ServiceEntry Reconcile(InferenceService service, string baseFolder, IReadOnlyList<ServingRuntimeInfo> runtimes, IStorageCatalog storage)
    {
        var meta = service.Metadata;
        var servedName = meta.Annotations.GetValueOrDefault(ModelNameAnnotation) ?? meta.Name;
        ServiceEntry Fail(string reason, string message) => new(meta.Namespace, servedName, null, reason, message);

        var predictor = service.Predictor;
        if (predictor is null)
        {
            return Fail(FailureReasons.InvalidPredictorSpec, "spec.predictor is required");
        }

        if (predictor.ModelFormat is null)
        {
            return predictor.HasContainers
                ? Fail(FailureReasons.NoSupportingRuntime, "custom predictor containers are not run by this server; declare a model with modelFormat and storageUri")
                : Fail(FailureReasons.InvalidPredictorSpec, "spec.predictor.model.modelFormat.name is required");
        }

        if (service.Transformer is not null || service.Explainer is not null)
        {
            return Fail(FailureReasons.NoSupportingRuntime, "transformer and explainer components are not served yet; remove them to serve the predictor alone");
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
            return Fail(FailureReasons.InvalidPredictorSpec, "spec.predictor.model.storageUri is required");
        }

        if (!TryResolveStorage(predictor.StorageUri, baseFolder, out var path, out var storageError))
        {
            return Fail(FailureReasons.StorageUriNotSupported, storageError!);
        }

        if (!TryReadSettings(meta.Annotations, out var settings, out var settingsError))
        {
            return Fail(FailureReasons.InvalidPredictorSpec, settingsError!);
        }

        var batching = BatchingReader.Read(predictor, meta.Annotations, BatchingReader.RuntimeDefaults, out var batchingErrors);
        if (batchingErrors.Count > 0)
        {
            return Fail(FailureReasons.InvalidPredictorSpec, string.Join("; ", batchingErrors));
        }

        settings = settings with { Batching = batching };

        if (!VersionPolicy.TryParse(meta.Annotations.GetValueOrDefault(VersionPolicyAnnotation), out var policy, out var policyError))
        {
            return Fail(FailureReasons.InvalidPredictorSpec, $"annotation {VersionPolicyAnnotation}: {policyError}");
        }

        var explicitVersion = meta.Annotations.GetValueOrDefault(ModelVersionAnnotation);
        if (explicitVersion is not null && !VersionPolicy.IsVersion(explicitVersion))
        {
            return Fail(FailureReasons.InvalidPredictorSpec, $"annotation {ModelVersionAnnotation} must be a positive integer, not '{explicitVersion}'");
        }

        var listing = storage.List(StorageUris.FromPath(path), predictor.ModelFormat.Name);
        if (listing.Error is { } artifactError)
        {
            return Fail(FailureReasons.ModelArtifactNotFound, artifactError);
        }

        var available = listing.Versions.Select(v => (v.Version, Artifact: v.Uri)).ToList();

        IReadOnlyList<(string Version, string Artifact)> served;
        if (explicitVersion is not null)
        {
            // One resource, one version: the artifact is the newest the storage holds, served under the given version.
            served = [(explicitVersion, available[0].Artifact)];
        }
        else if (!VersionPolicy.TrySelect(policy, available, out served, out var selectError))
        {
            return Fail(FailureReasons.ModelArtifactNotFound, $"{path}: {selectError}");
        }

        var specs = served.Select(v => new ModelSpec(servedName, predictor.ModelFormat.Name, runtime.Name, v.Artifact, settings)
        {
            FormatVersion = predictor.ModelFormat.Version,
            Version = v.Version,
        }).ToImmutableArray();
        return new ServiceEntry(meta.Namespace, servedName, specs[0])
        {
            Versions = specs.Length > 1 ? specs : ImmutableArray<ModelSpec>.Empty,
            VersionPolicy = policy,

            // minReplicas replicas, placed on distinct silos; 0 (scale to zero) serves one until autoscaling lands.
            Replicas = Math.Max(1, predictor.MinReplicas ?? 1),
        };
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
