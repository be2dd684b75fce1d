using System.Collections.Concurrent;
using System.Runtime.InteropServices;
using Orleans.KServe.Contracts.Inference;
using Orleans.KServe.Contracts.Models;
using Orleans.KServe.Contracts.Tensors;
using Orleans.KServe.Grains.Storage;

namespace Orleans.KServe.Grains.Tests;

/// <summary>
/// A storage provider for <c>copy://</c> URIs that copies a file of this machine into the silo's artifact folder, as a
/// provider for remote storage fetches one: it records where each artifact went.
/// </summary>
public sealed class CopyingStorageProvider : IStorageProvider
{
    public static ConcurrentDictionary<string, string> Fetched { get; } = new();

    public bool Reads(Uri storageUri) => storageUri.Scheme == "copy";

    public ValueTask<string> ResolveAsync(ModelSpec spec, Uri storageUri, string artifactFolder, CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(artifactFolder);
        var target = Path.Combine(artifactFolder, $"model.{spec.Format}");
        File.Copy(Uri.UnescapeDataString(storageUri.AbsolutePath), target, overwrite: true);
        Fetched[spec.Name] = target;
        return new ValueTask<string>(target);
    }
}

/// <summary>A model's storage URI is resolved to a local artifact by the silo that loads it, inside the grain's load.</summary>
[Collection(ClusterCollection.Name)]
public sealed class ArtifactStorageTests(ClusterFixture fixture)
{
    private static InferenceRequest Pair(float a, float b) =>
        new("s", [new Tensor("input", TensorDataType.FP32, [1, 2], MemoryMarshal.AsBytes(new[] { a, b }.AsSpan()).ToArray())], []);

    [Fact]
    public async Task A_model_is_loaded_from_where_the_silos_storage_provider_put_its_artifact()
    {
        var source = Path.Combine(fixture.ModelsFolder, "double", "model.onnx");
        var entry = new ServiceEntry("tests", "copied", new ModelSpec("copied", "onnx", "kserve-onnxruntime", "copy://" + source, ModelRuntimeSettings.Default));
        var table = await fixture.DeclareAsync(nameof(A_model_is_loaded_from_where_the_silos_storage_provider_put_its_artifact), entry);
        var grain = fixture.Grain(table, "copied");
        await ClusterFixture.WaitForStateAsync(grain, ModelState.Loaded, "the copied model to load");

        var fetched = CopyingStorageProvider.Fetched["copied"];
        var revision = table.Services.Single(s => s.Name == "copied").Revision;
        Assert.EndsWith(Path.Combine("tests", "copied", revision.ToString(System.Globalization.CultureInfo.InvariantCulture), "1", "model.onnx"), fetched);
        Assert.True(File.Exists(fetched));
        var answer = await grain.InferAsync(Pair(3, 4));
        Assert.Equal([6f, 8f], MemoryMarshal.Cast<byte, float>(answer.Outputs[0].Data.Span).ToArray());
    }

    [Fact]
    public async Task A_file_uri_whose_artifact_is_gone_fails_to_load_as_ModelArtifactNotFound()
    {
        var missing = new Uri(Path.Combine(fixture.ModelsFolder, "no-such-model", "model.onnx")).AbsoluteUri;
        var table = await fixture.DeclareAsync(nameof(A_file_uri_whose_artifact_is_gone_fails_to_load_as_ModelArtifactNotFound),
            new ServiceEntry("tests", "gone", new ModelSpec("gone", "onnx", "kserve-onnxruntime", missing, ModelRuntimeSettings.Default)));
        var status = await ClusterFixture.WaitForStateAsync(fixture.Grain(table, "gone"), ModelState.FailedToLoad, "the missing model to fail");
        Assert.Equal(FailureReasons.ModelArtifactNotFound, status.FailureReason);
        Assert.Contains("no-such-model", status.Reason);
    }

    [Fact]
    public async Task A_storage_uri_no_provider_reads_fails_to_load_as_StorageUriNotSupported()
    {
        var table = await fixture.DeclareAsync(nameof(A_storage_uri_no_provider_reads_fails_to_load_as_StorageUriNotSupported),
            new ServiceEntry("tests", "unread", new ModelSpec("unread", "onnx", "kserve-onnxruntime", "s3://bucket/model", ModelRuntimeSettings.Default)));
        var status = await ClusterFixture.WaitForStateAsync(fixture.Grain(table, "unread"), ModelState.FailedToLoad, "the unreadable model to fail");
        Assert.Equal(FailureReasons.StorageUriNotSupported, status.FailureReason);
        Assert.Contains("s3://", status.Reason);
    }

    [Fact]
    public async Task The_file_provider_reads_a_file_or_the_model_file_inside_a_folder_in_place()
    {
        var provider = new FileStorageProvider();
        var spec = new ModelSpec("m", "onnx", "kserve-onnxruntime", "", ModelRuntimeSettings.Default);
        var file = Path.Combine(fixture.ModelsFolder, "double", "model.onnx");
        Assert.Equal(file, await provider.ResolveAsync(spec, new Uri(file), "/unused", default));
        Assert.Equal(file, await provider.ResolveAsync(spec, new Uri(Path.GetDirectoryName(file)!), "/unused", default));
        var empty = Directory.CreateTempSubdirectory("kserve-empty-").FullName;
        try
        {
            var e = await Assert.ThrowsAsync<Runtime.ModelLoadException>(async () => await provider.ResolveAsync(spec, new Uri(empty), "/unused", default));
            Assert.Equal(FailureReasons.ModelArtifactNotFound, e.Reason);
            Assert.Contains("holds no model.onnx", e.Message);
        }
        finally
        {
            Directory.Delete(empty);
        }
    }
}
