namespace Orleans.KServe.ModelTools.Onnx;

/// <summary>ONNX <c>AttributeProto.AttributeType</c> values used by this builder.</summary>
public enum OnnxAttributeType
{
    Float = 1,
    Int = 2,
    String = 3,
    Tensor = 4,
    Floats = 6,
    Ints = 7,
    Strings = 8,
}

/// <summary>An ONNX <c>AttributeProto</c>. Always written with its value, even when it is zero.</summary>
public sealed class OnnxAttribute
{
    private OnnxAttribute(string name, OnnxAttributeType type)
    {
        Name = name;
        Type = type;
    }

    public string Name { get; }

    public OnnxAttributeType Type { get; }

    public float FloatValue { get; private init; }

    public long IntValue { get; private init; }

    public string? StringValue { get; private init; }

    public OnnxTensor? TensorValue { get; private init; }

    public IReadOnlyList<float>? FloatValues { get; private init; }

    public IReadOnlyList<long>? IntValues { get; private init; }

    public IReadOnlyList<string>? StringValues { get; private init; }

    public static OnnxAttribute Float(string name, float value) => new(name, OnnxAttributeType.Float) { FloatValue = value };

    public static OnnxAttribute Int(string name, long value) => new(name, OnnxAttributeType.Int) { IntValue = value };

    public static OnnxAttribute String(string name, string value) => new(name, OnnxAttributeType.String) { StringValue = value };

    public static OnnxAttribute Tensor(string name, OnnxTensor value) => new(name, OnnxAttributeType.Tensor) { TensorValue = value };

    public static OnnxAttribute Floats(string name, params float[] values) => new(name, OnnxAttributeType.Floats) { FloatValues = values };

    public static OnnxAttribute Ints(string name, params long[] values) => new(name, OnnxAttributeType.Ints) { IntValues = values };

    public static OnnxAttribute Strings(string name, params string[] values) => new(name, OnnxAttributeType.Strings) { StringValues = values };

    internal void Write(ProtoWriter writer)
    {
        writer.WriteString(1, Name);
        switch (Type)
        {
            case OnnxAttributeType.Float:
                writer.WriteFloat(2, FloatValue);
                break;
            case OnnxAttributeType.Int:
                writer.WriteInt64(3, IntValue);
                break;
            case OnnxAttributeType.String:
                writer.WriteString(4, StringValue!);
                break;
            case OnnxAttributeType.Tensor:
                writer.WriteMessage(5, TensorValue!.Write);
                break;
            case OnnxAttributeType.Floats:
                foreach (var value in FloatValues!)
                {
                    writer.WriteFloat(7, value);
                }

                break;
            case OnnxAttributeType.Ints:
                foreach (var value in IntValues!)
                {
                    writer.WriteInt64(8, value);
                }

                break;
            case OnnxAttributeType.Strings:
                foreach (var value in StringValues!)
                {
                    writer.WriteString(9, value);
                }

                break;
            default:
                throw new InvalidOperationException($"Unsupported attribute type {Type}.");
        }

        writer.WriteInt32(20, (int)Type); // type
    }
}

/// <summary>An ONNX <c>NodeProto</c>: one operator invocation.</summary>
public sealed class OnnxNode
{
    public OnnxNode(string opType, IReadOnlyList<string> inputs, IReadOnlyList<string> outputs, string? name = null, string domain = "")
    {
        OpType = opType;
        Inputs = inputs;
        Outputs = outputs;
        Name = name;
        Domain = domain;
    }

    public string OpType { get; }

    /// <summary>Input value names; an empty string marks an omitted optional input.</summary>
    public IReadOnlyList<string> Inputs { get; }

    public IReadOnlyList<string> Outputs { get; }

    public string? Name { get; set; }

    /// <summary>Operator domain: "" (or "ai.onnx") for the default set, "ai.onnx.ml" for the ML set.</summary>
    public string Domain { get; set; }

    public List<OnnxAttribute> Attributes { get; } = [];

    public OnnxNode WithAttribute(OnnxAttribute attribute)
    {
        Attributes.Add(attribute);
        return this;
    }

    internal void Write(ProtoWriter writer)
    {
        foreach (var input in Inputs)
        {
            writer.WriteString(1, input);
        }

        foreach (var output in Outputs)
        {
            writer.WriteString(2, output);
        }

        if (Name is not null)
        {
            writer.WriteString(3, Name);
        }

        writer.WriteString(4, OpType);
        foreach (var attribute in Attributes)
        {
            writer.WriteMessage(5, attribute.Write);
        }

        if (Domain.Length > 0)
        {
            writer.WriteString(7, Domain);
        }
    }
}

/// <summary>An ONNX <c>GraphProto</c> under construction.</summary>
public sealed class OnnxGraph
{
    public OnnxGraph(string name)
    {
        Name = name;
    }

    public string Name { get; set; }

    public List<OnnxNode> Nodes { get; } = [];

    public List<OnnxTensor> Initializers { get; } = [];

    public List<OnnxValueInfo> Inputs { get; } = [];

    public List<OnnxValueInfo> Outputs { get; } = [];

    public List<OnnxValueInfo> ValueInfo { get; } = [];

    public OnnxGraph AddInput(string name, OnnxType type)
    {
        Inputs.Add(new OnnxValueInfo(name, type));
        return this;
    }

    /// <summary>Adds a tensor input, e.g. <c>AddInput("input", OnnxDataType.Float, "batch", 2)</c>.</summary>
    public OnnxGraph AddInput(string name, OnnxDataType elementType, params OnnxDim[] shape) =>
        AddInput(name, OnnxType.Tensor(elementType, shape));

    public OnnxGraph AddOutput(string name, OnnxType type)
    {
        Outputs.Add(new OnnxValueInfo(name, type));
        return this;
    }

    public OnnxGraph AddOutput(string name, OnnxDataType elementType, params OnnxDim[] shape) =>
        AddOutput(name, OnnxType.Tensor(elementType, shape));

    /// <summary>Adds a constant tensor; its name can then be used as a node input.</summary>
    public string AddInitializer(OnnxTensor tensor)
    {
        Initializers.Add(tensor);
        return tensor.Name;
    }

    /// <summary>
    /// Adds a node and returns it so attributes can be attached. Nodes must be added in
    /// topological order. A missing <paramref name="name"/> is derived from the op type.
    /// </summary>
    public OnnxNode AddNode(string opType, IReadOnlyList<string> inputs, IReadOnlyList<string> outputs, string? name = null, string domain = "", params OnnxAttribute[] attributes)
    {
        var node = new OnnxNode(opType, inputs, outputs, name ?? $"{opType}_{Nodes.Count}", domain);
        node.Attributes.AddRange(attributes);
        Nodes.Add(node);
        return node;
    }

    /// <summary>Adds a single-output node and returns the output's name, for chaining expressions.</summary>
    public string Apply(string opType, string output, string[] inputs, params OnnxAttribute[] attributes)
    {
        AddNode(opType, inputs, [output], attributes: attributes);
        return output;
    }

    internal void Write(ProtoWriter writer)
    {
        foreach (var node in Nodes)
        {
            writer.WriteMessage(1, node.Write);
        }

        writer.WriteString(2, Name);
        foreach (var initializer in Initializers)
        {
            writer.WriteMessage(5, initializer.Write);
        }

        foreach (var input in Inputs)
        {
            writer.WriteMessage(11, input.Write);
        }

        foreach (var output in Outputs)
        {
            writer.WriteMessage(12, output.Write);
        }

        foreach (var info in ValueInfo)
        {
            writer.WriteMessage(13, info.Write);
        }
    }
}
