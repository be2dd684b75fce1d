namespace Orleans.KServe.ModelTools.Onnx;

/// <summary>What <see cref="OnnxBatchRewriter.MakeBatchDynamic"/> changed.</summary>
public sealed record BatchRewriteResult(
    byte[] Model,
    IReadOnlyList<string> RewrittenInputs,
    IReadOnlyList<string> RewrittenOutputs,
    int RemovedValueInfoCount);

/// <summary>
/// Rewrites a serialized ONNX model at the wire-format level so that its batch dimension is
/// symbolic. Every field is copied byte for byte except:
/// <list type="bullet">
/// <item>dim 0 of each real graph input (an input that is not also an initializer) and of each
/// graph output becomes <c>dim_param</c> = the given name;</item>
/// <item><c>GraphProto.value_info</c> (field 13) is dropped, because it records intermediate
/// shapes with the old fixed batch size and would conflict with other batch sizes.</item>
/// </list>
/// </summary>
public static class OnnxBatchRewriter
{
    // ModelProto
    private const int ModelGraph = 7;

    // GraphProto
    private const int GraphInitializer = 5;
    private const int GraphInput = 11;
    private const int GraphOutput = 12;
    private const int GraphValueInfo = 13;

    // TensorProto
    private const int TensorName = 8;

    // ValueInfoProto
    private const int ValueInfoName = 1;
    private const int ValueInfoType = 2;

    // TypeProto / TypeProto.Tensor / TensorShapeProto / Dimension
    private const int TypeTensorType = 1;
    private const int TensorTypeShape = 2;
    private const int ShapeDim = 1;
    private const int DimValue = 1;
    private const int DimParam = 2;

    public static BatchRewriteResult MakeBatchDynamic(ReadOnlySpan<byte> model, string batchDimName = "batch")
    {
        ArgumentException.ThrowIfNullOrEmpty(batchDimName);
        var writer = new ProtoWriter(model.Length + 256);
        var reader = new ProtoReader(model);
        var inputs = new List<string>();
        var outputs = new List<string>();
        var removed = 0;
        var graphs = 0;
        while (reader.TryReadField(out var field))
        {
            if (field.FieldNumber == ModelGraph && field.WireType == WireType.LengthDelimited)
            {
                writer.WriteBytes(ModelGraph, RewriteGraph(field.Payload, batchDimName, inputs, outputs, ref removed));
                graphs++;
            }
            else
            {
                writer.WriteRawBytes(field.Raw);
            }
        }

        if (graphs != 1)
        {
            throw new InvalidDataException($"Expected exactly one ModelProto.graph, found {graphs}; is this an ONNX model?");
        }

        if (inputs.Count == 0)
        {
            throw new InvalidDataException("The graph has no inputs that are not initializers.");
        }

        return new BatchRewriteResult(writer.ToArray(), inputs, outputs, removed);
    }

    private static byte[] RewriteGraph(ReadOnlySpan<byte> graph, string batchDimName, List<string> inputs, List<string> outputs, ref int removed)
    {
        var initializers = new HashSet<string>(StringComparer.Ordinal);
        var scan = new ProtoReader(graph);
        while (scan.TryReadField(out var field))
        {
            if (field.FieldNumber == GraphInitializer && field.WireType == WireType.LengthDelimited)
            {
                var name = ReadStringField(field.Payload, TensorName);
                if (name is not null)
                {
                    initializers.Add(name);
                }
            }
        }

        var writer = new ProtoWriter(graph.Length);
        var reader = new ProtoReader(graph);
        while (reader.TryReadField(out var field))
        {
            switch (field.FieldNumber)
            {
                case GraphValueInfo:
                    removed++;
                    break;
                case GraphInput when field.WireType == WireType.LengthDelimited:
                    var inputName = ReadStringField(field.Payload, ValueInfoName) ?? "";
                    if (initializers.Contains(inputName))
                    {
                        writer.WriteRawBytes(field.Raw);
                    }
                    else
                    {
                        writer.WriteBytes(GraphInput, RewriteValueInfo(field.Payload, batchDimName, inputName));
                        inputs.Add(inputName);
                    }

                    break;
                case GraphOutput when field.WireType == WireType.LengthDelimited:
                    var outputName = ReadStringField(field.Payload, ValueInfoName) ?? "";
                    writer.WriteBytes(GraphOutput, RewriteValueInfo(field.Payload, batchDimName, outputName));
                    outputs.Add(outputName);
                    break;
                default:
                    writer.WriteRawBytes(field.Raw);
                    break;
            }
        }

        return writer.ToArray();
    }

