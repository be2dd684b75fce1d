using Orleans.KServe.Operator.Storage;
using Orleans.KServe.Operator.Resources;
using Orleans.KServe.Operator.Sources;

namespace Orleans.KServe.Operator.Tests;

/// <summary>InferenceService YAML in the shapes KServe users already have, scanned from a folder.</summary>
public sealed class KServeShapesTests : IDisposable
{
    private readonly TempRepository _repo = new();

    public void Dispose() => _repo.Dispose();

    [Fact]
    public void NewSchema_is_served_by_the_onnx_runtime_from_the_folder_next_to_the_yaml()
    {
        _repo.CopyFixture("new-schema.yaml");
        var model = _repo.Touch("models/mlp/model.onnx");

        var entry = Assert.Single(_repo.Scan());

        Assert.Equal("default", entry.Namespace);
        Assert.Equal("mlp", entry.Name);
        var spec = entry.Served();
        Assert.Equal("mlp", spec.Name);
        Assert.Equal("onnx", spec.Format);
        Assert.Equal("1", spec.FormatVersion);
        Assert.Equal("kserve-onnxruntime", spec.Runtime);
        Assert.Equal(StorageUris.FromPath(model), spec.StorageUri);
        Assert.Equal("1", spec.Version);
        Assert.Equal(2, spec.Settings.IntraOpThreads);
    }

    [Fact]
    public void NewSchema_reader_keeps_autoscaling_fields_protocol_and_annotations()
    {
        var yaml = File.ReadAllText(_repo.CopyFixture("new-schema.yaml"));

        var document = Assert.Single(KServeYamlReader.Read(yaml));

        Assert.Null(document.Error);
        Assert.Equal("serving.kserve.io/v1beta1", document.ApiVersion);
        Assert.Equal("InferenceService", document.Kind);
        var service = document.InferenceService!;
        Assert.Equal("mlp", service.Metadata.Name);
        Assert.Equal("default", service.Metadata.Namespace);
        Assert.Equal("Serverless", service.Metadata.Annotations["serving.kserve.io/deploymentMode"]);
        Assert.Equal("10", service.Metadata.Annotations["autoscaling.knative.dev/target"]);
        Assert.Equal("2", service.Metadata.Annotations["orleans.kserve.io/intra-op-threads"]);
        Assert.Equal("mlp", service.Metadata.Labels["app"]);

        var predictor = service.Predictor!;
        Assert.Equal(1, predictor.MinReplicas);
        Assert.Equal(4, predictor.MaxReplicas);
        Assert.Equal("concurrency", predictor.ScaleMetric);
        Assert.Equal(8, predictor.ScaleTarget);
        Assert.Equal(16, predictor.ContainerConcurrency);
        Assert.Equal(60, predictor.TimeoutSeconds);
        Assert.Equal("onnx", predictor.ModelFormat!.Name);
        Assert.Equal("1", predictor.ModelFormat.Version);
        Assert.Equal("v2", predictor.ProtocolVersion);
        Assert.Equal("file://models/mlp", predictor.StorageUri);
        Assert.Null(predictor.Runtime);
        Assert.Null(predictor.Shorthand);
        Assert.Null(service.Transformer);
        Assert.Null(service.Explainer);
    }

    [Fact]
    public void OldSchema_onnx_shorthand_is_served()
    {
        _repo.CopyFixture("old-schema.yaml");
        var model = _repo.Touch("models/style/model.onnx");

        var entry = Assert.Single(_repo.Scan());

        Assert.Equal("style-sample", entry.Name);
        var spec = entry.Served();
        Assert.Equal("onnx", spec.Format);
        Assert.Equal("kserve-onnxruntime", spec.Runtime);
        Assert.Equal(StorageUris.FromPath(model), spec.StorageUri);
    }

    [Fact]
    public void OldSchema_reader_records_the_framework_shorthand()
    {
        var yaml = File.ReadAllText(_repo.CopyFixture("old-schema.yaml"));

        var predictor = Assert.Single(KServeYamlReader.Read(yaml)).InferenceService!.Predictor!;

        Assert.Equal("onnx", predictor.Shorthand);
        Assert.Equal("onnx", predictor.ModelFormat!.Name);
        Assert.Equal("file://models/style", predictor.StorageUri);
    }

    [Fact]
    public void MultiDocument_file_serves_onnx_and_rejects_sklearn_with_NoSupportingRuntime()
    {
        _repo.CopyFixture("multi-doc.yaml");
        _repo.Touch("models/classifier/model.onnx");

        var entries = _repo.Scan();

        Assert.Equal(2, entries.Length);
        Assert.Equal("onnx", entries.Named("onnx-classifier").Served().Format);
        var message = entries.Named("sklearn-iris").Failed("NoSupportingRuntime");
        Assert.Contains("sklearn", message);
    }

    [Fact]
    public void Transformer_and_explainer_resources_with_pytorch_predictors_are_NoSupportingRuntime()
    {
        _repo.CopyFixture("transformer-explainer.yaml");

        var entries = _repo.Scan();

        Assert.Equal(2, entries.Length);
        entries.Named("torch-transformer").Failed("NoSupportingRuntime");
        entries.Named("torch-explainer").Failed("NoSupportingRuntime");
    }

