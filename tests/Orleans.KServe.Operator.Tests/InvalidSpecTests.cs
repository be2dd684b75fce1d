using Orleans.KServe.Operator.Storage;
using Orleans.KServe.Operator.Reconcile;
using Orleans.KServe.Operator.Resources;
using static Orleans.KServe.Operator.Tests.KServeShapesTests;

namespace Orleans.KServe.Operator.Tests;

/// <summary>Broken resources: each becomes one visible InvalidSpec entry and the rest of the folder still serves.</summary>
public sealed class InvalidSpecTests : IDisposable
{
    private readonly TempRepository _repo = new();

    public void Dispose() => _repo.Dispose();

    [Fact]
    public void File_that_is_not_yaml_gives_one_InvalidSpec_entry_naming_file_and_line_and_the_rest_still_serve()
    {
        _repo.Touch("models/m/model.onnx");
        _repo.Write("a-good.yaml", Isvc("good-a", "file://models/m"));
        _repo.Write("broken.yaml", """
            apiVersion: serving.kserve.io/v1beta1
            kind: InferenceService
            metadata:
              name: broken
            spec:
              predictor: [unclosed
            """);
        _repo.Write("z-good.yaml", Isvc("good-z", "file://models/m"));

        var entries = _repo.Scan();

        Assert.Equal(3, entries.Length);
        entries.Named("good-a").Served();
        entries.Named("good-z").Served();
        var broken = Assert.Single(entries, e => e.Spec is null);
        var message = broken.Failed("InvalidSpec");
        Assert.Contains("broken.yaml", message);
        Assert.Contains("broken.yaml", broken.Name);
        Assert.Matches(@"line \d+", message);
    }

    [Fact]
    public void Yaml_error_reports_the_line_where_the_problem_is()
    {
        // Line 4 holds "name: a: b", a mapping where a plain value is expected.
        var yaml = "apiVersion: serving.kserve.io/v1beta1\nkind: InferenceService\nmetadata:\n  name: a: b\nspec:\n  predictor: {}\n";

        var e = Assert.Throws<ResourceFormatException>(() => KServeYamlReader.Read(yaml));

        Assert.Contains("line 4", e.Message);
    }

    [Fact]
    public void Duplicate_yaml_keys_become_an_InvalidSpec_entry_not_a_crash()
    {
        _repo.Touch("models/m/model.onnx");
        _repo.Write("dup-keys.yaml", """
            apiVersion: serving.kserve.io/v1beta1
            kind: InferenceService
            metadata:
              name: dup
              name: dup-again
            spec:
              predictor:
                model:
                  modelFormat:
                    name: onnx
                  storageUri: file://models/m
            """);
        _repo.Write("ok.yaml", Isvc("ok", "file://models/m"));

        var entries = _repo.Scan();

        entries.Named("ok").Served();
        var bad = Assert.Single(entries, e => e.Spec is null);
        Assert.Contains("dup-keys.yaml", bad.Failed("InvalidSpec"));
    }

    [Fact]
    public void Document_without_metadata_name_is_InvalidSpec_and_its_neighbours_serve()
    {
        _repo.Touch("models/m/model.onnx");
        _repo.Write("two.yaml", """
            apiVersion: serving.kserve.io/v1beta1
            kind: InferenceService
            metadata:
              namespace: default
            spec:
              predictor:
                model:
                  modelFormat:
                    name: onnx
                  storageUri: file://models/m
            ---
            apiVersion: serving.kserve.io/v1beta1
            kind: InferenceService
            metadata:
              name: named
            spec:
              predictor:
                model:
                  modelFormat:
                    name: onnx
                  storageUri: file://models/m
            """);

        var entries = _repo.Scan();

        Assert.Equal(2, entries.Length);
        entries.Named("named").Served();
        var message = Assert.Single(entries, e => e.Spec is null).Failed("InvalidSpec");
        Assert.Contains("metadata.name", message);
        Assert.Contains("two.yaml", message);
    }

    [Theory]
    [InlineData("MyModel")]
    [InlineData("my_model")]
    [InlineData("1model")]
    [InlineData("model-")]
    public void Invalid_names_are_InvalidSpec_quoting_the_name(string name)
    {
        _repo.Touch("models/m/model.onnx");
        _repo.Write("isvc.yaml", Isvc(name, "file://models/m"));

        var message = Assert.Single(_repo.Scan()).Failed("InvalidSpec");

        Assert.Contains($"'{name}'", message);
    }

