using System.Buffers.Binary;
using System.IO.Compression;

namespace Orleans.KServe.FunctionalTests.Fuzz;

/// <summary>
/// Structured mutations of protobuf messages and of the gRPC frames around them: the encoding is parsed into
/// fields (nested messages recognised where their bytes parse as one), a field somewhere in the tree is changed —
/// a varint to an extreme or to an over-long encoding, a length prefix that lies, a wire type swapped, a field
/// dropped, duplicated or added, bad UTF-8 in a string, a nested message broken — and the tree is written back.
/// </summary>
public static class ProtobufMutator
{
    private static readonly ulong[] Extremes =
    [
        0, 1, 2, 127, 128, 255, 65535, int.MaxValue, (ulong)int.MaxValue + 1, uint.MaxValue, (ulong)uint.MaxValue + 1,
        long.MaxValue, ulong.MaxValue, unchecked((ulong)-1L), unchecked((ulong)-2L),
    ];

    private static readonly byte[][] BadUtf8 = [[0xFF], [0xC0, 0x80], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80], [0xE2, 0x82]];

    private sealed class Field
    {
        public int Number;
        public int WireType;
        public ulong Varint;
        public byte[] Bytes = [];
        public List<Field>? Nested;
        public long? LengthOverride;
        public int VarintPadding;
        public int TagPadding;

        public Field Clone() => new()
        {
            Number = Number, WireType = WireType, Varint = Varint, Bytes = Bytes, Nested = Nested?.Select(f => f.Clone()).ToList(),
            LengthOverride = LengthOverride, VarintPadding = VarintPadding, TagPadding = TagPadding,
        };
    }

    /// <summary>A mutant of <paramref name="message"/> with one to three structural changes.</summary>
    public static byte[] Mutate(byte[] message, Random random)
    {
        var fields = Parse(message, 0) ?? [new Field { Number = 1, WireType = 2, Bytes = message }];
        for (var rounds = 1 + random.Next(3); rounds > 0; rounds--)
        {
            MutateSomewhere(fields, random, 0);
        }

        var bytes = Encode(fields);
        return random.Next(12) == 0 && bytes.Length > 0 ? bytes[..random.Next(bytes.Length)] : bytes;
    }

    /// <summary>
    /// The gRPC body for <paramref name="message"/>: usually one plain frame, sometimes a frame whose header lies
    /// or is cut, two frames, or a compressed frame (returned with its grpc-encoding).
    /// </summary>
    public static (byte[] Body, string? Encoding) Frame(byte[] message, Random random)
    {
        switch (random.Next(14))
        {
            case 0:
                return (RawGrpc.Frame(message)[..random.Next(1, Math.Min(5, message.Length + 5))], null);
            case 1:
                var lying = RawGrpc.Frame(message);
                BinaryPrimitives.WriteUInt32BigEndian(lying.AsSpan(1), (uint)Math.Max(0, message.Length + random.Next(-3, 4)));
                return (lying, null);
            case 2:
                var flagged = RawGrpc.Frame(message);
                flagged[0] = (byte)random.Next(0, 4);
                return (flagged, random.Next(2) == 0 ? "gzip" : null);
            case 3:
                return ([.. RawGrpc.Frame(message), .. RawGrpc.Frame(message)], null);
            case 4:
                var coding = random.Next(2) == 0 ? "gzip" : "deflate";
                var compressed = Compress(message, coding);
                if (random.Next(3) == 0 && compressed.Length > 4)
                {
                    compressed[random.Next(compressed.Length)] ^= (byte)(1 + random.Next(255));
                }

                return (RawGrpc.Frame(compressed, compressed: true), random.Next(8) == 0 ? "br" : coding);
            default:
                return (RawGrpc.Frame(message), null);
        }
    }

    private static byte[] Compress(byte[] message, string coding)
    {
        using var output = new MemoryStream();
        using (Stream compressor = coding == "gzip" ? new GZipStream(output, CompressionLevel.Fastest, true) : new ZLibStream(output, CompressionLevel.Fastest, true))
        {
            compressor.Write(message);
        }

        return output.ToArray();
    }

    private static void MutateSomewhere(List<Field> fields, Random random, int depth)
    {
        if (fields.Count == 0 || random.Next(8) == 0)
        {
            fields.Insert(random.Next(fields.Count + 1), Unknown(random));
            return;
        }

        var index = random.Next(fields.Count);
        var field = fields[index];
        if (field.Nested is { } nested && random.Next(3) != 0 && depth < 8)
        {
            MutateSomewhere(nested, random, depth + 1);
            return;
        }

        switch (random.Next(9))
        {
            case 0:
                fields.RemoveAt(index);
                break;
            case 1:
                fields.Insert(random.Next(fields.Count + 1), field.Clone());
                break;
            case 2:
                field.WireType = random.Next(8);
                break;
            case 3:
                field.TagPadding = 1 + random.Next(5);
                break;
            case 4 when field.WireType == 0:
                field.Varint = Extremes[random.Next(Extremes.Length)];
                break;
            case 5 when field.WireType == 0:
                field.VarintPadding = 1 + random.Next(6);
                break;
            case 4 or 5 when field.WireType == 2:
                field.LengthOverride = random.Next(4) switch
                {
                    0 => uint.MaxValue,
                    1 => int.MaxValue,
                    _ => Math.Max(0, field.Bytes.Length + random.Next(-4, 5)),
                };
                break;
            case 6 when field.WireType == 2 && field.Nested is null:
                var bad = BadUtf8[random.Next(BadUtf8.Length)];
                var at = random.Next(field.Bytes.Length + 1);
                field.Bytes = [.. field.Bytes[..at], .. bad, .. field.Bytes[at..]];
                break;
            case 7 when field.WireType == 2:
                field.Nested = null;
                field.Bytes = random.Next(3) switch
                {
                    0 => [],
                    1 => Enumerable.Range(0, random.Next(1, 64)).Select(_ => (byte)random.Next(256)).ToArray(),
                    _ => new byte[random.Next(1, 20_000)],
                };
                break;
            default:
                field.Number = random.Next(4) switch
                {
                    0 => 0,
                    1 => (1 << 29) - 1,
                    _ => random.Next(1, 20),
                };
                break;
        }
    }

    private static Field Unknown(Random random)
    {
        var wire = new[] { 0, 1, 2, 5 }[random.Next(4)];
        return new Field
        {
            Number = random.Next(16, 10_000),
            WireType = wire,
            Varint = Extremes[random.Next(Extremes.Length)],
            Bytes = wire switch { 1 => new byte[8], 5 => new byte[4], _ => new byte[random.Next(0, 32)] },
        };
    }

    // The fields of a message, or null when the bytes do not parse as one (then they are a string, bytes or packed numbers).
    private static List<Field>? Parse(ReadOnlySpan<byte> data, int depth)
    {
        var fields = new List<Field>();
        while (!data.IsEmpty)
        {
            if (!TryVarint(ref data, out var tag) || tag >> 3 == 0 || tag >> 3 > int.MaxValue)
            {
                return null;
            }

            var field = new Field { Number = (int)(tag >> 3), WireType = (int)(tag & 7) };
            switch (field.WireType)
            {
                case 0:
                    if (!TryVarint(ref data, out field.Varint))
                    {
                        return null;
                    }

                    break;
                case 1 or 5:
                    var size = field.WireType == 1 ? 8 : 4;
                    if (data.Length < size)
                    {
                        return null;
                    }

                    field.Bytes = data[..size].ToArray();
                    data = data[size..];
                    break;
                case 2:
                    if (!TryVarint(ref data, out var length) || length > (ulong)data.Length)
                    {
                        return null;
                    }

                    field.Bytes = data[..(int)length].ToArray();
                    data = data[(int)length..];
                    field.Nested = depth < 8 && field.Bytes.Length > 0 ? Parse(field.Bytes, depth + 1) : null;
                    break;
                default:
                    return null;
            }

            fields.Add(field);
        }

        return fields;
    }

    private static byte[] Encode(List<Field> fields)
    {
        var output = new List<byte>();
        foreach (var field in fields)
        {
            WriteVarint(output, ((ulong)(uint)field.Number << 3) | (uint)(field.WireType & 7), field.TagPadding);
            var body = field.Nested is { } nested ? Encode(nested) : field.Bytes;
            switch (field.WireType)
            {
                case 0:
                    WriteVarint(output, field.Varint, field.VarintPadding);
                    break;
                case 1 or 5:
                    output.AddRange(body.Length > 0 ? body : new byte[field.WireType == 1 ? 8 : 4]);
                    break;
                case 2:
                    WriteVarint(output, (ulong)(field.LengthOverride ?? body.Length), 0);
                    output.AddRange(body);
                    break;
                default:
                    // Groups and invalid wire types: whatever followed the tag.
                    output.AddRange(body);
                    break;
            }
        }

        return [.. output];
    }

    private static bool TryVarint(ref ReadOnlySpan<byte> data, out ulong value)
    {
        value = 0;
        for (var i = 0; i < 10 && i < data.Length; i++)
        {
            value |= (ulong)(data[i] & 0x7F) << (7 * i);
            if (data[i] < 0x80)
            {
                data = data[(i + 1)..];
                return true;
            }
        }

        return false;
    }

    // Padding writes the value in more bytes than it needs (continuation bits on zero groups): legal up to ten bytes.
    private static void WriteVarint(List<byte> output, ulong value, int padding)
    {
        var groups = new List<byte>();
        do
        {
            groups.Add((byte)(value & 0x7F));
            value >>= 7;
        }
        while (value != 0);

        for (var i = 0; i < padding; i++)
        {
            groups.Add(0);
        }

        for (var i = 0; i < groups.Count; i++)
        {
            output.Add(i < groups.Count - 1 ? (byte)(groups[i] | 0x80) : groups[i]);
        }
    }
}
