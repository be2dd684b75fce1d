using System.Buffers;
using Google.Protobuf;
using Grpc.Core;
using Orleans.KServe.Gateway.Codecs;
using Orleans.KServe.Gateway.Grpc;
using Orleans.KServe.Grpc;

namespace Orleans.KServe.Gateway.Tests;

public sealed class InferRequestMarshallerTests
{
    private static ModelInferRequest Request(params int[] rawSizes)
    {
        var request = new ModelInferRequest { ModelName = "m", ModelVersion = "2", Id = "call-1" };
        request.Parameters["priority"] = new InferParameter { Int64Param = 3 };
        request.Outputs.Add(new ModelInferRequest.Types.InferRequestedOutputTensor { Name = "out" });
        for (var i = 0; i < rawSizes.Length; i++)
        {
            var input = new ModelInferRequest.Types.InferInputTensor { Name = $"in{i}", Datatype = "UINT8" };
            input.Shape.Add(rawSizes[i]);
            request.Inputs.Add(input);
            var bytes = new byte[rawSizes[i]];
            new Random(i).NextBytes(bytes);
            request.RawInputContents.Add(ByteString.CopyFrom(bytes));
        }

        return request;
    }

    // The payload as the transport hands it over: in 16 KiB segments, like HTTP/2 DATA frames.
    private static ReadOnlySequence<byte> Segmented(byte[] bytes, int segment = 16 * 1024)
    {
        Segment? first = null, last = null;
        for (var offset = 0; offset < bytes.Length; offset += segment)
        {
            var piece = bytes.AsMemory(offset, Math.Min(segment, bytes.Length - offset));
            last = last is null ? first = new Segment(piece, 0) : last.Append(piece);
        }

        return first is null ? ReadOnlySequence<byte>.Empty : new ReadOnlySequence<byte>(first, 0, last!, last!.Memory.Length);
    }

    private sealed class Segment : ReadOnlySequenceSegment<byte>
    {
        public Segment(ReadOnlyMemory<byte> memory, long runningIndex)
        {
            Memory = memory;
            RunningIndex = runningIndex;
        }

        public Segment Append(ReadOnlyMemory<byte> memory)
        {
            var next = new Segment(memory, RunningIndex + Memory.Length);
            Next = next;
            return next;
        }
    }

    [Theory]
    [InlineData(new[] { 602112 })]
    [InlineData(new[] { 40000, 3, 70000 })]
    [InlineData(new[] { 100 })]
    [InlineData(new int[0])]
    public void Parses_exactly_what_the_generated_parser_parses(int[] rawSizes)
    {
        var expected = Request(rawSizes);
        var parsed = InferRequestMarshaller.Parse(Segmented(expected.ToByteArray()));
        Assert.Equal(expected, parsed);
    }

    [Fact]
    public void Raw_entries_interleaved_with_other_fields_keep_their_order_and_unknown_fields_survive()
    {
        var a = new byte[30000];
        var b = new byte[20000];
        a.AsSpan().Fill(1);
        b.AsSpan().Fill(2);
        using var stream = new MemoryStream();
        var output = new CodedOutputStream(stream);
        output.WriteTag(7, WireFormat.WireType.LengthDelimited);
        output.WriteBytes(ByteString.CopyFrom(a));
        output.WriteTag(1, WireFormat.WireType.LengthDelimited);
        output.WriteString("m");
        output.WriteTag(99, WireFormat.WireType.Varint);
        output.WriteInt64(12345);
        output.WriteTag(7, WireFormat.WireType.LengthDelimited);
        output.WriteBytes(ByteString.CopyFrom(b));
        output.WriteTag(99, WireFormat.WireType.Fixed32);
        output.WriteFixed32(7);
        output.Flush();

        var bytes = stream.ToArray();
        var expected = ModelInferRequest.Parser.ParseFrom(bytes);
        var parsed = InferRequestMarshaller.Parse(Segmented(bytes, 1000));
        Assert.Equal(expected, parsed);
        Assert.Equal("m", parsed.ModelName);
        Assert.Equal(new byte[] { 1, 2 }, parsed.RawInputContents.Select(r => r[0]).ToArray());
        Assert.Equal(expected.ToByteArray(), parsed.ToByteArray());
    }

    [Fact]
    public void Large_raw_contents_live_in_pooled_arrays_that_the_call_hands_back()
    {
        var parsed = InferRequestMarshaller.Parse(Segmented(Request(602112).ToByteArray()));
        var buffers = new PooledBuffers();
        parsed.AdoptPooledInto(buffers);

        // The array behind the tensor is a pool array (rounded up to a power of two), not one of the exact size.
        Assert.True(System.Runtime.InteropServices.MemoryMarshal.TryGetArray(parsed.RawInputContents[0].Memory, out var segment));
        Assert.Equal(1 << 20, segment.Array!.Length);
        buffers.Dispose();
    }

    [Theory]
    [InlineData(100)]
    [InlineData(40000)]
    [InlineData(72000)]
    public void A_request_cut_inside_a_field_is_invalid_argument(int cut)
    {
        var bytes = Request(70000, 5000).ToByteArray();
        var error = Assert.Throws<RpcException>(() => InferRequestMarshaller.Parse(Segmented(bytes.AsSpan(0, cut).ToArray())));
        Assert.Equal(StatusCode.InvalidArgument, error.StatusCode);
        Assert.Contains("not a valid ModelInferRequest", error.Status.Detail);
    }

    [Fact]
    public void A_length_beyond_the_payload_or_an_unknown_wire_type_is_invalid_argument()
    {
        var body = new byte[40000];
        var tooLong = new byte[] { 7 << 3 | 2, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F }.Concat(body).ToArray();
        Assert.Equal(StatusCode.InvalidArgument, Assert.Throws<RpcException>(() => InferRequestMarshaller.Parse(Segmented(tooLong))).StatusCode);

        var wireType7 = Request(40000).ToByteArray().Concat(new byte[] { 1 << 3 | 7, 0 }).ToArray();
        Assert.Equal(StatusCode.InvalidArgument, Assert.Throws<RpcException>(() => InferRequestMarshaller.Parse(Segmented(wireType7))).StatusCode);
    }
}
