using System.Collections.Immutable;
using System.Globalization;

namespace Orleans.KServe.Contracts.Models;

/// <summary>The kinds of Triton's model version policy.</summary>
public enum VersionPolicyKind : byte
{
    /// <summary>The newest N versions.</summary>
    Latest = 0,
    /// <summary>Every version the storage holds.</summary>
    All = 1,
    /// <summary>The versions listed.</summary>
    Specific = 2,
}

/// <summary>
/// Which versions of a model are served (Triton's <c>version_policy</c>): the latest N, all, or specific ones. The
/// operator reads it from the resource; REST and gRPC show it in the model's configuration.
/// </summary>
[GenerateSerializer, Immutable]
[Alias("Orleans.KServe.Contracts.ModelVersionPolicy")]
public sealed record ModelVersionPolicy(
    [property: Id(0)] VersionPolicyKind Kind,
    [property: Id(1)] int Latest,
    [property: Id(2)] ImmutableArray<long> Versions)
{
    /// <summary>The default: the newest version only.</summary>
    public static ModelVersionPolicy Default { get; } = LatestOf(1);

    /// <summary>The newest <paramref name="count"/> versions.</summary>
    public static ModelVersionPolicy LatestOf(int count) => new(VersionPolicyKind.Latest, count, ImmutableArray<long>.Empty);

    /// <summary>Every version.</summary>
    public static ModelVersionPolicy All { get; } = new(VersionPolicyKind.All, 0, ImmutableArray<long>.Empty);

    /// <summary>The versions listed.</summary>
    public static ModelVersionPolicy SpecificOf(IEnumerable<long> versions) => new(VersionPolicyKind.Specific, 0, versions.ToImmutableArray());

    /// <summary>Value equality that compares the listed versions (records compare arrays by reference).</summary>
    public bool SameAs(ModelVersionPolicy? other) =>
        other is not null && Kind == other.Kind && Latest == other.Latest && Versions.AsSpan().SequenceEqual(other.Versions.AsSpan());

    /// <summary>As written in the annotation: <c>latest:N</c>, <c>all</c>, <c>specific:1,3</c>.</summary>
    public override string ToString() => Kind switch
    {
        VersionPolicyKind.All => "all",
        VersionPolicyKind.Specific => "specific:" + string.Join(",", Versions.Select(v => v.ToString(CultureInfo.InvariantCulture))),
        _ => string.Create(CultureInfo.InvariantCulture, $"latest:{Latest}"),
    };
}
