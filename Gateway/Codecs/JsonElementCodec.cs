using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text.Json;
using Orleans.KServe.Contracts.Inference;
using Orleans.KServe.Contracts.Tensors;

namespace Orleans.KServe.Gateway.Codecs;

/// <summary>
/// Reads JSON array data (flat or nested, row-major) straight into a tensor's contiguous buffer and writes buffers
/// back as JSON numbers, booleans or strings, without per-element objects.
/// </summary>
public static class JsonElementCodec
{
    /// <summary>
    /// Reads the array at <paramref name="reader"/> (positioned on its StartArray, or on a single scalar for a
    /// 0-d tensor) into a new buffer of exactly <paramref name="count"/> elements of <paramref name="type"/>.
    /// </summary>
    public static ReadOnlyMemory<byte> ReadData(ref Utf8JsonReader reader, TensorDataType type, long count, string tensorName, PooledBuffers buffers)
    {
        if (type == TensorDataType.Bytes)
        {
            return ReadBytesData(reader, count, tensorName, buffers);
        }

        var size = checked((int)(count * type.ElementSize()));
        var array = buffers.Rent(size);
        var destination = array.AsSpan(0, size);
        long index = 0;
        if (reader.TokenType != JsonTokenType.StartArray)
        {
            WriteElement(ref reader, type, destination, index++, count, tensorName);
        }
        else
        {
            var depth = 0;
            while (reader.Read())
            {
                switch (reader.TokenType)
                {
                    case JsonTokenType.StartArray:
                        depth++;
                        break;
                    case JsonTokenType.EndArray:
                        depth--;
                        break;
                    default:
                        WriteElement(ref reader, type, destination, index++, count, tensorName);
                        break;
                }

                if (depth < 0)
                {
                    break;
                }
            }
        }

        if (index != count)
        {
            throw InferenceException.Invalid($"'{tensorName}' has {index} data elements but its shape needs {count}");
        }

        return new ReadOnlyMemory<byte>(array, 0, size);
    }

    private static ReadOnlyMemory<byte> ReadBytesData(Utf8JsonReader reader, long count, string tensorName, PooledBuffers buffers)
    {
        // First pass on a copy of the reader: size the buffer once. Escaped strings only shrink when unescaped.
        var sizing = reader;
        long upperBound = 0;
        long elements = 0;
        ForEachScalar(ref sizing, (ref Utf8JsonReader r) =>
        {
            if (r.TokenType != JsonTokenType.String)
            {
                throw InferenceException.Invalid($"'{tensorName}' is BYTES: its data must be strings, found {Describe(r.TokenType)}");
            }

            upperBound += 4 + r.ValueSpan.Length;
            elements++;
        });
        if (elements != count)
        {
            throw InferenceException.Invalid($"'{tensorName}' has {elements} data elements but its shape needs {count}");
        }

        if (upperBound > int.MaxValue)
        {
            throw InferenceException.Invalid($"'{tensorName}' is larger than 2 GiB");
        }

        var array = buffers.Rent((int)upperBound);
        var offset = 0;
        ForEachScalar(ref reader, (ref Utf8JsonReader r) =>
        {
            var target = array.AsSpan(offset + 4);
            var written = r.ValueIsEscaped ? r.CopyString(target) : Copy(r.ValueSpan, target);
            BinaryPrimitives.WriteUInt32LittleEndian(array.AsSpan(offset), (uint)written);
            offset += 4 + written;
        });
        return new ReadOnlyMemory<byte>(array, 0, offset);
    }

    private static int Copy(ReadOnlySpan<byte> source, Span<byte> target)
    {
        source.CopyTo(target);
        return source.Length;
    }

    private delegate void ScalarVisitor(ref Utf8JsonReader reader);

