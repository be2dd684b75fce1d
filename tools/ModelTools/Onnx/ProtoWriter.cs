using System.Buffers.Binary;
using System.Text;

namespace Orleans.KServe.ModelTools.Onnx;

/// <summary>Protocol buffer wire types (the low three bits of a field tag).</summary>
public enum WireType
{
    Varint = 0,
    Fixed64 = 1,
    LengthDelimited = 2,
    StartGroup = 3,
    EndGroup = 4,
    Fixed32 = 5,
}

/// <summary>
/// A minimal protocol buffer wire-format writer. Nested messages are written to their own
/// writer first and then embedded as a length-delimited field, which keeps the API simple
/// at the cost of one copy per nesting level.
/// </summary>
public sealed class ProtoWriter
{
    private readonly MemoryStream _buffer;

    public ProtoWriter(int capacity = 256)
    {
        _buffer = new MemoryStream(capacity);
    }

    /// <summary>Number of bytes written so far.</summary>
    public long Length => _buffer.Length;

    public void WriteTag(int fieldNumber, WireType wireType)
    {
        if (fieldNumber <= 0)
        {
            throw new ArgumentOutOfRangeException(nameof(fieldNumber), fieldNumber, "Field numbers start at 1.");
        }

        WriteRawVarint(((ulong)(uint)fieldNumber << 3) | (uint)wireType);
    }

    public void WriteRawVarint(ulong value)
    {
        Span<byte> scratch = stackalloc byte[10];
        var count = 0;
        while (value >= 0x80)
        {
            scratch[count++] = (byte)(value | 0x80);
            value >>= 7;
        }

        scratch[count++] = (byte)value;
        _buffer.Write(scratch[..count]);
    }

    public void WriteRawBytes(ReadOnlySpan<byte> bytes) => _buffer.Write(bytes);

    /// <summary>An int64 field (varint; negative values take ten bytes as protobuf requires).</summary>
    public void WriteInt64(int fieldNumber, long value)
    {
        WriteTag(fieldNumber, WireType.Varint);
        WriteRawVarint(unchecked((ulong)value));
    }

    /// <summary>An int32 or enum field (varint; negative values are sign-extended to 64 bits).</summary>
    public void WriteInt32(int fieldNumber, int value) => WriteInt64(fieldNumber, value);

    public void WriteFloat(int fieldNumber, float value)
    {
        WriteTag(fieldNumber, WireType.Fixed32);
        Span<byte> scratch = stackalloc byte[4];
        BinaryPrimitives.WriteSingleLittleEndian(scratch, value);
        _buffer.Write(scratch);
    }

    public void WriteString(int fieldNumber, string value)
    {
        WriteBytes(fieldNumber, Encoding.UTF8.GetBytes(value));
    }

    public void WriteBytes(int fieldNumber, ReadOnlySpan<byte> value)
    {
        WriteTag(fieldNumber, WireType.LengthDelimited);
        WriteRawVarint((ulong)value.Length);
        _buffer.Write(value);
    }

    /// <summary>Writes a nested message produced by <paramref name="write"/> as a length-delimited field.</summary>
    public void WriteMessage(int fieldNumber, Action<ProtoWriter> write)
    {
        var nested = new ProtoWriter();
        write(nested);
        WriteTag(fieldNumber, WireType.LengthDelimited);
        WriteRawVarint((ulong)nested._buffer.Length);
        nested._buffer.Position = 0;
        nested._buffer.CopyTo(_buffer);
    }

    public void WritePackedFloats(int fieldNumber, ReadOnlySpan<float> values)
    {
        WriteTag(fieldNumber, WireType.LengthDelimited);
        WriteRawVarint((ulong)values.Length * 4);
        Span<byte> scratch = stackalloc byte[4];
        foreach (var value in values)
        {
            BinaryPrimitives.WriteSingleLittleEndian(scratch, value);
            _buffer.Write(scratch);
        }
    }

    public void WritePackedInt64s(int fieldNumber, ReadOnlySpan<long> values)
    {
        var payload = new ProtoWriter(values.Length * 2 + 8);
        foreach (var value in values)
        {
            payload.WriteRawVarint(unchecked((ulong)value));
        }

        WriteTag(fieldNumber, WireType.LengthDelimited);
        WriteRawVarint((ulong)payload._buffer.Length);
        payload._buffer.Position = 0;
        payload._buffer.CopyTo(_buffer);
    }

    public byte[] ToArray() => _buffer.ToArray();

    public void CopyTo(Stream destination)
    {
        _buffer.Position = 0;
        _buffer.CopyTo(destination);
        _buffer.Position = _buffer.Length;
    }
}
