using System.Globalization;

namespace Orleans.KServe.Contracts.Models;

/// <summary>
/// Identity of one model replica grain: <c>namespace/service/revision/replica</c>. Revisions are numbered per
/// service by the registry; replicas from 0.
/// </summary>
public readonly record struct ModelKey(string Namespace, string Service, int Revision, int Replica)
{
    /// <summary>The grain key string.</summary>
    public override string ToString() =>
        string.Create(CultureInfo.InvariantCulture, $"{Namespace}/{Service}/{Revision}/{Replica}");

    /// <summary>Parses a grain key string.</summary>
    public static ModelKey Parse(string key)
    {
        var parts = key.Split('/');
        if (parts.Length != 4
            || !int.TryParse(parts[2], NumberStyles.None, CultureInfo.InvariantCulture, out var revision)
            || !int.TryParse(parts[3], NumberStyles.None, CultureInfo.InvariantCulture, out var replica))
        {
            throw new FormatException($"'{key}' is not a model key (namespace/service/revision/replica)");
        }

        return new ModelKey(parts[0], parts[1], revision, replica);
    }
}
