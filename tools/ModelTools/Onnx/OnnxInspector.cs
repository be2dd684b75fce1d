using System.Globalization;
using System.Text;

namespace Orleans.KServe.ModelTools.Onnx;

/// <summary>A graph input or output as declared in the model.</summary>
public sealed record OnnxValueSummary(string Name, string Type, OnnxDataType? ElementType, IReadOnlyList<OnnxDim>? Shape)
{
    public override string ToString() => $"{Name}: {Type}";
}

/// <summary>The parts of a model the tools and tests care about.</summary>
public sealed record OnnxModelSummary(
    long IrVersion,
    string ProducerName,
    IReadOnlyList<KeyValuePair<string, long>> Opsets,
    IReadOnlyList<OnnxValueSummary> Inputs,
    IReadOnlyList<OnnxValueSummary> Outputs,
    IReadOnlyList<string> InitializerNames,
    int ValueInfoCount,
    IReadOnlyList<string> OpTypes)
{
    /// <summary>Graph inputs that are not initializers (what a caller must feed).</summary>
    public IReadOnlyList<OnnxValueSummary> RealInputs =>
        Inputs.Where(i => !InitializerNames.Contains(i.Name, StringComparer.Ordinal)).ToList();
}

/// <summary>Reads a summary of a serialized ONNX model with the wire-format walker.</summary>
public static class OnnxInspector
{
    public static OnnxModelSummary ReadFile(string path) => Read(File.ReadAllBytes(path));

    public static OnnxModelSummary Read(ReadOnlySpan<byte> model)
    {
        long irVersion = 0;
        var producer = "";
        var opsets = new List<KeyValuePair<string, long>>();
        var inputs = new List<OnnxValueSummary>();
        var outputs = new List<OnnxValueSummary>();
        var initializers = new List<string>();
        var opTypes = new List<string>();
        var valueInfo = 0;

        var reader = new ProtoReader(model);
        while (reader.TryReadField(out var field))
        {
            switch (field.FieldNumber)
            {
                case 1:
                    irVersion = field.AsInt64();
                    break;
                case 2:
                    producer = field.AsString();
                    break;
                case 7:
                    var graph = new ProtoReader(field.Payload);
                    while (graph.TryReadField(out var g))
                    {
                        switch (g.FieldNumber)
                        {
                            case 1:
                                opTypes.Add(ReadNodeOpType(g.Payload));
                                break;
                            case 5:
                                initializers.Add(ReadString(g.Payload, 8) ?? "");
                                break;
                            case 11:
                                inputs.Add(ReadValueInfo(g.Payload));
                                break;
                            case 12:
                                outputs.Add(ReadValueInfo(g.Payload));
                                break;
                            case 13:
                                valueInfo++;
                                break;
                        }
                    }

                    break;
                case 8:
                    var domain = "";
                    long version = 0;
                    var opset = new ProtoReader(field.Payload);
                    while (opset.TryReadField(out var o))
                    {
                        if (o.FieldNumber == 1)
                        {
                            domain = o.AsString();
                        }
                        else if (o.FieldNumber == 2)
                        {
                            version = o.AsInt64();
                        }
                    }

                    opsets.Add(new KeyValuePair<string, long>(domain, version));
                    break;
            }
        }

        return new OnnxModelSummary(irVersion, producer, opsets, inputs, outputs, initializers, valueInfo, opTypes);
    }

    public static string Describe(OnnxModelSummary summary)
    {
        var text = new StringBuilder();
        text.Append(CultureInfo.InvariantCulture, $"ir_version {summary.IrVersion}, producer '{summary.ProducerName}', opsets ");
        text.AppendLine(string.Join(", ", summary.Opsets.Select(o => $"{(o.Key.Length == 0 ? "ai.onnx" : o.Key)}:{o.Value}")));
        foreach (var input in summary.RealInputs)
        {
            text.AppendLine(CultureInfo.InvariantCulture, $"  input  {input}");
        }

        foreach (var output in summary.Outputs)
        {
            text.AppendLine(CultureInfo.InvariantCulture, $"  output {output}");
        }

        text.AppendLine(CultureInfo.InvariantCulture, $"  {summary.OpTypes.Count} nodes ({string.Join(", ", summary.OpTypes.GroupBy(o => o).Select(g => $"{g.Key}×{g.Count()}"))})");
        text.AppendLine(CultureInfo.InvariantCulture, $"  {summary.InitializerNames.Count} initializers, {summary.Inputs.Count - summary.RealInputs.Count} of them also listed as inputs, {summary.ValueInfoCount} value_info entries");
        return text.ToString();
    }