    [Fact]
    public void Duplicate_name_across_two_files_serves_the_first_and_rejects_the_second()
    {
        var first = _repo.Touch("models/first/model.onnx");
        _repo.Touch("models/second/model.onnx");
        _repo.Write("a.yaml", Isvc("twice", "file://models/first"));
        _repo.Write("b.yaml", Isvc("twice", "file://models/second"));

        var entries = _repo.Scan();

        Assert.Equal(2, entries.Length);
        Assert.Equal(StorageUris.FromPath(first), entries.Named("twice").Served().StorageUri);
        var second = Assert.Single(entries, e => e.Spec is null);
        var message = second.Failed("InvalidSpec");
        Assert.Contains("more than once", message);
        Assert.Contains("twice", message);
        Assert.Contains("b.yaml", message);
    }

    [Fact]
    public void Same_name_in_two_namespaces_is_two_services()
    {
        _repo.Touch("models/m/model.onnx");
        _repo.Write("a.yaml", Isvc("shared", "file://models/m", "  namespace: team-a"));
        _repo.Write("b.yaml", Isvc("shared", "file://models/m", "  namespace: team-b"));

        var entries = _repo.Scan();

        Assert.Equal(["team-a", "team-b"], entries.Select(e => e.Namespace).Order());
        Assert.All(entries, e => e.Served());
    }

    [Fact]
    public void Intra_op_threads_annotation_sets_the_setting_and_other_orleans_annotations_are_kept_as_extra()
    {
        _repo.Touch("models/m/model.onnx");
        _repo.Write("isvc.yaml", Isvc("threads", "file://models/m", """
              annotations:
                orleans.kserve.io/intra-op-threads: "2"
                orleans.kserve.io/something-else: "x"
                serving.kserve.io/deploymentMode: RawDeployment
            """));

        var settings = Assert.Single(_repo.Scan()).Served().Settings;

        Assert.Equal(2, settings.IntraOpThreads);
        Assert.Equal("x", settings.Extra["orleans.kserve.io/something-else"]);
        Assert.False(settings.Extra.ContainsKey("orleans.kserve.io/intra-op-threads"));
        Assert.False(settings.Extra.ContainsKey("serving.kserve.io/deploymentMode"));
    }

    [Fact]
    public void No_annotations_means_default_settings()
    {
        _repo.Touch("models/m/model.onnx");
        _repo.Write("isvc.yaml", Isvc("plain", "file://models/m"));

        var settings = Assert.Single(_repo.Scan()).Served().Settings;

        Assert.Equal(0, settings.IntraOpThreads);
        Assert.Empty(settings.Extra);
    }

    [Theory]
    [InlineData("zero")]
    [InlineData("0")]
    [InlineData("-1")]
    [InlineData("2.5")]
    [InlineData("4096")]
    public void Bad_intra_op_threads_value_is_InvalidPredictorSpec_naming_the_annotation(string value)
    {
        _repo.Touch("models/m/model.onnx");
        _repo.Write("isvc.yaml", Isvc("threads", "file://models/m", $"""
              annotations:
                orleans.kserve.io/intra-op-threads: "{value}"
            """));

        var message = Assert.Single(_repo.Scan()).Failed("InvalidPredictorSpec");

        Assert.Contains("orleans.kserve.io/intra-op-threads", message);
        Assert.Contains($"'{value}'", message);
    }

    [Fact]
    public void Missing_predictor_is_InvalidPredictorSpec()
    {
        _repo.Write("isvc.yaml", """
            apiVersion: serving.kserve.io/v1beta1
            kind: InferenceService
            metadata:
              name: no-predictor
            spec:
              transformer:
                containers:
                  - image: kserve/image-transformer:latest
            """);

        Assert.Contains("spec.predictor", Assert.Single(_repo.Scan()).Failed("InvalidPredictorSpec"));
    }

