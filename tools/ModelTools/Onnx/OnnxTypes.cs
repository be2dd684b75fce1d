namespace Orleans.KServe.ModelTools.Onnx;

/// <summary>ONNX <c>TensorProto.DataType</c> values.</summary>
public enum OnnxDataType
{
    Undefined = 0,
    Float = 1,
    UInt8 = 2,
    Int8 = 3,
    UInt16 = 4,
    Int16 = 5,
    Int32 = 6,
    Int64 = 7,
    String = 8,
    Bool = 9,
    Float16 = 10,
    Double = 11,
    UInt32 = 12,
    UInt64 = 13,
    Complex64 = 14,
    Complex128 = 15,
    BFloat16 = 16,
}

/// <summary>
/// One dimension of a tensor shape: a fixed size, a symbolic name (<c>dim_param</c>), or
/// unknown (neither set).
/// </summary>
public readonly record struct OnnxDim(long? Value, string? Param)
{
    public static OnnxDim Fixed(long value) => new(value, null);

    public static OnnxDim Symbolic(string name) => new(null, name);

    public static OnnxDim Unknown => new(null, null);

    public static implicit operator OnnxDim(long value) => Fixed(value);

    public static implicit operator OnnxDim(string name) => Symbolic(name);

    public override string ToString() => Value?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? Param ?? "?";
}

/// <summary>An ONNX <c>TypeProto</c>: a tensor, a sequence or a map type.</summary>
public abstract class OnnxType
{
    private protected OnnxType()
    {
    }

    /// <summary>A tensor type; <paramref name="shape"/> null means unknown rank.</summary>
    public static OnnxTensorType Tensor(OnnxDataType elementType, params OnnxDim[]? shape) => new(elementType, shape);

    /// <summary>A tensor type with no shape information at all.</summary>
    public static OnnxTensorType TensorOfUnknownShape(OnnxDataType elementType) => new(elementType, null);

    public static OnnxSequenceType Sequence(OnnxType elementType) => new(elementType);

    public static OnnxMapType Map(OnnxDataType keyType, OnnxType valueType) => new(keyType, valueType);

    internal abstract void Write(ProtoWriter writer);
}

public sealed class OnnxTensorType : OnnxType
{
    public OnnxTensorType(OnnxDataType elementType, IReadOnlyList<OnnxDim>? shape)
    {
        ElementType = elementType;
        Shape = shape;
    }

    public OnnxDataType ElementType { get; }

    public IReadOnlyList<OnnxDim>? Shape { get; }

    internal override void Write(ProtoWriter writer)
    {
        // TypeProto.tensor_type = 1
        writer.WriteMessage(1, tensor =>
        {
            tensor.WriteInt32(1, (int)ElementType); // elem_type
            if (Shape is not null)
            {
                tensor.WriteMessage(2, shape => // shape: TensorShapeProto
                {
                    foreach (var dim in Shape)
                    {
                        shape.WriteMessage(1, d => // dim
                        {
                            if (dim.Value is { } value)
                            {
                                d.WriteInt64(1, value); // dim_value
                            }
                            else if (dim.Param is { } param)
                            {
                                d.WriteString(2, param); // dim_param
                            }
                        });
                    }
                });
            }
        });
    }
}

public sealed class OnnxSequenceType : OnnxType
{
    public OnnxSequenceType(OnnxType elementType)
    {
        ElementType = elementType;
    }

    public OnnxType ElementType { get; }

    internal override void Write(ProtoWriter writer)
    {
        // TypeProto.sequence_type = 4; Sequence.elem_type = 1
        writer.WriteMessage(4, sequence => sequence.WriteMessage(1, ElementType.Write));
    }
}

public sealed class OnnxMapType : OnnxType
{
    public OnnxMapType(OnnxDataType keyType, OnnxType valueType)
    {
        KeyType = keyType;
        ValueType = valueType;
    }

    public OnnxDataType KeyType { get; }

    public OnnxType ValueType { get; }

    internal override void Write(ProtoWriter writer)
    {
        // TypeProto.map_type = 5; Map.key_type = 1, Map.value_type = 2
        writer.WriteMessage(5, map =>
        {
            map.WriteInt32(1, (int)KeyType);
            map.WriteMessage(2, ValueType.Write);
        });
    }
}

/// <summary>An ONNX <c>ValueInfoProto</c>: a named, typed graph input, output or intermediate value.</summary>
public sealed class OnnxValueInfo
{
    public OnnxValueInfo(string name, OnnxType type)
    {
        Name = name;
        Type = type;
    }

    public string Name { get; }

    public OnnxType Type { get; }

    internal void Write(ProtoWriter writer)
    {
        writer.WriteString(1, Name);
        writer.WriteMessage(2, Type.Write);
    }
}
