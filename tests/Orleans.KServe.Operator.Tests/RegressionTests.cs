using Orleans.KServe.Operator.Resources;
using static Orleans.KServe.Operator.Tests.KServeShapesTests;

namespace Orleans.KServe.Operator.Tests;

/// <summary>
/// Regression tests for product bugs found by this suite (each was failing before its fix); every test states the
/// behaviour a user relies on.
/// </summary>
public sealed class RegressionTests : IDisposable
{
    private readonly TempRepository _repo = new();

    public void Dispose() => _repo.Dispose();

    /// <summary>
    /// YamlDotNet 18.1.0 throws <see cref="InvalidOperationException"/> (not YamlException) for an unclosed flow
    /// sequence or mapping followed by more lines. KServeYamlReader.Read catches only YamlException (line 31) and
    /// LocalFolderSource.Scan only ResourceFormatException/IOException (line 44), so one typo in one file makes the
    /// whole scan throw: nothing in the folder is served and the local repository service fails to start.
    /// </summary>
    [Fact]
    public void Unclosed_flow_sequence_in_one_file_does_not_break_the_whole_scan()
    {
        _repo.Touch("models/m/model.onnx");
        _repo.Write("a-good.yaml", Isvc("good", "file://models/m"));
        _repo.Write("typo.yaml", """
            apiVersion: serving.kserve.io/v1beta1
            kind: InferenceService
            metadata:
              name: typo
            spec:
              transformer:
                containers:
                  - name: kserve-container
                    args: ["--model_name", "mnist"
                    image: kserve/image-transformer:latest
              predictor:
                model:
                  modelFormat:
                    name: onnx
                  storageUri: file://models/m
            """);

        var entries = _repo.Scan();

        Assert.Equal(2, entries.Length);
        entries.Named("good").Served();
        var message = Assert.Single(entries, e => e.Spec is null).Failed("InvalidSpec");
        Assert.Contains("typo.yaml", message);
    }

    /// <summary>Same root cause as above, at the reader: Read's contract is to throw ResourceFormatException for text that is not YAML.</summary>
    [Fact]
    public void Reader_reports_an_unclosed_flow_mapping_as_ResourceFormatException()
    {
        var yaml = "apiVersion: serving.kserve.io/v1beta1\nkind: InferenceService\nmetadata:\n  name: ok\n  labels: {app: mlp\nspec: {}\n";

        var e = Record.Exception(() => KServeYamlReader.Read(yaml));

        Assert.IsType<ResourceFormatException>(e);
    }

    /// <summary>
    /// KServeYamlReader.Read (lines 51-52) reads apiVersion and kind outside the per-document try block, so a
    /// document whose <c>kind</c> is not a single value throws out of Read for the whole file: the valid
    /// InferenceService in the file's other document is not served. Expected: that document alone is an error.
    /// </summary>
    [Fact]
    public void Document_with_a_non_scalar_kind_fails_alone_not_the_whole_file()
    {
        _repo.Touch("models/m/model.onnx");
        _repo.Write("two-docs.yaml", "kind: [InferenceService]\nmetadata:\n  name: odd\n---\n" + Isvc("neighbour", "file://models/m"));

        var entries = _repo.Scan();

        entries.Named("neighbour").Served();
        Assert.Single(entries, e => e.Spec is null).Failed("InvalidSpec");
    }

    /// <summary>
    /// KServeYamlReader.cs line 147 maps the old schema's <c>runtimeVersion</c> to the model format version. In
    /// KServe, runtimeVersion is the runtime's container image tag ("Runtime version of the predictor docker
    /// image"), not a model format version, so an ordinary old-schema resource that pins an image tag is rejected
    /// with NoSupportingRuntime ("onnx:21.09-py3"). Expected: served, with no format version.
    /// </summary>
    [Fact]
    public void Old_schema_runtimeVersion_is_an_image_tag_not_a_model_format_version()
    {
        _repo.Touch("models/style/model.onnx");
        _repo.Write("isvc.yaml", """
            apiVersion: serving.kserve.io/v1beta1
            kind: InferenceService
            metadata:
              name: style-sample
            spec:
              predictor:
                onnx:
                  storageUri: file://models/style
                  runtimeVersion: 21.09-py3
            """);

        var spec = Assert.Single(_repo.Scan()).Served();

        Assert.Null(spec.FormatVersion);
    }

    /// <summary>
    /// KServe's webhook rejects minReplicas greater than maxReplicas ("MinReplicas cannot be greater than
    /// MaxReplicas"); KServeYamlReader.ReadComponent (line 176) only rejects negative counts, so such a resource is
    /// served here. Expected: InvalidSpec naming the two fields.
    /// </summary>
    [Fact]
    public void MinReplicas_greater_than_maxReplicas_is_InvalidSpec()
    {
        _repo.Touch("models/m/model.onnx");
        _repo.Write("isvc.yaml", """
            apiVersion: serving.kserve.io/v1beta1
            kind: InferenceService
            metadata:
              name: inverted
            spec:
              predictor:
                minReplicas: 5
                maxReplicas: 2
                model:
                  modelFormat:
                    name: onnx
                  storageUri: file://models/m
            """);

        var message = Assert.Single(_repo.Scan()).Failed("InvalidSpec");

        Assert.Contains("minReplicas", message);
        Assert.Contains("maxReplicas", message);
    }
}
