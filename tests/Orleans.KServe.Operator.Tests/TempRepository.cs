using System.Collections.Immutable;
using Orleans.KServe.Contracts.Models;
using Orleans.KServe.Operator.Sources;

namespace Orleans.KServe.Operator.Tests;

/// <summary>A model repository folder created for one test and deleted afterwards.</summary>
internal sealed class TempRepository : IDisposable
{
    public TempRepository()
    {
        Root = Path.Combine(Path.GetTempPath(), "okserve-op-tests-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Root);
    }

    /// <summary>The folder's full path.</summary>
    public string Root { get; }

    /// <summary>Full path of <paramref name="relative"/> inside the folder.</summary>
    public string PathOf(string relative) => Path.GetFullPath(Path.Combine(Root, relative));

    /// <summary>Writes a text file, creating its folders.</summary>
    public string Write(string relative, string content)
    {
        var path = PathOf(relative);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, content);
        return path;
    }

    /// <summary>Creates an empty placeholder file (the reconciler only checks that artifacts exist).</summary>
    public string Touch(string relative) => Write(relative, "");

    /// <summary>Copies a fixture from the test output's Fixtures folder.</summary>
    public string CopyFixture(string fixture, string? relative = null)
    {
        var source = Path.Combine(AppContext.BaseDirectory, "Fixtures", fixture);
        var target = PathOf(relative ?? fixture);
        Directory.CreateDirectory(Path.GetDirectoryName(target)!);
        File.Copy(source, target, overwrite: true);
        return target;
    }

    /// <summary>Scans the folder with the built-in runtimes.</summary>
    public ImmutableArray<ServiceEntry> Scan() => new LocalFolderSource(Root).Scan();

    public void Dispose()
    {
        try
        {
            Directory.Delete(Root, recursive: true);
        }
        catch (IOException)
        {
            // Best effort: a leftover temp folder must not fail a test.
        }
    }
}

internal static class EntryExtensions
{
    public static ServiceEntry Named(this IEnumerable<ServiceEntry> entries, string name)
    {
        var matches = entries.Where(e => e.Name == name).ToList();
        Assert.True(matches.Count == 1, $"expected one entry named '{name}', found {matches.Count} among: {string.Join(", ", entries.Select(e => e.Name))}");
        return matches[0];
    }

    public static ModelSpec Served(this ServiceEntry entry)
    {
        Assert.True(entry.Spec is not null, $"'{entry.Name}' is not served: {entry.FailureReason}: {entry.FailureMessage}");
        Assert.Null(entry.FailureReason);
        return entry.Spec!;
    }

    public static string Failed(this ServiceEntry entry, string reason)
    {
        Assert.Null(entry.Spec);
        Assert.Equal(reason, entry.FailureReason);
        Assert.False(string.IsNullOrWhiteSpace(entry.FailureMessage));
        return entry.FailureMessage!;
    }
}