    [Fact]
    public void Transformer_in_front_of_a_servable_onnx_predictor_is_NoSupportingRuntime_naming_the_transformer()
    {
        _repo.Touch("models/m/model.onnx");
        _repo.Write("isvc.yaml", """
            apiVersion: serving.kserve.io/v1beta1
            kind: InferenceService
            metadata:
              name: with-transformer
            spec:
              transformer:
                containers:
                  - image: kserve/image-transformer:latest
                    name: kserve-container
              predictor:
                model:
                  modelFormat:
                    name: onnx
                  storageUri: file://models/m
            """);

        var message = Assert.Single(_repo.Scan()).Failed("NoSupportingRuntime");

        Assert.Contains("transformer", message);
    }

    [Fact]
    public void Batcher_and_canary_with_s3_storage_is_StorageUriNotSupported_naming_the_scheme()
    {
        _repo.CopyFixture("batcher-canary.yaml");

        var entry = Assert.Single(_repo.Scan());

        Assert.Equal("batched-canary", entry.Name);
        var message = entry.Failed("StorageUriNotSupported");
        Assert.Contains("s3://", message);
    }

    [Fact]
    public void Batcher_and_canary_fields_are_read()
    {
        var yaml = File.ReadAllText(_repo.CopyFixture("batcher-canary.yaml"));

        var predictor = Assert.Single(KServeYamlReader.Read(yaml)).InferenceService!.Predictor!;

        Assert.Equal(10, predictor.CanaryTrafficPercent);
        Assert.NotNull(predictor.Batcher);
        Assert.Equal(32, predictor.Batcher!.MaxBatchSize);
        Assert.Equal(500, predictor.Batcher.MaxLatencyMilliseconds);
        Assert.Equal(60, predictor.Batcher.TimeoutSeconds);
        Assert.Equal("kserve-onnxruntime", predictor.Runtime);
        Assert.Equal("s3://my-bucket/models/onnx/v2", predictor.StorageUri);
    }

    [Fact]
    public void Explicit_unknown_runtime_is_RuntimeNotRecognized_naming_it()
    {
        _repo.CopyFixture("unknown-runtime.yaml");
        _repo.Touch("models/classifier/model.onnx");

        var message = Assert.Single(_repo.Scan()).Failed("RuntimeNotRecognized");

        Assert.Contains("my-custom-onnx-runtime", message);
    }

    [Fact]
    public void ClusterServingRuntime_and_InferenceGraph_documents_produce_no_entries()
    {
        _repo.CopyFixture("runtimes-and-graph.yaml");

        Assert.Empty(_repo.Scan());
    }

    [Fact]
    public void Reader_reports_other_kinds_without_error_and_without_a_service()
    {
        var yaml = File.ReadAllText(_repo.CopyFixture("runtimes-and-graph.yaml"));

        var documents = KServeYamlReader.Read(yaml);

        Assert.Equal(["ClusterServingRuntime", "InferenceGraph"], documents.Select(d => d.Kind));
        Assert.All(documents, d =>
        {
            Assert.Null(d.Error);
            Assert.Null(d.InferenceService);
        });
    }

    [Fact]
    public void Every_fixture_in_one_folder_gives_one_entry_per_InferenceService()
    {
        foreach (var fixture in new[] { "new-schema.yaml", "old-schema.yaml", "multi-doc.yaml", "transformer-explainer.yaml", "batcher-canary.yaml", "unknown-runtime.yaml", "runtimes-and-graph.yaml" })
        {
            _repo.CopyFixture(fixture);
        }

        _repo.Touch("models/mlp/model.onnx");
        _repo.Touch("models/style/model.onnx");
        _repo.Touch("models/classifier/model.onnx");

        var entries = _repo.Scan();

        var outcome = entries.ToDictionary(e => e.Name, e => e.FailureReason ?? "served");
        Assert.Equal(
            new Dictionary<string, string>
            {
                ["mlp"] = "served",
                ["style-sample"] = "served",
                ["onnx-classifier"] = "served",
                ["sklearn-iris"] = "NoSupportingRuntime",
                ["torch-transformer"] = "NoSupportingRuntime",
                ["torch-explainer"] = "NoSupportingRuntime",
                ["batched-canary"] = "StorageUriNotSupported",
                ["custom-runtime"] = "RuntimeNotRecognized",
            },
            outcome);
    }

    [Fact]
    public void Yml_extension_and_nested_folders_are_scanned_other_files_are_not()
    {
        _repo.Touch("team-a/models/m/model.onnx");
        _repo.Write("team-a/svc.yml", Isvc("nested-yml", "file://models/m"));
        _repo.Write("notes.txt", Isvc("not-yaml-extension", "file://models/m"));

        var entry = Assert.Single(_repo.Scan());

        Assert.Equal("nested-yml", entry.Name);
        entry.Served();
    }

    [Fact]
    public void Missing_repository_folder_throws_naming_it()
    {
        var missing = Path.Combine(_repo.Root, "does-not-exist");

        var e = Assert.Throws<DirectoryNotFoundException>(() => new LocalFolderSource(missing).Scan());

        Assert.Contains(missing, e.Message);
    }

    internal static string Isvc(string name, string storageUri, string extraMetadata = "", string format = "onnx") => $"""
        apiVersion: serving.kserve.io/v1beta1
        kind: InferenceService
        metadata:
          name: {name}
        {extraMetadata}
        spec:
          predictor:
            model:
              modelFormat:
                name: {format}
              storageUri: {storageUri}
        """;
}