    private static void ForEachScalar(ref Utf8JsonReader reader, ScalarVisitor visit)
    {
        if (reader.TokenType != JsonTokenType.StartArray)
        {
            visit(ref reader);
            return;
        }

        var depth = 0;
        while (reader.Read())
        {
            switch (reader.TokenType)
            {
                case JsonTokenType.StartArray:
                    depth++;
                    break;
                case JsonTokenType.EndArray:
                    if (--depth < 0)
                    {
                        return;
                    }

                    break;
                default:
                    visit(ref reader);
                    break;
            }
        }
    }

    private static void WriteElement(ref Utf8JsonReader reader, TensorDataType type, Span<byte> destination, long index, long count, string tensorName)
    {
        if (index >= count)
        {
            throw InferenceException.Invalid($"'{tensorName}' has more data elements than its shape's {count}");
        }

        var token = reader.TokenType;
        if (type == TensorDataType.Bool)
        {
            destination[(int)index] = token switch
            {
                JsonTokenType.True => 1,
                JsonTokenType.False => 0,
                _ => throw Mismatch(tensorName, type, token),
            };
            return;
        }

        if (token != JsonTokenType.Number)
        {
            if (token == JsonTokenType.String && type is TensorDataType.FP16 or TensorDataType.FP32 or TensorDataType.FP64 or TensorDataType.BF16
                && TryParseSpecialFloat(reader.ValueSpan, out var special))
            {
                WriteFloat(type, destination, (int)index, special);
                return;
            }

            throw Mismatch(tensorName, type, token);
        }

        var i = (int)index;
        switch (type)
        {
            case TensorDataType.UInt8:
                destination[i] = reader.TryGetByte(out var u8) ? u8 : throw OutOfRange(ref reader, tensorName, type);
                break;
            case TensorDataType.Int8:
                destination[i] = reader.TryGetSByte(out var i8) ? (byte)i8 : throw OutOfRange(ref reader, tensorName, type);
                break;
            case TensorDataType.UInt16:
                BinaryPrimitives.WriteUInt16LittleEndian(destination[(i * 2)..], reader.TryGetUInt16(out var u16) ? u16 : throw OutOfRange(ref reader, tensorName, type));
                break;
            case TensorDataType.Int16:
                BinaryPrimitives.WriteInt16LittleEndian(destination[(i * 2)..], reader.TryGetInt16(out var i16) ? i16 : throw OutOfRange(ref reader, tensorName, type));
                break;
            case TensorDataType.UInt32:
                BinaryPrimitives.WriteUInt32LittleEndian(destination[(i * 4)..], reader.TryGetUInt32(out var u32) ? u32 : throw OutOfRange(ref reader, tensorName, type));
                break;
            case TensorDataType.Int32:
                BinaryPrimitives.WriteInt32LittleEndian(destination[(i * 4)..], reader.TryGetInt32(out var i32) ? i32 : throw OutOfRange(ref reader, tensorName, type));
                break;
            case TensorDataType.UInt64:
                BinaryPrimitives.WriteUInt64LittleEndian(destination[(i * 8)..], reader.TryGetUInt64(out var u64) ? u64 : throw OutOfRange(ref reader, tensorName, type));
                break;
            case TensorDataType.Int64:
                BinaryPrimitives.WriteInt64LittleEndian(destination[(i * 8)..], reader.TryGetInt64(out var i64) ? i64 : throw OutOfRange(ref reader, tensorName, type));
                break;
            case TensorDataType.FP32:
            case TensorDataType.FP16:
            case TensorDataType.BF16:
            case TensorDataType.FP64:
                if (!reader.TryGetDouble(out var d) || !double.IsFinite(d)
                    || (type == TensorDataType.FP32 && float.IsInfinity((float)d))
                    || (type == TensorDataType.FP16 && Half.IsInfinity((Half)d)))
                {
                    // A number too large for the datatype; infinities travel as the strings "Infinity" and "-Infinity".
                    throw OutOfRange(ref reader, tensorName, type);
                }

                WriteFloat(type, destination, i, d);
                break;
            default:
                throw InferenceException.Invalid($"'{tensorName}' has datatype {type.ToProtocolName()}, which JSON data cannot carry");
        }
    }