    private static byte[] RewriteValueInfo(ReadOnlySpan<byte> valueInfo, string batchDimName, string valueName)
    {
        var writer = new ProtoWriter(valueInfo.Length + 16);
        var reader = new ProtoReader(valueInfo);
        var rewritten = false;
        while (reader.TryReadField(out var field))
        {
            if (field.FieldNumber == ValueInfoType && field.WireType == WireType.LengthDelimited)
            {
                writer.WriteBytes(ValueInfoType, RewriteType(field.Payload, batchDimName, valueName));
                rewritten = true;
            }
            else
            {
                writer.WriteRawBytes(field.Raw);
            }
        }

        if (!rewritten)
        {
            throw new InvalidDataException($"Graph value '{valueName}' has no type.");
        }

        return writer.ToArray();
    }

    private static byte[] RewriteType(ReadOnlySpan<byte> type, string batchDimName, string valueName)
    {
        var writer = new ProtoWriter(type.Length + 16);
        var reader = new ProtoReader(type);
        var rewritten = false;
        while (reader.TryReadField(out var field))
        {
            if (field.FieldNumber == TypeTensorType && field.WireType == WireType.LengthDelimited)
            {
                writer.WriteBytes(TypeTensorType, RewriteTensorType(field.Payload, batchDimName, valueName));
                rewritten = true;
            }
            else
            {
                writer.WriteRawBytes(field.Raw);
            }
        }

        if (!rewritten)
        {
            throw new InvalidDataException($"Graph value '{valueName}' is not a tensor; cannot give it a batch dimension.");
        }

        return writer.ToArray();
    }

    private static byte[] RewriteTensorType(ReadOnlySpan<byte> tensorType, string batchDimName, string valueName)
    {
        var writer = new ProtoWriter(tensorType.Length + 16);
        var reader = new ProtoReader(tensorType);
        var rewritten = false;
        while (reader.TryReadField(out var field))
        {
            if (field.FieldNumber == TensorTypeShape && field.WireType == WireType.LengthDelimited)
            {
                writer.WriteBytes(TensorTypeShape, RewriteShape(field.Payload, batchDimName, valueName));
                rewritten = true;
            }
            else
            {
                writer.WriteRawBytes(field.Raw);
            }
        }

        if (!rewritten)
        {
            throw new InvalidDataException($"Tensor '{valueName}' has no shape; cannot make its batch dimension symbolic.");
        }

        return writer.ToArray();
    }

    private static byte[] RewriteShape(ReadOnlySpan<byte> shape, string batchDimName, string valueName)
    {
        var writer = new ProtoWriter(shape.Length + 16);
        var reader = new ProtoReader(shape);
        var first = true;
        while (reader.TryReadField(out var field))
        {
            if (first && field.FieldNumber == ShapeDim && field.WireType == WireType.LengthDelimited)
            {
                writer.WriteBytes(ShapeDim, RewriteDimension(field.Payload, batchDimName));
                first = false;
            }
            else
            {
                writer.WriteRawBytes(field.Raw);
            }
        }

        if (first)
        {
            throw new InvalidDataException($"Tensor '{valueName}' is a scalar; it has no batch dimension.");
        }

        return writer.ToArray();
    }

    private static byte[] RewriteDimension(ReadOnlySpan<byte> dimension, string batchDimName)
    {
        var writer = new ProtoWriter(dimension.Length + batchDimName.Length + 4);
        writer.WriteString(DimParam, batchDimName);
        var reader = new ProtoReader(dimension);
        while (reader.TryReadField(out var field))
        {
            // dim_value and dim_param form a oneof; both are replaced, anything else (denotation) stays.
            if (field.FieldNumber is not (DimValue or DimParam))
            {
                writer.WriteRawBytes(field.Raw);
            }
        }

        return writer.ToArray();
    }

    private static string? ReadStringField(ReadOnlySpan<byte> message, int fieldNumber)
    {
        string? value = null;
        var reader = new ProtoReader(message);
        while (reader.TryReadField(out var field))
        {
            if (field.FieldNumber == fieldNumber && field.WireType == WireType.LengthDelimited)
            {
                value = field.AsString(); // last one wins, as in protobuf parsing
            }
        }

        return value;
    }
}
