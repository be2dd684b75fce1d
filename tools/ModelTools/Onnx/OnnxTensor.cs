using System.Buffers.Binary;
using System.Globalization;
using System.Runtime.InteropServices;

namespace Orleans.KServe.ModelTools.Onnx;

/// <summary>
/// An ONNX <c>TensorProto</c> used for initializers and tensor attributes. Numeric data is
/// kept as little-endian <c>raw_data</c>; tensors may instead point at external data.
/// </summary>
public sealed class OnnxTensor
{
    private OnnxTensor(string name, OnnxDataType dataType, long[] dims)
    {
        Name = name;
        DataType = dataType;
        Dims = dims;
    }

    public string Name { get; }

    public OnnxDataType DataType { get; }

    public IReadOnlyList<long> Dims { get; }

    /// <summary>Little-endian element bytes (<c>raw_data</c>), or null when the data is external or textual.</summary>
    public byte[]? RawData { get; private init; }

    /// <summary>UTF-8 strings for a STRING tensor (<c>string_data</c>).</summary>
    public IReadOnlyList<string>? StringData { get; private init; }

    /// <summary>
    /// <c>external_data</c> entries (location, offset, length, ...); when set the tensor's
    /// <c>data_location</c> is EXTERNAL and no data is stored in the model.
    /// </summary>
    public IReadOnlyList<KeyValuePair<string, string>>? ExternalData { get; private init; }

    public long ElementCount
    {
        get
        {
            long count = 1;
            foreach (var dim in Dims)
            {
                count *= dim;
            }

            return count;
        }
    }

    /// <summary>A float tensor; <paramref name="values"/> must hold exactly the product of <paramref name="dims"/> elements.</summary>
    public static OnnxTensor FromFloats(string name, ReadOnlySpan<long> dims, ReadOnlySpan<float> values)
    {
        Validate(name, OnnxDataType.Float, dims, values.Length);
        var raw = new byte[values.Length * sizeof(float)];
        for (var i = 0; i < values.Length; i++)
        {
            BinaryPrimitives.WriteSingleLittleEndian(raw.AsSpan(i * sizeof(float)), values[i]);
        }

        return new OnnxTensor(name, OnnxDataType.Float, dims.ToArray()) { RawData = raw };
    }

    public static OnnxTensor FromInt64s(string name, ReadOnlySpan<long> dims, ReadOnlySpan<long> values)
    {
        Validate(name, OnnxDataType.Int64, dims, values.Length);
        var raw = new byte[values.Length * sizeof(long)];
        for (var i = 0; i < values.Length; i++)
        {
            BinaryPrimitives.WriteInt64LittleEndian(raw.AsSpan(i * sizeof(long)), values[i]);
        }

        return new OnnxTensor(name, OnnxDataType.Int64, dims.ToArray()) { RawData = raw };
    }

    /// <summary>A tensor from raw little-endian element bytes of any fixed-size type.</summary>
    public static OnnxTensor FromRawData(string name, OnnxDataType dataType, ReadOnlySpan<long> dims, ReadOnlySpan<byte> rawData)
    {
        if (dataType is OnnxDataType.String or OnnxDataType.Undefined)
        {
            throw new ArgumentException($"Raw data cannot hold {dataType} elements.", nameof(dataType));
        }

        return new OnnxTensor(name, dataType, dims.ToArray()) { RawData = rawData.ToArray() };
    }

    public static OnnxTensor FromStrings(string name, ReadOnlySpan<long> dims, IReadOnlyList<string> values)
    {
        Validate(name, OnnxDataType.String, dims, values.Count);
        return new OnnxTensor(name, OnnxDataType.String, dims.ToArray()) { StringData = values.ToArray() };
    }

    /// <summary>A rank-0 float tensor.</summary>
    public static OnnxTensor Scalar(string name, float value) => FromFloats(name, [], [value]);

    /// <summary>
    /// A tensor whose bytes live in a file next to the model (<c>data_location = EXTERNAL</c>).
    /// </summary>
    public static OnnxTensor External(string name, OnnxDataType dataType, ReadOnlySpan<long> dims, string location, long offset, long length)
    {
        var entries = new List<KeyValuePair<string, string>>
        {
            new("location", location),
            new("offset", offset.ToString(CultureInfo.InvariantCulture)),
            new("length", length.ToString(CultureInfo.InvariantCulture)),
        };
        return new OnnxTensor(name, dataType, dims.ToArray()) { ExternalData = entries };
    }

    private static void Validate(string name, OnnxDataType dataType, ReadOnlySpan<long> dims, int valueCount)
    {
        long expected = 1;
        foreach (var dim in dims)
        {
            if (dim < 0)
            {
                throw new ArgumentException($"Tensor '{name}' has negative dimension {dim}.", nameof(dims));
            }

            expected *= dim;
        }

        if (expected != valueCount)
        {
            throw new ArgumentException($"Tensor '{name}' ({dataType}) has shape [{string.Join(", ", dims.ToArray())}] = {expected} elements but {valueCount} values were given.");
        }
    }

    internal void Write(ProtoWriter writer)
    {
        foreach (var dim in Dims)
        {
            writer.WriteInt64(1, dim); // dims
        }

        writer.WriteInt32(2, (int)DataType); // data_type
        if (StringData is not null)
        {
            foreach (var value in StringData)
            {
                writer.WriteString(6, value); // string_data
            }
        }

        writer.WriteString(8, Name); // name
        if (RawData is not null)
        {
            writer.WriteBytes(9, RawData); // raw_data
        }

        if (ExternalData is not null)
        {
            foreach (var entry in ExternalData)
            {
                writer.WriteMessage(13, e => // external_data: StringStringEntryProto
                {
                    e.WriteString(1, entry.Key);
                    e.WriteString(2, entry.Value);
                });
            }

            writer.WriteInt32(14, 1); // data_location = EXTERNAL
        }
    }

    /// <summary>Reinterprets a span of unmanaged values as little-endian bytes (the host must be little-endian).</summary>
    public static byte[] ToLittleEndianBytes<T>(ReadOnlySpan<T> values)
        where T : unmanaged
    {
        if (!BitConverter.IsLittleEndian)
        {
            throw new PlatformNotSupportedException("Big-endian hosts are not supported.");
        }

        return MemoryMarshal.AsBytes(values).ToArray();
    }
}