    private static void WriteFloat(TensorDataType type, Span<byte> destination, int i, double value)
    {
        switch (type)
        {
            case TensorDataType.FP32:
                BinaryPrimitives.WriteSingleLittleEndian(destination[(i * 4)..], (float)value);
                break;
            case TensorDataType.FP64:
                BinaryPrimitives.WriteDoubleLittleEndian(destination[(i * 8)..], value);
                break;
            case TensorDataType.FP16:
                BinaryPrimitives.WriteHalfLittleEndian(destination[(i * 2)..], (Half)value);
                break;
            default:
                BinaryPrimitives.WriteUInt16LittleEndian(destination[(i * 2)..], ToBFloat16((float)value));
                break;
        }
    }

    /// <summary>Rounds an FP32 value to bfloat16 (round to nearest even), keeping NaN a NaN.</summary>
    public static ushort ToBFloat16(float value)
    {
        var bits = BitConverter.SingleToUInt32Bits(value);
        if (float.IsNaN(value))
        {
            return (ushort)((bits >> 16) | 0x40);
        }

        var rounding = 0x7FFFu + ((bits >> 16) & 1);
        return (ushort)((bits + rounding) >> 16);
    }

    /// <summary>Widens a bfloat16 to FP32.</summary>
    public static float FromBFloat16(ushort value) => BitConverter.UInt32BitsToSingle((uint)value << 16);

    private static bool TryParseSpecialFloat(ReadOnlySpan<byte> text, out double value)
    {
        if (text.SequenceEqual("NaN"u8))
        {
            value = double.NaN;
        }
        else if (text.SequenceEqual("Infinity"u8) || text.SequenceEqual("inf"u8))
        {
            value = double.PositiveInfinity;
        }
        else if (text.SequenceEqual("-Infinity"u8) || text.SequenceEqual("-inf"u8))
        {
            value = double.NegativeInfinity;
        }
        else
        {
            value = 0;
            return false;
        }

        return true;
    }

    private static InferenceException Mismatch(string tensorName, TensorDataType type, JsonTokenType token) =>
        InferenceException.Invalid($"'{tensorName}' is {type.ToProtocolName()}: found {Describe(token)} in its data");

    private static InferenceException OutOfRange(ref Utf8JsonReader reader, string tensorName, TensorDataType type) =>
        InferenceException.Invalid(
            $"'{tensorName}' is {type.ToProtocolName()}: value {System.Text.Encoding.UTF8.GetString(reader.ValueSpan)} is not a valid {type.ToProtocolName()}");

    private static string Describe(JsonTokenType token) => token switch
    {
        JsonTokenType.String => "a string",
        JsonTokenType.Number => "a number",
        JsonTokenType.True or JsonTokenType.False => "a boolean",
        JsonTokenType.Null => "null",
        JsonTokenType.StartObject => "an object",
        _ => token.ToString(),
    };

    /// <summary>
    /// Writes the next <paramref name="count"/> elements of <paramref name="data"/> as JSON values and advances
    /// <paramref name="data"/> past them.
    /// </summary>
    public static void WriteElements(Utf8JsonWriter writer, TensorDataType type, ref ReadOnlySpan<byte> data, long count)
    {
        int length;
        if (type == TensorDataType.Bytes)
        {
            length = 0;
            for (long i = 0; i < count; i++)
            {
                length += 4 + (int)BinaryPrimitives.ReadUInt32LittleEndian(data[length..]);
            }
        }
        else
        {
            length = checked((int)(count * type.ElementSize()));
        }

        WriteData(writer, type, data[..length], count);
        data = data[length..];
    }

