using System.Buffers.Binary;
using System.Collections.Immutable;
using System.Globalization;
using Orleans.KServe.Contracts.Inference;
using Orleans.KServe.Contracts.Tensors;

namespace Orleans.KServe.Gateway.Codecs;

/// <summary>
/// The binary tensor data extension of the v2 REST protocol. A body is a JSON header followed by the raw bytes of
/// the tensors that carry the parameter <c>binary_data_size</c>, concatenated in the order those tensors appear;
/// the header's length travels in the HTTP header <see cref="HeaderLengthHeader"/>. Raw bytes are little-endian and
/// row-major, BOOL is one byte, and each BYTES element is a 4-byte little-endian length followed by its bytes: the
/// same layout as <see cref="Tensor.Data"/>, so binary inputs are slices of the request body and binary outputs are
/// written straight from the response's arrays.
/// </summary>
public static class BinaryTensorCodec
{
    /// <summary>The HTTP header that gives the length of the JSON part of a body.</summary>
    public const string HeaderLengthHeader = "Inference-Header-Content-Length";

    /// <summary>The Content-Type of a response that carries binary outputs.</summary>
    public const string OctetStream = "application/octet-stream";

    /// <summary>The tensor parameter giving the byte length of a tensor's binary data.</summary>
    public const string BinaryDataSize = "binary_data_size";

    /// <summary>The requested-output parameter asking for that output in binary.</summary>
    public const string BinaryData = "binary_data";

    /// <summary>The request parameter asking for every output in binary.</summary>
    public const string BinaryDataOutput = "binary_data_output";

    /// <summary>
    /// Parses the value of <see cref="HeaderLengthHeader"/>: null when the header is absent (the whole body is JSON),
    /// otherwise the JSON part's length. Throws <see cref="InferenceException"/> (400) when the value is not a
    /// number, is negative or is larger than the body.
    /// </summary>
    public static int? ParseHeaderLength(string? value, int bodyLength)
    {
        if (value is null)
        {
            return null;
        }

        if (!long.TryParse(value.AsSpan().Trim(), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var length))
        {
            throw InferenceException.Invalid($"{HeaderLengthHeader} '{value}' is not a number");
        }

        if (length < 0)
        {
            throw InferenceException.Invalid($"{HeaderLengthHeader} {length} is negative");
        }

        if (length > bodyLength)
        {
            throw InferenceException.Invalid($"{HeaderLengthHeader} {length} is larger than the request body of {bodyLength} bytes");
        }

        return (int)length;
    }

    /// <summary>
    /// Takes the next <paramref name="size"/> bytes of the binary section as the data of input <paramref name="name"/>
    /// after checking that they fit its datatype and shape. No copy: the result is a slice of the body.
    /// </summary>
    internal static ReadOnlyMemory<byte> TakeInput(ref BinarySection section, string name, TensorDataType type, long[] shape, long size)
    {
        if (!ShapeMath.TryElementCount(shape, out var count))
        {
            throw InferenceException.Invalid($"input '{name}' has shape {ShapeMath.Format(shape)}, more elements than a tensor may have");
        }

        if (type.IsFixedSize())
        {
            var expected = count * type.ElementSize();
            if (size != expected)
            {
                throw InferenceException.Invalid(
                    $"input '{name}' has {BinaryDataSize} {size} but shape {ShapeMath.Format(shape)} of {type.ToProtocolName()} needs {expected} bytes");
            }
        }

        var remaining = section.Data.Length - section.Offset;
        if (size > remaining)
        {
            throw InferenceException.Invalid(
                $"input '{name}' has {BinaryDataSize} {size} but only {remaining} bytes of binary data remain after the JSON header"
                + (section.HeaderGiven ? "" : $" (the request has no {HeaderLengthHeader} header, so its whole body is JSON)"));
        }

        var data = section.Data.Slice(section.Offset, (int)size);
        section.Offset += (int)size;
        if (type == TensorDataType.Bytes)
        {
            CheckBytesElements(name, shape, count, data.Span);
        }

        return data;
    }

    private static void CheckBytesElements(string name, long[] shape, long count, ReadOnlySpan<byte> data)
    {
        long elements = 0;
        var offset = 0;
        while (offset < data.Length)
        {
            if (data.Length - offset < 4)
            {
                throw InferenceException.Invalid(
                    $"input '{name}': the length prefix of BYTES element {elements} is truncated ({data.Length - offset} of 4 bytes left in its {BinaryDataSize} {data.Length})");
            }

            var length = BinaryPrimitives.ReadUInt32LittleEndian(data[offset..]);
            var left = data.Length - offset - 4;
            if (length > (uint)left)
            {
                throw InferenceException.Invalid(
                    $"input '{name}': BYTES element {elements} declares {length} bytes but only {left} remain in its {BinaryDataSize} {data.Length}");
            }

            offset += 4 + (int)length;
            elements++;
        }

        if (elements != count)
        {
            throw InferenceException.Invalid(
                $"input '{name}' has {elements} BYTES elements in its binary data but shape {ShapeMath.Format(shape)} needs {count}");
        }
    }

