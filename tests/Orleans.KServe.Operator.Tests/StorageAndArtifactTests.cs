using Orleans.KServe.Operator.Storage;
using Orleans.KServe.Operator.Reconcile;
using static Orleans.KServe.Operator.Tests.KServeShapesTests;

namespace Orleans.KServe.Operator.Tests;

/// <summary>Where <c>storageUri</c> points and which file the reconciler picks there.</summary>
public sealed class StorageAndArtifactTests : IDisposable
{
    private readonly TempRepository _repo = new();

    public void Dispose() => _repo.Dispose();

    [Fact]
    public void Relative_file_uri_resolves_against_the_yaml_files_own_folder()
    {
        // Same relative path from two folders: each YAML gets the model beside it, not the repository root's or the cwd's.
        var modelA = _repo.Touch("team-a/models/m/model.onnx");
        var modelB = _repo.Touch("team-b/deep/models/m/model.onnx");
        _repo.Touch("models/m/model.onnx");
        _repo.Write("team-a/a.yaml", Isvc("a", "file://models/m"));
        _repo.Write("team-b/deep/b.yaml", Isvc("b", "file://models/m"));

        var entries = _repo.Scan();

        Assert.Equal(StorageUris.FromPath(modelA), entries.Named("a").Served().StorageUri);
        Assert.Equal(StorageUris.FromPath(modelB), entries.Named("b").Served().StorageUri);
    }

    [Fact]
    public void Relative_file_uri_with_dot_segments_is_normalised()
    {
        var model = _repo.Touch("shared/models/m/model.onnx");
        _repo.Write("team/isvc.yaml", Isvc("dots", "file://../shared/models/m"));

        Assert.Equal(StorageUris.FromPath(model), Assert.Single(_repo.Scan()).Served().StorageUri);
    }

    [Fact]
    public void Absolute_file_uri_with_three_slashes_works()
    {
        using var elsewhere = new TempRepository();
        var model = elsewhere.Touch("abs/model.onnx");
        _repo.Write("isvc.yaml", Isvc("absolute", "file://" + elsewhere.PathOf("abs")));
        Assert.StartsWith("file:///", "file://" + elsewhere.PathOf("abs"));

        Assert.Equal(StorageUris.FromPath(model), Assert.Single(_repo.Scan()).Served().StorageUri);
    }

    [Fact]
    public void Storage_uri_can_name_the_model_file_itself()
    {
        var model = _repo.Touch("models/net-v3.onnx");
        _repo.Write("isvc.yaml", Isvc("file-artifact", "file://models/net-v3.onnx"));

        var spec = Assert.Single(_repo.Scan()).Served();

        Assert.Equal(StorageUris.FromPath(model), spec.StorageUri);
        Assert.Equal("1", spec.Version);
    }

    [Fact]
    public void Storage_uri_can_name_a_folder_holding_model_onnx()
    {
        var model = _repo.Touch("models/folder/model.onnx");
        _repo.Touch("models/folder/README.md");
        _repo.Write("isvc.yaml", Isvc("folder-artifact", "file://models/folder"));

        var spec = Assert.Single(_repo.Scan()).Served();

        Assert.Equal(StorageUris.FromPath(model), spec.StorageUri);
        Assert.Equal("1", spec.Version);
    }

    [Fact]
    public void Triton_layout_serves_the_highest_numeric_version_and_reports_it()
    {
        _repo.Touch("models/triton/1/model.onnx");
        _repo.Touch("models/triton/2/model.onnx");
        var ten = _repo.Touch("models/triton/10/model.onnx");
        Directory.CreateDirectory(_repo.PathOf("models/triton/11"));           // no model.onnx in it
        _repo.Touch("models/triton/latest/model.onnx");                        // not numeric
        _repo.Touch("models/triton/99-old/model.onnx");                        // not numeric
        _repo.Write("models/triton/config.pbtxt", "platform: \"onnxruntime_onnx\"");
        _repo.Write("isvc.yaml", Isvc("triton", "file://models/triton"));

        var spec = Assert.Single(_repo.Scan()).Served();

        Assert.Equal(StorageUris.FromPath(ten), spec.StorageUri);
        Assert.Equal("10", spec.Version);
    }

    [Fact]
    public void Model_onnx_directly_in_the_folder_wins_over_version_folders()
    {
        var direct = _repo.Touch("models/both/model.onnx");
        _repo.Touch("models/both/3/model.onnx");
        _repo.Write("isvc.yaml", Isvc("both", "file://models/both"));

        var spec = Assert.Single(_repo.Scan()).Served();

        Assert.Equal(StorageUris.FromPath(direct), spec.StorageUri);
        Assert.Equal("1", spec.Version);
    }

