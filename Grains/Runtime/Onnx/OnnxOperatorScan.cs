namespace Orleans.KServe.Grains.Runtime.Onnx;

/// <summary>
/// Reads the operator types of an ONNX model file (the graph's nodes and every subgraph's) by walking its protobuf
/// encoding with the file's own field numbers: ModelProto.graph 7, GraphProto.node 1, NodeProto.op_type 4 and
/// attribute 5, AttributeProto.g 6 and graphs 11. Weights and every other field are skipped with a seek, so a
/// model of hundreds of MiB costs a few reads.
/// </summary>
internal static class OnnxOperatorScan
{
    /// <summary>Operators that decode their string inputs as UTF-8 text and fail inside ONNX Runtime on other bytes.</summary>
    public static readonly IReadOnlySet<string> TextOperators = new HashSet<string>(StringComparer.Ordinal)
    {
        "StringNormalizer", "RegexFullMatch", "Tokenizer",
    };

    /// <summary>The operator types used anywhere in the model; empty when the file cannot be read as ONNX.</summary>
    public static IReadOnlySet<string> OperatorTypes(string path)
    {
        var types = new HashSet<string>(StringComparer.Ordinal);
        try
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 64 * 1024);
            var reader = new Reader(stream);
            reader.Message(stream.Length, (field, end) =>
            {
                if (field == 7)
                {
                    Graph(reader, end, types, depth: 0);
                    return true;
                }

                return false;
            });
        }
        catch (Exception e) when (e is InvalidDataException or IOException or EndOfStreamException)
        {
            // ONNX Runtime reports what is wrong with the file; the scan only adds what it can read.
        }

        return types;
    }

    private static void Graph(Reader reader, long end, HashSet<string> types, int depth)
    {
        reader.Message(end, (field, nodeEnd) =>
        {
            if (field != 1)
            {
                return false;
            }

            reader.Message(nodeEnd, (nodeField, fieldEnd) =>
            {
                if (nodeField == 4)
                {
                    types.Add(reader.String(fieldEnd));
                    return true;
                }

                if (nodeField == 5 && depth < 16)
                {
                    reader.Message(fieldEnd, (attributeField, attributeEnd) =>
                    {
                        if (attributeField is 6 or 11)
                        {
                            Graph(reader, attributeEnd, types, depth + 1);
                            return true;
                        }

                        return false;
                    });
                    return true;
                }

                return false;
            });
            return true;
        });
    }

    private sealed class Reader(Stream stream)
    {
        /// <summary>
        /// Walks the fields of a message ending at <paramref name="end"/>; <paramref name="visit"/> gets each
        /// length-delimited field's number and end and says whether it read the field (else it is skipped).
        /// </summary>
        public void Message(long end, Func<int, long, bool> visit)
        {
            while (stream.Position < end)
            {
                var tag = Varint();
                var field = (int)(tag >> 3);
                switch ((int)(tag & 7))
                {
                    case 0:
                        Varint();
                        break;
                    case 1:
                        Skip(8, end);
                        break;
                    case 5:
                        Skip(4, end);
                        break;
                    case 2:
                        var length = (long)Varint();
                        var fieldEnd = stream.Position + length;
                        if (length < 0 || fieldEnd > end)
                        {
                            throw new InvalidDataException("a field runs past its message");
                        }

                        if (!visit(field, fieldEnd))
                        {
                            stream.Position = fieldEnd;
                        }

                        stream.Position = fieldEnd;
                        break;
                    default:
                        throw new InvalidDataException($"wire type {tag & 7} is not read");
                }
            }
        }

        public string String(long end)
        {
            var bytes = new byte[checked((int)(end - stream.Position))];
            stream.ReadExactly(bytes);
            return System.Text.Encoding.UTF8.GetString(bytes);
        }

        private void Skip(long count, long end)
        {
            if (stream.Position + count > end)
            {
                throw new InvalidDataException("a field runs past its message");
            }

            stream.Position += count;
        }

        private ulong Varint()
        {
            ulong value = 0;
            for (var shift = 0; shift < 64; shift += 7)
            {
                var b = stream.ReadByte();
                if (b < 0)
                {
                    throw new EndOfStreamException();
                }

                value |= (ulong)(b & 0x7F) << shift;
                if (b < 0x80)
                {
                    return value;
                }
            }

            throw new InvalidDataException("a varint of more than ten bytes");
        }
    }
}
