using System.Collections.Immutable;
using System.Globalization;

namespace Orleans.KServe.Contracts.Inference;

/// <summary>The kind of value an <see cref="InferParameter"/> carries (the protocol's parameter oneof).</summary>
public enum InferParameterKind : byte
{
    /// <summary>A boolean.</summary>
    Bool = 1,
    /// <summary>A signed 64-bit integer.</summary>
    Int64 = 2,
    /// <summary>A string.</summary>
    String = 3,
    /// <summary>A double (OIP addition).</summary>
    Double = 4,
    /// <summary>An unsigned 64-bit integer (OIP addition).</summary>
    UInt64 = 5,
}

/// <summary>One request, tensor or response parameter value.</summary>
[GenerateSerializer, Immutable]
[Alias("Orleans.KServe.Contracts.InferParameter")]
public sealed record InferParameter(
    [property: Id(0)] InferParameterKind Kind,
    [property: Id(1)] bool BoolValue = false,
    [property: Id(2)] long Int64Value = 0,
    [property: Id(3)] string? StringValue = null,
    [property: Id(4)] double DoubleValue = 0,
    [property: Id(5)] ulong UInt64Value = 0)
{
    /// <summary>A boolean parameter.</summary>
    public static InferParameter Of(bool value) => new(InferParameterKind.Bool, BoolValue: value);

    /// <summary>An integer parameter.</summary>
    public static InferParameter Of(long value) => new(InferParameterKind.Int64, Int64Value: value);

    /// <summary>A string parameter.</summary>
    public static InferParameter Of(string value) => new(InferParameterKind.String, StringValue: value);

    /// <summary>A double parameter.</summary>
    public static InferParameter Of(double value) => new(InferParameterKind.Double, DoubleValue: value);

    /// <summary>Reads the value as an integer when it is one (or a double with no fraction).</summary>
    public bool TryGetInt64(out long value)
    {
        switch (Kind)
        {
            case InferParameterKind.Int64:
                value = Int64Value;
                return true;
            case InferParameterKind.UInt64 when UInt64Value <= long.MaxValue:
                value = (long)UInt64Value;
                return true;
            case InferParameterKind.Double when Math.Floor(DoubleValue) == DoubleValue && Math.Abs(DoubleValue) < 9e15:
                value = (long)DoubleValue;
                return true;
            default:
                value = 0;
                return false;
        }
    }

    /// <inheritdoc />
    public override string ToString() => Kind switch
    {
        InferParameterKind.Bool => BoolValue ? "true" : "false",
        InferParameterKind.Int64 => Int64Value.ToString(CultureInfo.InvariantCulture),
        InferParameterKind.UInt64 => UInt64Value.ToString(CultureInfo.InvariantCulture),
        InferParameterKind.Double => DoubleValue.ToString("R", CultureInfo.InvariantCulture),
        _ => StringValue ?? string.Empty,
    };
}

/// <summary>Helpers for parameter maps.</summary>
public static class InferParameters
{
    /// <summary>The empty map.</summary>
    public static ImmutableDictionary<string, InferParameter> Empty { get; } =
        ImmutableDictionary<string, InferParameter>.Empty.WithComparers(StringComparer.Ordinal);
}
