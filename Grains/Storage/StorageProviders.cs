using Microsoft.Extensions.Options;
using Orleans.KServe.Contracts.Models;
using Orleans.KServe.Grains.Runtime;

namespace Orleans.KServe.Grains.Storage;

/// <summary>Settings of the silo's artifact storage.</summary>
public sealed class ArtifactStorageOptions
{
    /// <summary>
    /// The silo's own folder for artifacts it fetches (one folder per model, revision and version). Default: a folder
    /// of this process in the temporary folder. <c>file://</c> artifacts are read where they lie and are not copied.
    /// </summary>
    public string? ArtifactFolder { get; set; }

    /// <summary>The folder in effect.</summary>
    public string EffectiveArtifactFolder => ArtifactFolder ?? Path.Combine(Path.GetTempPath(), "orleans-kserve-artifacts", Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture));
}

/// <summary>
/// Turns a model's storage URI into a local file the runtime can open, on the silo that loads the model (KServe's
/// storage initializer, inside the model grain's load). One provider per URI scheme.
/// </summary>
public interface IStorageProvider
{
    /// <summary>True when this provider reads <paramref name="storageUri"/>'s scheme.</summary>
    bool Reads(Uri storageUri);

    /// <summary>
    /// The local path of <paramref name="spec"/>'s artifact, fetched into <paramref name="artifactFolder"/> when it is
    /// not local already. Throws <see cref="ModelLoadException"/> with <see cref="FailureReasons.ModelArtifactNotFound"/>
    /// when there is none.
    /// </summary>
    ValueTask<string> ResolveAsync(ModelSpec spec, Uri storageUri, string artifactFolder, CancellationToken cancellationToken);
}

/// <summary>
/// <c>file://</c>: the artifact is already on this machine and is read in place. The URI names the artifact itself,
/// or a folder holding <c>model.&lt;format&gt;</c>.
/// </summary>
public sealed class FileStorageProvider : IStorageProvider
{
    /// <inheritdoc />
    public bool Reads(Uri storageUri) => storageUri.IsFile;

    /// <inheritdoc />
    public ValueTask<string> ResolveAsync(ModelSpec spec, Uri storageUri, string artifactFolder, CancellationToken cancellationToken)
    {
        var path = storageUri.LocalPath;
        if (File.Exists(path))
        {
            return new ValueTask<string>(path);
        }

        var inside = Path.Combine(path, $"model.{spec.Format}");
        if (Directory.Exists(path) && File.Exists(inside))
        {
            return new ValueTask<string>(inside);
        }

        throw new ModelLoadException(
            Directory.Exists(path) ? $"'{path}' holds no model.{spec.Format}" : $"model file '{path}' does not exist",
            reason: FailureReasons.ModelArtifactNotFound);
    }
}

/// <summary>Every registered storage provider, found by the scheme of a storage URI.</summary>
public sealed class ArtifactStorage(IEnumerable<IStorageProvider> providers, IOptions<ArtifactStorageOptions> options)
{
    private readonly IStorageProvider[] _providers = providers.ToArray();

    /// <summary>The local path of <paramref name="spec"/>'s artifact on this silo.</summary>
    public ValueTask<string> ResolveAsync(ModelSpec spec, ModelKey key, CancellationToken cancellationToken)
    {
        if (!Uri.TryCreate(spec.StorageUri, UriKind.Absolute, out var uri))
        {
            throw new ModelLoadException($"'{spec.StorageUri}' is not an absolute storage URI", reason: FailureReasons.StorageUriNotSupported);
        }

        var provider = _providers.FirstOrDefault(p => p.Reads(uri))
            ?? throw new ModelLoadException($"no storage provider on this silo reads '{uri.Scheme}://' URIs", reason: FailureReasons.StorageUriNotSupported);
        var folder = Path.Combine(options.Value.EffectiveArtifactFolder, key.Namespace, key.Service, key.Revision.ToString(System.Globalization.CultureInfo.InvariantCulture), key.Version);
        return provider.ResolveAsync(spec, uri, folder, cancellationToken);
    }
}
