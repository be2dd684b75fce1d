using System.Globalization;
using Orleans.KServe.Contracts.Models;

namespace Orleans.KServe.Operator.Reconcile;

/// <summary>
/// Reads Triton's model version policy from the <c>orleans.kserve.io/version-policy</c> annotation
/// (<c>latest</c>, <c>latest:N</c>, <c>all</c>, <c>specific:1,3</c>) and picks the versions it serves.
/// </summary>
public static class VersionPolicy
{
    /// <summary>True for a version name: a positive integer without sign or spaces.</summary>
    public static bool IsVersion(string text) =>
        text.Length > 0 && text.All(char.IsAsciiDigit) && long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var v) && v > 0;

    /// <summary>Parses the annotation's text (null → the default).</summary>
    public static bool TryParse(string? text, out ModelVersionPolicy policy, out string? error)
    {
        policy = ModelVersionPolicy.Default;
        error = null;
        if (string.IsNullOrWhiteSpace(text) || text == "latest")
        {
            return true;
        }

        if (text == "all")
        {
            policy = ModelVersionPolicy.All;
            return true;
        }

        if (text.StartsWith("latest:", StringComparison.Ordinal)
            && int.TryParse(text.AsSpan(7), NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n > 0)
        {
            policy = ModelVersionPolicy.LatestOf(n);
            return true;
        }

        if (text.StartsWith("specific:", StringComparison.Ordinal))
        {
            var versions = text[9..].Split(',', StringSplitOptions.TrimEntries);
            if (versions.Length > 0 && versions.All(IsVersion))
            {
                policy = ModelVersionPolicy.SpecificOf(versions.Distinct().Select(v => long.Parse(v, CultureInfo.InvariantCulture)));
                return true;
            }
        }

        error = $"'{text}' is not a version policy (latest, latest:N, all, specific:1,3)";
        return false;
    }

    /// <summary>Picks the versions <paramref name="policy"/> serves from <paramref name="available"/> (newest first).</summary>
    public static bool TrySelect(
        ModelVersionPolicy policy,
        IReadOnlyList<(string Version, string Artifact)> available,
        out IReadOnlyList<(string Version, string Artifact)> served,
        out string? error)
    {
        error = null;
        switch (policy.Kind)
        {
            case VersionPolicyKind.All:
                served = available;
                return true;
            case VersionPolicyKind.Specific:
                var wanted = policy.Versions.Select(v => v.ToString(CultureInfo.InvariantCulture)).ToList();
                var missing = wanted.Where(v => available.All(a => a.Version != v)).ToList();
                if (missing.Count > 0)
                {
                    served = [];
                    error = $"version policy asks for version {string.Join(", ", missing)}, which the storage does not hold (it holds {string.Join(", ", available.Select(a => a.Version))})";
                    return false;
                }

                served = available.Where(a => wanted.Contains(a.Version)).ToList();
                return true;
            default:
                served = available.Take(policy.Latest).ToList();
                return true;
        }
    }
}