    [Fact]
    public void Missing_artifact_is_ModelArtifactNotFound_with_the_path()
    {
        _repo.Write("isvc.yaml", Isvc("missing", "file://models/nowhere"));

        var message = Assert.Single(_repo.Scan()).Failed("ModelArtifactNotFound");

        Assert.Contains(_repo.PathOf("models/nowhere"), message);
    }

    [Fact]
    public void Folder_without_a_model_file_is_ModelArtifactNotFound_with_the_path()
    {
        _repo.Touch("models/empty/weights.bin");
        Directory.CreateDirectory(_repo.PathOf("models/empty/1"));
        _repo.Write("isvc.yaml", Isvc("empty", "file://models/empty"));

        var message = Assert.Single(_repo.Scan()).Failed("ModelArtifactNotFound");

        Assert.Contains(_repo.PathOf("models/empty"), message);
        Assert.Contains("model.onnx", message);
    }

    [Fact]
    public void Missing_storage_uri_is_InvalidPredictorSpec()
    {
        _repo.Write("isvc.yaml", """
            apiVersion: serving.kserve.io/v1beta1
            kind: InferenceService
            metadata:
              name: no-storage
            spec:
              predictor:
                model:
                  modelFormat:
                    name: onnx
            """);

        var message = Assert.Single(_repo.Scan()).Failed("InvalidPredictorSpec");

        Assert.Contains("storageUri", message);
    }

    [Theory]
    [InlineData("gs://kfserving-examples/models/onnx", "gs://")]
    [InlineData("pvc://models-pvc/mlp", "pvc://")]
    [InlineData("https://example.com/model.onnx", "https://")]
    [InlineData("hf://org/model", "hf://")]
    public void Remote_storage_schemes_are_StorageUriNotSupported_naming_the_scheme(string uri, string scheme)
    {
        _repo.Write("isvc.yaml", Isvc("remote", uri));

        var message = Assert.Single(_repo.Scan()).Failed("StorageUriNotSupported");

        Assert.Contains(scheme, message);
    }

    [Fact]
    public void TryResolveStorage_handles_bare_relative_paths_escapes_and_empty_paths()
    {
        var baseFolder = _repo.Root;

        Assert.True(InferenceServiceReconciler.TryResolveStorage("models/m", baseFolder, out var bare, out _));
        Assert.Equal(_repo.PathOf("models/m"), bare);

        Assert.True(InferenceServiceReconciler.TryResolveStorage("file://my%20models/m", baseFolder, out var escaped, out _));
        Assert.Equal(_repo.PathOf("my models/m"), escaped);

        Assert.False(InferenceServiceReconciler.TryResolveStorage("file://", baseFolder, out _, out var error));
        Assert.Contains("file://", error);
    }

    [Fact]
    public void The_file_catalog_looks_for_the_file_named_after_the_format()
    {
        _repo.Touch("m/model.onnx");
        var uri = StorageUris.FromPath(_repo.PathOf("m"));

        Assert.Contains("model.pt", FileStorageCatalog.Instance.List(uri, "pt").Error);
        var listing = FileStorageCatalog.Instance.List(uri, "onnx");
        Assert.Null(listing.Error);
        Assert.Equal([new StorageVersion("1", StorageUris.FromPath(_repo.PathOf("m/model.onnx")))], listing.Versions);
    }

    [Fact]
    public void The_reconcile_reads_no_storage_but_the_versions_its_catalog_lists()
    {
        // A catalog that lists versions no file system holds: the reconcile takes them as they are.
        var catalog = new ListedCatalog(new StorageListing(
            [new StorageVersion("7", "file:///nowhere/m/7/model.onnx"), new StorageVersion("3", "file:///nowhere/m/3/model.onnx")], null));
        var service = Orleans.KServe.Operator.Resources.KServeYamlReader.Read(Isvc("listed", "file:///nowhere/m")).Single().InferenceService!;

        var entry = InferenceServiceReconciler.Reconcile(service, _repo.Root, BuiltInRuntimes.All, catalog);

        Assert.Equal("file:///nowhere/m/7/model.onnx", entry.Served().StorageUri);
        Assert.Equal("7", entry.Served().Version);
        Assert.Equal(["file:///nowhere/m"], catalog.Asked);
    }

    private sealed class ListedCatalog(StorageListing listing) : IStorageCatalog
    {
        public List<string> Asked { get; } = [];

        public StorageListing List(string storageUri, string format)
        {
            Asked.Add(storageUri);
            return listing;
        }
    }
}
