using System.Collections.Frozen;
using Orleans.KServe.Contracts.Tensors;

namespace Orleans.KServe.Gateway.Serving;

/// <summary>A protocol datatype as Triton's model configuration names it: the config's text and its proto enum number.</summary>
/// <param name="Type">The protocol datatype.</param>
/// <param name="ConfigName">Triton's <c>DataType</c> name (<c>TYPE_FP32</c>; BYTES is <c>TYPE_STRING</c>).</param>
/// <param name="Number">The <c>inference.DataType</c> enum value of model_config.proto.</param>
public readonly record struct TritonType(TensorDataType Type, string ConfigName, int Number);

/// <summary>The one table of Triton's model-config datatypes, used by REST (its names) and gRPC (its numbers).</summary>
public static class TritonTypes
{
    private static readonly FrozenDictionary<TensorDataType, TritonType> ByType = new TritonType[]
    {
        new(TensorDataType.Bool, "TYPE_BOOL", 1),
        new(TensorDataType.UInt8, "TYPE_UINT8", 2),
        new(TensorDataType.UInt16, "TYPE_UINT16", 3),
        new(TensorDataType.UInt32, "TYPE_UINT32", 4),
        new(TensorDataType.UInt64, "TYPE_UINT64", 5),
        new(TensorDataType.Int8, "TYPE_INT8", 6),
        new(TensorDataType.Int16, "TYPE_INT16", 7),
        new(TensorDataType.Int32, "TYPE_INT32", 8),
        new(TensorDataType.Int64, "TYPE_INT64", 9),
        new(TensorDataType.FP16, "TYPE_FP16", 10),
        new(TensorDataType.FP32, "TYPE_FP32", 11),
        new(TensorDataType.FP64, "TYPE_FP64", 12),
        new(TensorDataType.Bytes, "TYPE_STRING", 13),
        new(TensorDataType.BF16, "TYPE_BF16", 14),
    }.ToFrozenDictionary(t => t.Type);

    /// <summary>The Triton datatype of <paramref name="type"/> (<c>TYPE_INVALID</c>, 0, for one it has none for).</summary>
    public static TritonType Of(TensorDataType type) => ByType.TryGetValue(type, out var triton) ? triton : new TritonType(type, "TYPE_INVALID", 0);
}
