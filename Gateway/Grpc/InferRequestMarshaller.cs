using System.Buffers;
using Google.Protobuf;
using Grpc.Core;
using Orleans.KServe.Grpc;

namespace Orleans.KServe.Gateway.Grpc;

/// <summary>
/// Reads <c>ModelInferRequest</c> with its <c>raw_input_contents</c> (field 7) copied once from the received
/// frames into pooled arrays, instead of into a fresh array per tensor as the generated parser does (a 588 KiB
/// image made a large-object-heap array on every call: zeroed, then copied into, then left to the collector).
/// Every other field goes through the generated parser unchanged.
/// </summary>
/// <remarks>
/// The top level of the message is walked field by field; field 7 entries are copied out, the other fields' bytes
/// are gathered and parsed by <see cref="ModelInferRequest.Parser"/> (protobuf merges concatenated encodings, so
/// this equals parsing the whole message), and the raw entries are appended in their order. Messages with little
/// raw data (under <see cref="PooledRawThreshold"/> bytes) or none, or with a wire type the walk does not expect,
/// go to the generated parser as they are. The pooled arrays belong to the message until the handler adopts them
/// (<see cref="ModelInferRequest.AdoptPooledInto"/>); if it never does, the collector takes them.
/// </remarks>
public static class InferRequestMarshaller
{
    /// <summary>Total raw bytes from which raw contents are pooled.</summary>
    public const int PooledRawThreshold = 16 * 1024;

    private const int RawInputContentsField = 7;

    /// <summary>The marshaller for <c>ModelInferRequest</c> (both directions; serialising is the generated one's).</summary>
    public static Marshaller<ModelInferRequest> Instance { get; } =
        Marshallers.Create<ModelInferRequest>(InferenceGrpcServiceBase.Serialize, Deserialize);

    /// <summary>Parses one request from its payload.</summary>
    public static ModelInferRequest Deserialize(DeserializationContext context) => Parse(context.PayloadAsReadOnlySequence());

    /// <summary>Parses one request; malformed bytes are INVALID_ARGUMENT.</summary>
    public static ModelInferRequest Parse(ReadOnlySequence<byte> payload)
    {
        var layout = payload.Length >= PooledRawThreshold ? Walk(payload) : null;
        if (layout is null || layout.RawBytes < PooledRawThreshold)
        {
            return ParseWhole(payload);
        }

        var rest = ArrayPool<byte>.Shared.Rent(Math.Max(1, (int)layout.KeptBytes));
        ModelInferRequest message;
        try
        {
            var offset = 0;
            foreach (var (start, length) in layout.Kept)
            {
                payload.Slice(start, length).CopyTo(rest.AsSpan(offset));
                offset += (int)length;
            }

            message = ParseWhole(new ReadOnlySequence<byte>(rest, 0, offset));
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(rest);
        }

        foreach (var (start, length) in layout.Raw)
        {
            var array = ArrayPool<byte>.Shared.Rent(Math.Max(1, (int)length));
            payload.Slice(start, length).CopyTo(array);
            message.RawInputContents.Add(UnsafeByteOperations.UnsafeWrap(array.AsMemory(0, (int)length)));
            message.AddPooled(array);
        }

        return message;
    }

    private static ModelInferRequest ParseWhole(ReadOnlySequence<byte> payload)
    {
        try
        {
            return ModelInferRequest.Parser.ParseFrom(payload);
        }
        catch (InvalidProtocolBufferException e)
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, $"the request is not a valid ModelInferRequest: {e.Message}"));
        }
    }

    private sealed class Layout
    {
        public List<(long Start, long Length)> Kept { get; } = [];

        public List<(long Start, long Length)> Raw { get; } = [];

        public long KeptBytes { get; set; }

        public long RawBytes { get; set; }
    }

    // The field layout of the top level, or null where the generated parser should see the message whole (a group,
    // an unknown wire type, a truncated field: it reports those in its own words).
    private static Layout? Walk(ReadOnlySequence<byte> payload)
    {
        var reader = new SequenceReader<byte>(payload);
        var layout = new Layout();
        while (!reader.End)
        {
            var start = reader.Consumed;
            if (!TryReadVarint(ref reader, out var tag))
            {
                return null;
            }

            switch ((int)(tag & 7))
            {
                case 0:
                    if (!TryReadVarint(ref reader, out _))
                    {
                        return null;
                    }

                    break;
                case 1:
                    if (reader.Remaining < 8)
                    {
                        return null;
                    }

                    reader.Advance(8);
                    break;
                case 5:
                    if (reader.Remaining < 4)
                    {
                        return null;
                    }

                    reader.Advance(4);
                    break;
                case 2:
                    if (!TryReadVarint(ref reader, out var length) || length > (ulong)reader.Remaining)
                    {
                        return null;
                    }

                    if (tag >> 3 == RawInputContentsField)
                    {
                        if (length > int.MaxValue)
                        {
                            return null;
                        }

                        layout.Raw.Add((reader.Consumed, (long)length));
                        layout.RawBytes += (long)length;
                        reader.Advance((long)length);
                        continue;
                    }

                    reader.Advance((long)length);
                    break;
                default:
                    return null;
            }

            // Neighbouring kept fields make one range.
            var size = reader.Consumed - start;
            if (layout.Kept.Count > 0 && layout.Kept[^1].Start + layout.Kept[^1].Length == start)
            {
                layout.Kept[^1] = (layout.Kept[^1].Start, layout.Kept[^1].Length + size);
            }
            else
            {
                layout.Kept.Add((start, size));
            }

            layout.KeptBytes += size;
        }

        return layout;
    }

    private static bool TryReadVarint(ref SequenceReader<byte> reader, out ulong value)
    {
        value = 0;
        for (var shift = 0; shift < 64; shift += 7)
        {
            if (!reader.TryRead(out var b))
            {
                return false;
            }

            value |= (ulong)(b & 0x7F) << shift;
            if (b < 0x80)
            {
                return true;
            }
        }

        return false;
    }
}