    [Fact]
    public void Model_without_model_format_is_InvalidPredictorSpec()
    {
        _repo.Write("isvc.yaml", """
            apiVersion: serving.kserve.io/v1beta1
            kind: InferenceService
            metadata:
              name: no-format
            spec:
              predictor:
                model:
                  storageUri: file://models/m
            """);

        Assert.Contains("modelFormat", Assert.Single(_repo.Scan()).Failed("InvalidPredictorSpec"));
    }

    [Fact]
    public void Custom_container_predictor_is_NoSupportingRuntime()
    {
        _repo.Write("isvc.yaml", """
            apiVersion: serving.kserve.io/v1beta1
            kind: InferenceService
            metadata:
              name: custom-container
            spec:
              predictor:
                containers:
                  - name: kserve-container
                    image: example.com/my-model-server:1.0
                    ports:
                      - containerPort: 8080
                        protocol: TCP
            """);

        Assert.Single(_repo.Scan()).Failed("NoSupportingRuntime");
    }

    [Fact]
    public void Two_framework_keys_in_one_old_schema_predictor_are_InvalidSpec()
    {
        _repo.Write("isvc.yaml", """
            apiVersion: serving.kserve.io/v1beta1
            kind: InferenceService
            metadata:
              name: two-frameworks
            spec:
              predictor:
                onnx:
                  storageUri: file://models/m
                sklearn:
                  storageUri: file://models/m
            """);

        var message = Assert.Single(_repo.Scan()).Failed("InvalidSpec");

        Assert.Contains("onnx", message);
        Assert.Contains("sklearn", message);
    }

    [Theory]
    [InlineData("minReplicas: -1", "replica")]
    [InlineData("maxReplicas: -3", "replica")]
    [InlineData("canaryTrafficPercent: 150", "canaryTrafficPercent")]
    [InlineData("minReplicas: two", "minReplicas")]
    [InlineData("scaleTarget: 99999999999", "scaleTarget")]
    public void Bad_component_numbers_are_InvalidSpec_naming_the_field(string line, string field)
    {
        _repo.Touch("models/m/model.onnx");
        _repo.Write("isvc.yaml", $"""
            apiVersion: serving.kserve.io/v1beta1
            kind: InferenceService
            metadata:
              name: bad-numbers
            spec:
              predictor:
                {line}
                model:
                  modelFormat:
                    name: onnx
                  storageUri: file://models/m
            """);

        var message = Assert.Single(_repo.Scan()).Failed("InvalidSpec");

        Assert.Contains(field, message);
    }

    [Fact]
    public void Foreign_api_group_with_the_InferenceService_kind_is_InvalidSpec()
    {
        _repo.Write("isvc.yaml", """
            apiVersion: serving.kubeflow.org/v1alpha2
            kind: InferenceService
            metadata:
              name: kfserving-era
            spec:
              default:
                predictor:
                  onnx:
                    storageUri: file://models/m
            """);

        Assert.Contains("serving.kubeflow.org", Assert.Single(_repo.Scan()).Failed("InvalidSpec"));
    }

    [Fact]
    public void Empty_file_and_empty_documents_produce_nothing()
    {
        _repo.Touch("models/m/model.onnx");
        _repo.Write("empty.yaml", "");
        _repo.Write("comments.yaml", "# nothing here yet\n");
        _repo.Write("separators.yaml", "---\n" + Isvc("only", "file://models/m") + "\n---\n");

        var entry = Assert.Single(_repo.Scan());

        Assert.Equal("only", entry.Name);
        entry.Served();
    }

    [Fact]
    public void Non_mapping_document_is_InvalidSpec()
    {
        _repo.Write("list.yaml", "- a\n- b\n");

        var message = Assert.Single(_repo.Scan()).Failed("InvalidSpec");

        Assert.Contains("list.yaml", message);
    }

    [Fact]
    public void Reconcile_without_the_folder_source_reports_NoSupportingRuntime_for_an_unserved_format()
    {
        var service = Assert.Single(KServeYamlReader.Read(Isvc("xgb", "file://models/m", format: "xgboost"))).InferenceService!;

        var entry = InferenceServiceReconciler.Reconcile(service, _repo.Root, BuiltInRuntimes.All, FileStorageCatalog.Instance);

        Assert.Equal("NoSupportingRuntime", entry.FailureReason);
        Assert.Contains("xgboost", entry.FailureMessage);
        Assert.Contains("onnx", entry.FailureMessage);
    }
}