    /// <summary>Writes <paramref name="count"/> elements of <paramref name="data"/> as JSON values (flat).</summary>
    public static void WriteData(Utf8JsonWriter writer, TensorDataType type, ReadOnlySpan<byte> data, long count)
    {
        switch (type)
        {
            case TensorDataType.Bool:
                foreach (var b in data)
                {
                    writer.WriteBooleanValue(b != 0);
                }

                break;
            case TensorDataType.UInt8:
                foreach (var b in data)
                {
                    writer.WriteNumberValue(b);
                }

                break;
            case TensorDataType.Int8:
                foreach (var b in MemoryMarshal.Cast<byte, sbyte>(data))
                {
                    writer.WriteNumberValue(b);
                }

                break;
            case TensorDataType.UInt16:
                for (var i = 0; i < data.Length; i += 2)
                {
                    writer.WriteNumberValue(BinaryPrimitives.ReadUInt16LittleEndian(data[i..]));
                }

                break;
            case TensorDataType.Int16:
                for (var i = 0; i < data.Length; i += 2)
                {
                    writer.WriteNumberValue(BinaryPrimitives.ReadInt16LittleEndian(data[i..]));
                }

                break;
            case TensorDataType.UInt32:
                for (var i = 0; i < data.Length; i += 4)
                {
                    writer.WriteNumberValue(BinaryPrimitives.ReadUInt32LittleEndian(data[i..]));
                }

                break;
            case TensorDataType.Int32:
                for (var i = 0; i < data.Length; i += 4)
                {
                    writer.WriteNumberValue(BinaryPrimitives.ReadInt32LittleEndian(data[i..]));
                }

                break;
            case TensorDataType.UInt64:
                for (var i = 0; i < data.Length; i += 8)
                {
                    writer.WriteNumberValue(BinaryPrimitives.ReadUInt64LittleEndian(data[i..]));
                }

                break;
            case TensorDataType.Int64:
                for (var i = 0; i < data.Length; i += 8)
                {
                    writer.WriteNumberValue(BinaryPrimitives.ReadInt64LittleEndian(data[i..]));
                }

                break;
            case TensorDataType.FP16:
                for (var i = 0; i < data.Length; i += 2)
                {
                    WriteFloat(writer, (float)BinaryPrimitives.ReadHalfLittleEndian(data[i..]));
                }

                break;
            case TensorDataType.BF16:
                for (var i = 0; i < data.Length; i += 2)
                {
                    WriteFloat(writer, FromBFloat16(BinaryPrimitives.ReadUInt16LittleEndian(data[i..])));
                }

                break;
            case TensorDataType.FP32:
                for (var i = 0; i < data.Length; i += 4)
                {
                    WriteFloat(writer, BinaryPrimitives.ReadSingleLittleEndian(data[i..]));
                }

                break;
            case TensorDataType.FP64:
                for (var i = 0; i < data.Length; i += 8)
                {
                    var value = BinaryPrimitives.ReadDoubleLittleEndian(data[i..]);
                    if (double.IsFinite(value))
                    {
                        writer.WriteNumberValue(value);
                    }
                    else
                    {
                        writer.WriteStringValue(SpecialName(value));
                    }
                }

                break;
            case TensorDataType.Bytes:
                WriteBytesElements(writer, data);
                break;
            default:
                throw new InvalidOperationException($"datatype {type} cannot be written as JSON");
        }
    }

    private static void WriteFloat(Utf8JsonWriter writer, float value)
    {
        if (float.IsFinite(value))
        {
            writer.WriteNumberValue(value);
        }
        else
        {
            writer.WriteStringValue(SpecialName(value));
        }
    }

    private static string SpecialName(double value) =>
        double.IsNaN(value) ? "NaN" : value > 0 ? "Infinity" : "-Infinity";

    private static void WriteBytesElements(Utf8JsonWriter writer, ReadOnlySpan<byte> data)
    {
        while (data.Length >= 4)
        {
            var length = (int)BinaryPrimitives.ReadUInt32LittleEndian(data);
            var element = data.Slice(4, length);
            if (System.Text.Unicode.Utf8.IsValid(element))
            {
                writer.WriteStringValue(element);
            }
            else
            {
                writer.WriteStringValue(System.Text.Encoding.UTF8.GetString(element));
            }

            data = data[(4 + length)..];
        }
    }
}
