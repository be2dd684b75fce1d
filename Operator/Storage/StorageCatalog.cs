using System.Globalization;
using Orleans.KServe.Operator.Reconcile;

namespace Orleans.KServe.Operator.Storage;

/// <summary>One version a storage location holds: its number and the URI of its artifact.</summary>
public sealed record StorageVersion(string Version, string Uri);

/// <summary>What a storage location holds: its versions, newest first, or why there are none.</summary>
public sealed record StorageListing(IReadOnlyList<StorageVersion> Versions, string? Error)
{
    /// <summary>A location that holds nothing servable.</summary>
    public static StorageListing Missing(string error) => new([], error);
}

/// <summary>
/// What a source asks of the storage behind a <c>storageUri</c> before the reconcile: which versions are there (the
/// reconcile picks among them by the version policy). The reconcile itself reads no storage.
/// </summary>
public interface IStorageCatalog
{
    /// <summary>The versions at <paramref name="storageUri"/> (an absolute URI) of a model in <paramref name="format"/>.</summary>
    StorageListing List(string storageUri, string format);
}

/// <summary>
/// The catalog of <c>file://</c> storage: the URI names the artifact itself, a folder holding
/// <c>model.&lt;format&gt;</c> (version 1), or Triton's layout of numeric version folders each holding one.
/// </summary>
public sealed class FileStorageCatalog : IStorageCatalog
{
    /// <summary>The one instance (it keeps no state).</summary>
    public static FileStorageCatalog Instance { get; } = new();

    /// <inheritdoc />
    public StorageListing List(string storageUri, string format)
    {
        var path = new Uri(storageUri).LocalPath;
        if (File.Exists(path))
        {
            return new StorageListing([new StorageVersion("1", storageUri)], null);
        }

        if (!Directory.Exists(path))
        {
            return StorageListing.Missing($"'{path}' does not exist");
        }

        var fileName = $"model.{format}";
        var direct = Path.Combine(path, fileName);
        if (File.Exists(direct))
        {
            return new StorageListing([new StorageVersion("1", FileUri(direct))], null);
        }

        var numbered = Directory.EnumerateDirectories(path)
            .Select(d => (Dir: d, Name: Path.GetFileName(d)))
            .Where(d => VersionPolicy.IsVersion(d.Name) && File.Exists(Path.Combine(d.Dir, fileName)))
            .OrderByDescending(d => long.Parse(d.Name, CultureInfo.InvariantCulture))
            .Select(d => new StorageVersion(d.Name, FileUri(Path.Combine(d.Dir, fileName))))
            .ToList();
        return numbered.Count == 0
            ? StorageListing.Missing($"'{path}' holds no {fileName} (nor <version>/{fileName})")
            : new StorageListing(numbered, null);
    }

    private static string FileUri(string path) => StorageUris.FromPath(path);
}

/// <summary>Storage URIs as the specs carry them.</summary>
public static class StorageUris
{
    /// <summary>The <c>file://</c> URI of an absolute local path (a string operation: the path need not exist).</summary>
    public static string FromPath(string path) => new Uri(Path.GetFullPath(path)).AbsoluteUri;
}