    /// <summary>Throws when the inputs' binary data did not use up every byte after the JSON header.</summary>
    internal static void CheckFullyUsed(in BinarySection section)
    {
        if (section.Offset != section.Data.Length)
        {
            throw InferenceException.Invalid(
                $"the request has {section.Data.Length} bytes of binary data after the JSON header but its inputs' {BinaryDataSize} add up to {section.Offset} ({section.Data.Length - section.Offset} bytes left over)");
        }
    }

    /// <summary>The byte length of every binary output, to size the body before it is written.</summary>
    public static long BinaryLength(InferenceResponse response, ReadOnlySpan<bool> binary)
    {
        long total = 0;
        var outputs = response.Outputs;
        for (var i = 0; i < outputs.Length && i < binary.Length; i++)
        {
            if (binary[i])
            {
                total += outputs[i].Data.Length;
            }
        }

        return total;
    }

    /// <summary>
    /// The pieces of a response body in order: the JSON <paramref name="header"/>, then the data of every binary
    /// output in output order (the response's own arrays, not copies).
    /// </summary>
    public static ReadOnlyMemory<byte>[] Segments(ReadOnlyMemory<byte> header, InferenceResponse response, ReadOnlySpan<bool> binary)
    {
        var count = 1;
        foreach (var b in binary)
        {
            count += b ? 1 : 0;
        }

        var segments = new ReadOnlyMemory<byte>[count];
        segments[0] = header;
        var next = 1;
        var outputs = response.Outputs;
        for (var i = 0; i < outputs.Length && i < binary.Length; i++)
        {
            if (binary[i])
            {
                segments[next++] = outputs[i].Data;
            }
        }

        return segments;
    }
}

/// <summary>The bytes after a request's JSON header and how many of them the inputs read so far.</summary>
internal struct BinarySection(ReadOnlyMemory<byte> data, bool headerGiven)
{
    public readonly ReadOnlyMemory<byte> Data = data;

    public readonly bool HeaderGiven = headerGiven;

    public int Offset;
}

/// <summary>
/// Which outputs of a response go binary: every output when the request has <c>binary_data_output: true</c>, and
/// each requested output whose <c>binary_data</c> parameter says so (<c>false</c> overrides the request level).
/// The default (nothing binary) costs nothing.
/// </summary>
public readonly struct BinaryOutputs
{
    private readonly ImmutableArray<RequestedOutput> _requested;
    private readonly bool _all;

    private BinaryOutputs(bool all, ImmutableArray<RequestedOutput> requested, bool any)
    {
        _all = all;
        _requested = requested;
        Any = any;
    }

    /// <summary>True when some output may be written in binary.</summary>
    public bool Any { get; }

    /// <summary>Reads the request's choice; throws <see cref="InferenceException"/> (400) when a flag is not a boolean.</summary>
    public static BinaryOutputs For(InferenceRequest request)
    {
        var all = Flag(request.Parameters, BinaryTensorCodec.BinaryDataOutput, "the request") ?? false;
        var any = all;
        var requested = request.Outputs;
        if (!requested.IsDefaultOrEmpty)
        {
            foreach (var output in requested)
            {
                any |= Flag(output.Parameters, BinaryTensorCodec.BinaryData, $"output '{output.Name}'") ?? false;
            }
        }

        return any ? new BinaryOutputs(all, requested, true) : default;
    }

    private static bool? Flag(ImmutableDictionary<string, InferParameter>? parameters, string key, string owner)
    {
        if (parameters is null || !parameters.TryGetValue(key, out var value))
        {
            return null;
        }

        return value.Kind == InferParameterKind.Bool
            ? value.BoolValue
            : throw InferenceException.Invalid($"parameter '{key}' of {owner} must be a boolean, not {value}");
    }

    /// <summary>True when the output named <paramref name="name"/> goes binary.</summary>
    public bool IsBinary(string name)
    {
        if (!Any)
        {
            return false;
        }

        if (!_requested.IsDefaultOrEmpty)
        {
            foreach (var output in _requested)
            {
                if (output.Name == name && output.Parameters is { } parameters
                    && parameters.TryGetValue(BinaryTensorCodec.BinaryData, out var flag))
                {
                    return flag.BoolValue;
                }
            }
        }

        return _all;
    }

    /// <summary>One flag per output of <paramref name="response"/>, or null when none of them goes binary.</summary>
    public bool[]? Mask(InferenceResponse response)
    {
        if (!Any)
        {
            return null;
        }

        var outputs = response.Outputs;
        var mask = new bool[outputs.Length];
        var anyBinary = false;
        for (var i = 0; i < mask.Length; i++)
        {
            mask[i] = IsBinary(outputs[i].Name);
            anyBinary |= mask[i];
        }

        return anyBinary ? mask : null;
    }
}
