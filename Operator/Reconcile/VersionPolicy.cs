using System.Globalization;

namespace Orleans.KServe.Operator.Reconcile;

/// <summary>
/// Triton's model version policy: serve the latest N versions (default 1), all of them, or specific ones. Written
/// as <c>latest</c>, <c>latest:N</c>, <c>all</c> or <c>specific:1,3</c>.
/// </summary>
public sealed record VersionPolicy(string Kind, int Latest, IReadOnlyList<string> Specific)
{
    /// <summary>The default: the newest version only.</summary>
    public static VersionPolicy Default { get; } = new("latest", 1, []);

    /// <summary>True for a version name: a positive integer without sign or spaces.</summary>
    public static bool IsVersion(string text) =>
        text.Length > 0 && text.All(char.IsAsciiDigit) && long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var v) && v > 0;

    /// <summary>Parses the annotation's text (null → the default).</summary>
    public static bool TryParse(string? text, out VersionPolicy policy, out string? error)
    {
        policy = Default;
        error = null;
        if (string.IsNullOrWhiteSpace(text) || text == "latest")
        {
            return true;
        }

        if (text == "all")
        {
            policy = new VersionPolicy("all", 0, []);
            return true;
        }

        if (text.StartsWith("latest:", StringComparison.Ordinal)
            && int.TryParse(text.AsSpan(7), NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n > 0)
        {
            policy = new VersionPolicy("latest", n, []);
            return true;
        }

        if (text.StartsWith("specific:", StringComparison.Ordinal))
        {
            var versions = text[9..].Split(',', StringSplitOptions.TrimEntries);
            if (versions.Length > 0 && versions.All(IsVersion))
            {
                policy = new VersionPolicy("specific", 0, versions.Distinct().ToList());
                return true;
            }
        }

        error = $"'{text}' is not a version policy (latest, latest:N, all, specific:1,3)";
        return false;
    }

    /// <summary>Picks the versions to serve from <paramref name="available"/> (newest first).</summary>
    public bool TrySelect(
        IReadOnlyList<(string Version, string Artifact)> available, out IReadOnlyList<(string Version, string Artifact)> served, out string? error)
    {
        error = null;
        switch (Kind)
        {
            case "all":
                served = available;
                return true;
            case "specific":
                var missing = Specific.Where(v => available.All(a => a.Version != v)).ToList();
                if (missing.Count > 0)
                {
                    served = [];
                    error = $"version policy asks for version {string.Join(", ", missing)}, which the storage does not hold (it holds {string.Join(", ", available.Select(a => a.Version))})";
                    return false;
                }

                served = available.Where(a => Specific.Contains(a.Version)).ToList();
                return true;
            default:
                served = available.Take(Latest).ToList();
                return true;
        }
    }

    /// <inheritdoc />
    public override string ToString() => Kind switch
    {
        "all" => "all",
        "specific" => "specific:" + string.Join(",", Specific),
        _ => $"latest:{Latest}",
    };
}