    private static string ReadNodeOpType(ReadOnlySpan<byte> node) => ReadString(node, 4) ?? "";

    private static OnnxValueSummary ReadValueInfo(ReadOnlySpan<byte> valueInfo)
    {
        var name = "";
        var type = "?";
        OnnxDataType? elementType = null;
        IReadOnlyList<OnnxDim>? shape = null;
        var reader = new ProtoReader(valueInfo);
        while (reader.TryReadField(out var field))
        {
            if (field.FieldNumber == 1)
            {
                name = field.AsString();
            }
            else if (field.FieldNumber == 2)
            {
                type = DescribeType(field.Payload, out elementType, out shape);
            }
        }

        return new OnnxValueSummary(name, type, elementType, shape);
    }

    private static string DescribeType(ReadOnlySpan<byte> typeProto, out OnnxDataType? elementType, out IReadOnlyList<OnnxDim>? shape)
    {
        elementType = null;
        shape = null;
        var reader = new ProtoReader(typeProto);
        while (reader.TryReadField(out var field))
        {
            switch (field.FieldNumber)
            {
                case 1: // tensor_type
                    var tensor = new ProtoReader(field.Payload);
                    var dims = (List<OnnxDim>?)null;
                    var elem = OnnxDataType.Undefined;
                    while (tensor.TryReadField(out var t))
                    {
                        if (t.FieldNumber == 1)
                        {
                            elem = (OnnxDataType)t.AsInt64();
                        }
                        else if (t.FieldNumber == 2)
                        {
                            dims = [];
                            var shapeReader = new ProtoReader(t.Payload);
                            while (shapeReader.TryReadField(out var d))
                            {
                                if (d.FieldNumber == 1)
                                {
                                    dims.Add(ReadDim(d.Payload));
                                }
                            }
                        }
                    }

                    elementType = elem;
                    shape = dims;
                    var text = $"tensor({elem.ToString().ToLowerInvariant()})";
                    return dims is null ? text : $"{text}[{string.Join(",", dims)}]";
                case 4: // sequence_type
                    var sequence = ReadMessageField(field.Payload, 1);
                    return $"seq({DescribeType(sequence, out _, out _)})";
                case 5: // map_type
                    var key = OnnxDataType.Undefined;
                    var value = "?";
                    var map = new ProtoReader(field.Payload);
                    while (map.TryReadField(out var m))
                    {
                        if (m.FieldNumber == 1)
                        {
                            key = (OnnxDataType)m.AsInt64();
                        }
                        else if (m.FieldNumber == 2)
                        {
                            value = DescribeType(m.Payload, out _, out _);
                        }
                    }

                    return $"map({key.ToString().ToLowerInvariant()},{value})";
            }
        }

        return "?";
    }

    private static OnnxDim ReadDim(ReadOnlySpan<byte> dimension)
    {
        var dim = OnnxDim.Unknown;
        var reader = new ProtoReader(dimension);
        while (reader.TryReadField(out var field))
        {
            if (field.FieldNumber == 1)
            {
                dim = OnnxDim.Fixed(field.AsInt64());
            }
            else if (field.FieldNumber == 2)
            {
                dim = OnnxDim.Symbolic(field.AsString());
            }
        }

        return dim;
    }

    private static ReadOnlySpan<byte> ReadMessageField(ReadOnlySpan<byte> message, int fieldNumber)
    {
        var reader = new ProtoReader(message);
        while (reader.TryReadField(out var field))
        {
            if (field.FieldNumber == fieldNumber)
            {
                return field.Payload;
            }
        }

        return [];
    }

    private static string? ReadString(ReadOnlySpan<byte> message, int fieldNumber)
    {
        string? value = null;
        var reader = new ProtoReader(message);
        while (reader.TryReadField(out var field))
        {
            if (field.FieldNumber == fieldNumber && field.WireType == WireType.LengthDelimited)
            {
                value = field.AsString();
            }
        }

        return value;
    }
}
