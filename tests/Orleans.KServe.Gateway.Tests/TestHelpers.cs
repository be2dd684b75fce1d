using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using Orleans.KServe.Contracts.Inference;
using Orleans.KServe.Gateway.Codecs;

namespace Orleans.KServe.Gateway.Tests;

/// <summary>Builds expected little-endian tensor bytes and checks codec failures.</summary>
internal static class LE
{
    public static byte[] U8(params byte[] values) => values;

    public static byte[] I8(params sbyte[] values) => values.Select(v => (byte)v).ToArray();

    public static byte[] Bool(params bool[] values) => values.Select(v => v ? (byte)1 : (byte)0).ToArray();

    public static byte[] U16(params ushort[] values) => Build(values, 2, (s, v) => BinaryPrimitives.WriteUInt16LittleEndian(s, v));

    public static byte[] I16(params short[] values) => Build(values, 2, (s, v) => BinaryPrimitives.WriteInt16LittleEndian(s, v));

    public static byte[] U32(params uint[] values) => Build(values, 4, (s, v) => BinaryPrimitives.WriteUInt32LittleEndian(s, v));

    public static byte[] I32(params int[] values) => Build(values, 4, (s, v) => BinaryPrimitives.WriteInt32LittleEndian(s, v));

    public static byte[] U64(params ulong[] values) => Build(values, 8, (s, v) => BinaryPrimitives.WriteUInt64LittleEndian(s, v));

    public static byte[] I64(params long[] values) => Build(values, 8, (s, v) => BinaryPrimitives.WriteInt64LittleEndian(s, v));

    public static byte[] F16(params Half[] values) => Build(values, 2, (s, v) => BinaryPrimitives.WriteHalfLittleEndian(s, v));

    public static byte[] BF16(params ushort[] bits) => U16(bits);

    public static byte[] F32(params float[] values) => Build(values, 4, (s, v) => BinaryPrimitives.WriteSingleLittleEndian(s, v));

    public static byte[] F64(params double[] values) => Build(values, 8, (s, v) => BinaryPrimitives.WriteDoubleLittleEndian(s, v));

    /// <summary>BYTES layout: each element a 4-byte little-endian length then its UTF-8 bytes.</summary>
    public static byte[] Strings(params string[] values)
    {
        var result = new List<byte>();
        foreach (var value in values)
        {
            var utf8 = Encoding.UTF8.GetBytes(value);
            var length = new byte[4];
            BinaryPrimitives.WriteInt32LittleEndian(length, utf8.Length);
            result.AddRange(length);
            result.AddRange(utf8);
        }

        return result.ToArray();
    }

    public static float[] ToFloats(ReadOnlyMemory<byte> data)
    {
        var span = data.Span;
        var result = new float[span.Length / 4];
        for (var i = 0; i < result.Length; i++)
        {
            result[i] = BinaryPrimitives.ReadSingleLittleEndian(span[(i * 4)..]);
        }

        return result;
    }

    public static long[] ToInt64s(ReadOnlyMemory<byte> data)
    {
        var span = data.Span;
        var result = new long[span.Length / 8];
        for (var i = 0; i < result.Length; i++)
        {
            result[i] = BinaryPrimitives.ReadInt64LittleEndian(span[(i * 8)..]);
        }

        return result;
    }

    private delegate void Writer<T>(Span<byte> span, T value);

    private static byte[] Build<T>(T[] values, int size, Writer<T> write)
    {
        var result = new byte[values.Length * size];
        for (var i = 0; i < values.Length; i++)
        {
            write(result.AsSpan(i * size), values[i]);
        }

        return result;
    }
}

internal static class Codec
{
    public static byte[] Utf8(string json) => Encoding.UTF8.GetBytes(json);

    /// <summary>Asserts that <paramref name="action"/> fails with a 400 InferenceException whose message holds every fragment.</summary>
    public static InferenceException AssertInvalid(Action action, params string[] fragments)
    {
        var exception = Record.Exception(action);
        Assert.NotNull(exception);
        var inference = Assert.IsType<InferenceException>(exception);
        Assert.Equal(InferenceErrorKind.InvalidInput, inference.Kind);
        Assert.Equal(400, Orleans.KServe.Gateway.Serving.FailureTable.HttpStatus(inference.Kind));
        foreach (var fragment in fragments)
        {
            Assert.Contains(fragment, inference.Message, StringComparison.OrdinalIgnoreCase);
        }

        return inference;
    }

    /// <summary>Decodes a v2 request; the buffers stay rented until the returned scope is disposed.</summary>
    public static InferenceRequest DecodeV2(string json, PooledBuffers buffers) => V2JsonCodec.DecodeRequest(Utf8(json), buffers);

    public static void AssertV2Invalid(string json, params string[] fragments)
    {
        using var buffers = new PooledBuffers();
        AssertInvalid(() => V2JsonCodec.DecodeRequest(Utf8(json), buffers), fragments);
    }

    /// <summary>Runs a writer callback and parses what it wrote.</summary>
    public static JsonDocument Write(Action<Utf8JsonWriter> write)
    {
        using var output = new PooledBufferWriter(64);
        using (var writer = new Utf8JsonWriter(output))
        {
            write(writer);
        }

        return JsonDocument.Parse(output.WrittenMemory.ToArray());
    }
}
