using System.Collections.Immutable;

namespace Orleans.KServe.Contracts.Tensors;

/// <summary>
/// A named tensor: datatype, shape and its elements as one contiguous little-endian, row-major buffer.
/// BYTES tensors hold each element as a 4-byte little-endian length followed by its bytes (the binary
/// tensor extension's layout), so every codec can hand the buffer on without per-element objects.
/// </summary>
/// <remarks>
/// Ownership: a tensor never owns its memory. Whoever builds it (a codec that rented a pooled buffer, a runtime
/// that allocated an output array) stays the owner and may reuse or return the buffer only after every call that
/// received the tensor has completed. Receivers never keep a reference past the end of the call that received
/// it; a receiver that needs the data longer copies it. Tensors are immutable, so Orleans passes them between
/// grains on one silo without copying.
/// </remarks>
[GenerateSerializer, Immutable]
[Alias("Orleans.KServe.Contracts.Tensor")]
public sealed class Tensor
{
    /// <summary>Creates a tensor over <paramref name="data"/>; the caller keeps ownership of the memory.</summary>
    public Tensor(string name, TensorDataType dataType, ImmutableArray<long> shape, ReadOnlyMemory<byte> data)
    {
        Name = name;
        DataType = dataType;
        Shape = shape;
        Data = data;
    }

    /// <summary>The input or output name.</summary>
    [Id(0)] public string Name { get; }

    /// <summary>The element datatype.</summary>
    [Id(1)] public TensorDataType DataType { get; }

    /// <summary>The dimensions, outermost first.</summary>
    [Id(2)] public ImmutableArray<long> Shape { get; }

    /// <summary>The elements, contiguous, little-endian, row-major.</summary>
    [Id(3)] public ReadOnlyMemory<byte> Data { get; }

    /// <summary>The number of elements the shape describes.</summary>
    public long ElementCount => ShapeMath.ElementCount(Shape.AsSpan());

    /// <summary>Returns a tensor with the same data under another name.</summary>
    public Tensor WithName(string name) => new(name, DataType, Shape, Data);

    /// <inheritdoc />
    public override string ToString() => $"{Name} {DataType.ToProtocolName()}[{string.Join(",", Shape)}]";
}

/// <summary>Shape arithmetic shared by codecs and runtimes.</summary>
public static class ShapeMath
{
    /// <summary>Largest element count a single tensor may have (keeps byte sizes inside 2 GiB buffers).</summary>
    public const long MaxElements = int.MaxValue;

    /// <summary>Product of the dimensions; 1 for a scalar. Throws on negative dims or overflow.</summary>
    public static long ElementCount(ReadOnlySpan<long> shape)
    {
        long count = 1;
        foreach (var d in shape)
        {
            if (d < 0)
            {
                throw new ArgumentOutOfRangeException(nameof(shape), $"negative dimension {d}");
            }

            count = checked(count * d);
        }

        return count;
    }

    /// <summary>Product of the dimensions, or false when one is negative or the product exceeds <see cref="MaxElements"/>.</summary>
    public static bool TryElementCount(ReadOnlySpan<long> shape, out long count)
    {
        count = 1;
        foreach (var d in shape)
        {
            if (d < 0)
            {
                return false;
            }

            if (d != 0 && count > MaxElements / d)
            {
                count = -1;
                return false;
            }

            count *= d;
        }

        return true;
    }

    /// <summary>Formats a shape as the protocol prints it: <c>[2,3]</c>.</summary>
    public static string Format(ReadOnlySpan<long> shape)
    {
        var parts = new string[shape.Length];
        for (var i = 0; i < shape.Length; i++)
        {
            parts[i] = shape[i].ToString(System.Globalization.CultureInfo.InvariantCulture);
        }

        return "[" + string.Join(",", parts) + "]";
    }
}
