using System.Globalization;

namespace Orleans.KServe.Contracts.Models;

/// <summary>
/// Identity of one model replica grain: <c>namespace/service/revision/version/replica</c>. Revisions are numbered
/// per service by the registry; the version is the model version served (Triton's numeric version folders, "1"
/// by default); replicas count from 0.
/// </summary>
public readonly record struct ModelKey(string Namespace, string Service, int Revision, int Replica, string Version = "1")
{
    /// <summary>The grain key string.</summary>
    public override string ToString() =>
        string.Create(CultureInfo.InvariantCulture, $"{Namespace}/{Service}/{Revision}/{Version}/{Replica}");

    /// <summary>Parses a grain key string.</summary>
    public static ModelKey Parse(string key)
    {
        var parts = key.Split('/');
        if (parts.Length != 5
            || !int.TryParse(parts[2], NumberStyles.None, CultureInfo.InvariantCulture, out var revision)
            || !int.TryParse(parts[4], NumberStyles.None, CultureInfo.InvariantCulture, out var replica))
        {
            throw new FormatException($"'{key}' is not a model key (namespace/service/revision/version/replica)");
        }

        return new ModelKey(parts[0], parts[1], revision, replica, parts[3]);
    }
}
