namespace Orleans.KServe.Contracts.Tensors;

/// <summary>The Open Inference Protocol datatypes, in the protocol's spelling.</summary>
public enum TensorDataType : byte
{
    /// <summary>Not a valid datatype; the default value.</summary>
    Unknown = 0,
    Bool,
    UInt8,
    UInt16,
    UInt32,
    UInt64,
    Int8,
    Int16,
    Int32,
    Int64,
    FP16,
    FP32,
    FP64,
    BF16,
    /// <summary>Variable-length byte strings; each element is a 4-byte little-endian length and its bytes.</summary>
    Bytes,
}

/// <summary>Names, sizes and parsing of <see cref="TensorDataType"/>.</summary>
public static class TensorDataTypes
{
    private static readonly string[] Names =
    [
        "UNKNOWN", "BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64",
        "FP16", "FP32", "FP64", "BF16", "BYTES",
    ];

    private static readonly int[] Sizes = [0, 1, 1, 2, 4, 8, 1, 2, 4, 8, 2, 4, 8, 2, -1];

    /// <summary>The protocol name of the datatype, e.g. <c>FP32</c>.</summary>
    public static string ToProtocolName(this TensorDataType type) => Names[(int)type];

    /// <summary>Bytes per element, or -1 for <see cref="TensorDataType.Bytes"/> (variable length), 0 for unknown.</summary>
    public static int ElementSize(this TensorDataType type) => Sizes[(int)type];

    /// <summary>True for every datatype whose elements have a fixed size.</summary>
    public static bool IsFixedSize(this TensorDataType type) => Sizes[(int)type] > 0;

    /// <summary>Parses a protocol datatype name (case-sensitive, as the protocol spells it).</summary>
    public static bool TryParse(ReadOnlySpan<char> name, out TensorDataType type)
    {
        for (var i = 1; i < Names.Length; i++)
        {
            if (name.SequenceEqual(Names[i]))
            {
                type = (TensorDataType)i;
                return true;
            }
        }

        type = TensorDataType.Unknown;
        return false;
    }

    /// <summary>Parses a protocol datatype name given as UTF-8 bytes.</summary>
    public static bool TryParse(ReadOnlySpan<byte> utf8Name, out TensorDataType type)
    {
        Span<char> chars = stackalloc char[8];
        if (utf8Name.Length > chars.Length)
        {
            type = TensorDataType.Unknown;
            return false;
        }

        for (var i = 0; i < utf8Name.Length; i++)
        {
            chars[i] = (char)utf8Name[i];
        }

        return TryParse(chars[..utf8Name.Length], out type);
    }

    /// <summary>All datatypes a tensor can have.</summary>
    public static IReadOnlyList<TensorDataType> All { get; } =
        Enumerable.Range(1, Names.Length - 1).Select(i => (TensorDataType)i).ToArray();
}
