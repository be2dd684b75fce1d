using System.Collections.Immutable;
using Orleans.KServe.Contracts.Models;
using Orleans.KServe.Contracts.Resources;
using Orleans.KServe.Operator.Reconcile;
using Orleans.KServe.Operator.Resources;
using Orleans.KServe.Operator.Storage;

namespace Orleans.KServe.Operator.Sources;

/// <summary>
/// Reads a folder of KServe YAML (recursively, <c>*.yaml</c> and <c>*.yml</c>) and reconciles every
/// InferenceService in it. A file that does not parse becomes an entry named after the file with reason
/// <c>InvalidSpec</c>, so it shows in the repository index; the other files still serve.
/// </summary>
public sealed class LocalFolderSource(string folder)
{
    /// <summary>The folder read.</summary>
    public string Folder { get; } = Path.GetFullPath(folder);

    /// <summary>The source name recorded in the registry.</summary>
    public string SourceName => "folder:" + Folder;

    /// <summary>Scans the folder now.</summary>
    public ImmutableArray<ServiceEntry> Scan(IReadOnlyList<ServingRuntimeInfo>? runtimes = null)
    {
        runtimes ??= BuiltInRuntimes.All;
        if (!Directory.Exists(Folder))
        {
            throw new DirectoryNotFoundException($"model repository '{Folder}' does not exist");
        }

        var entries = ImmutableArray.CreateBuilder<ServiceEntry>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var versioned = new List<(ServiceEntry Entry, string Location, string Resource)>();
        var files = Directory.EnumerateFiles(Folder, "*.*", new EnumerationOptions { RecurseSubdirectories = true, IgnoreInaccessible = true })
            .Where(f => f.EndsWith(".yaml", StringComparison.OrdinalIgnoreCase) || f.EndsWith(".yml", StringComparison.OrdinalIgnoreCase))
            .OrderBy(f => f, StringComparer.Ordinal);
        foreach (var file in files)
        {
            var relative = Path.GetRelativePath(Folder, file);
            IReadOnlyList<ResourceDocument> documents;
            try
            {
                documents = KServeYamlReader.Read(File.ReadAllText(file));
            }
            catch (Exception e) when (e is ResourceFormatException or IOException)
            {
                entries.Add(new ServiceEntry("default", relative, null, FailureReasons.InvalidSpec, $"{relative}: {e.Message}"));
                continue;
            }

            foreach (var document in documents)
            {
                ServiceEntry entry;
                if (document.Error is not null)
                {
                    entry = new ServiceEntry("default", $"{relative}#{document.Index}", null, FailureReasons.InvalidSpec, $"{relative} document {document.Index + 1}: {document.Error}");
                }
                else if (document.InferenceService is { } service)
                {
                    entry = InferenceServiceReconciler.Reconcile(service, Path.GetDirectoryName(file)!, runtimes, FileStorageCatalog.Instance);
                    if (service.Metadata.Annotations.ContainsKey(InferenceServiceReconciler.ModelVersionAnnotation))
                    {
                        // One version of a model declared by several resources: gathered below.
                        versioned.Add((entry, $"{relative}#{document.Index}", service.Metadata.Name));
                        continue;
                    }

                    if (!seen.Add($"{entry.Namespace}/{entry.Name}"))
                    {
                        entry = new ServiceEntry(entry.Namespace, $"{entry.Name}@{relative}#{document.Index}", null, FailureReasons.InvalidSpec,
                            $"{relative}: InferenceService '{entry.Name}' in namespace '{entry.Namespace}' is declared more than once");
                    }
                }
                else
                {
                    continue;
                }

                entries.Add(entry);
            }
        }

        foreach (var model in versioned.GroupBy(v => (v.Entry.Namespace, v.Entry.Name)))
        {
            entries.Add(MergeVersions(model.ToList(), seen));
        }

        return entries.ToImmutable();
    }

    private static ServiceEntry MergeVersions(List<(ServiceEntry Entry, string Location, string Resource)> parts, HashSet<string> seen)
    {
        var (ns, name) = (parts[0].Entry.Namespace, parts[0].Entry.Name);
        if (!seen.Add($"{ns}/{name}"))
        {
            return new ServiceEntry(ns, $"{name}@{parts[0].Location}", null, FailureReasons.InvalidSpec,
                $"model '{name}' is declared both by one InferenceService and, with {InferenceServiceReconciler.ModelVersionAnnotation}, by several");
        }

        if (parts.FirstOrDefault(p => p.Entry.Spec is null) is { Entry: not null } failed)
        {
            return new ServiceEntry(ns, name, null, failed.Entry.FailureReason, $"{failed.Resource} (version of '{name}'): {failed.Entry.FailureMessage}");
        }

        var duplicate = parts.GroupBy(p => p.Entry.Spec!.Version).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null)
        {
            return new ServiceEntry(ns, name, null, FailureReasons.InvalidSpec,
                $"version {duplicate.Key} of model '{name}' is declared by {string.Join(" and ", duplicate.Select(d => d.Resource))}");
        }

        var specs = parts.Select(p => p.Entry.Spec!).OrderByDescending(spec => long.Parse(spec.Version, System.Globalization.CultureInfo.InvariantCulture)).ToImmutableArray();
        return new ServiceEntry(ns, name, specs[0])
        {
            Replicas = parts.Max(p => p.Entry.Replicas),
            Versions = specs.Length > 1 ? specs : ImmutableArray<ModelSpec>.Empty,
            VersionPolicy = ModelVersionPolicy.SpecificOf(specs.Select(v => long.Parse(v.Version, System.Globalization.CultureInfo.InvariantCulture))),
        };
    }
}
