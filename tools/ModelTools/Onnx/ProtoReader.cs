using System.Buffers.Binary;
using System.Text;

namespace Orleans.KServe.ModelTools.Onnx;

/// <summary>One field as found on the wire.</summary>
public readonly ref struct ProtoField
{
    public ProtoField(int fieldNumber, WireType wireType, ulong scalar, ReadOnlySpan<byte> payload, ReadOnlySpan<byte> raw)
    {
        FieldNumber = fieldNumber;
        WireType = wireType;
        Scalar = scalar;
        Payload = payload;
        Raw = raw;
    }

    public int FieldNumber { get; }

    public WireType WireType { get; }

    /// <summary>The varint value, or the little-endian bits of a fixed32/fixed64 field.</summary>
    public ulong Scalar { get; }

    /// <summary>The bytes of a length-delimited field (without tag and length).</summary>
    public ReadOnlySpan<byte> Payload { get; }

    /// <summary>The whole field exactly as encoded, tag included; copy this to keep a field unchanged.</summary>
    public ReadOnlySpan<byte> Raw { get; }

    public long AsInt64() => unchecked((long)Scalar);

    public string AsString() => Encoding.UTF8.GetString(Payload);
}

/// <summary>
/// Walks the fields of one protocol buffer message without a schema. Nested messages are
/// walked by creating a new reader over <see cref="ProtoField.Payload"/>.
/// </summary>
public ref struct ProtoReader
{
    private readonly ReadOnlySpan<byte> _data;
    private int _position;

    public ProtoReader(ReadOnlySpan<byte> data)
    {
        _data = data;
        _position = 0;
    }

    public bool TryReadField(out ProtoField field)
    {
        if (_position >= _data.Length)
        {
            field = default;
            return false;
        }

        var start = _position;
        var tag = ReadVarint();
        var fieldNumber = checked((int)(tag >> 3));
        var wireType = (WireType)(tag & 7);
        if (fieldNumber == 0)
        {
            throw new InvalidDataException($"Field number 0 at offset {start}.");
        }

        ulong scalar = 0;
        var payload = ReadOnlySpan<byte>.Empty;
        switch (wireType)
        {
            case WireType.Varint:
                scalar = ReadVarint();
                break;
            case WireType.Fixed64:
                scalar = BinaryPrimitives.ReadUInt64LittleEndian(Take(8));
                break;
            case WireType.Fixed32:
                scalar = BinaryPrimitives.ReadUInt32LittleEndian(Take(4));
                break;
            case WireType.LengthDelimited:
                var length = ReadVarint();
                if (length > (ulong)(_data.Length - _position))
                {
                    throw new InvalidDataException($"Field {fieldNumber} at offset {start} claims {length} bytes; only {_data.Length - _position} remain.");
                }

                payload = Take((int)length);
                break;
            default:
                throw new InvalidDataException($"Unsupported wire type {(int)wireType} for field {fieldNumber} at offset {start}.");
        }

        field = new ProtoField(fieldNumber, wireType, scalar, payload, _data[start.._position]);
        return true;
    }

    private ReadOnlySpan<byte> Take(int count)
    {
        if (count > _data.Length - _position)
        {
            throw new InvalidDataException($"Truncated message at offset {_position}.");
        }

        var slice = _data.Slice(_position, count);
        _position += count;
        return slice;
    }

    private ulong ReadVarint()
    {
        ulong result = 0;
        for (var shift = 0; shift < 70; shift += 7)
        {
            if (_position >= _data.Length)
            {
                throw new InvalidDataException("Truncated varint.");
            }

            var b = _data[_position++];
            result |= (ulong)(b & 0x7F) << shift;
            if ((b & 0x80) == 0)
            {
                return result;
            }
        }

        throw new InvalidDataException("Varint longer than ten bytes.");
    }
}
