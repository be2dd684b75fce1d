using System.Buffers.Binary;
using System.Text;
using System.Text.Json.Nodes;
using Google.Protobuf;
using Grpc.Net.Client;
using Orleans.KServe.Grpc;

namespace Orleans.KServe.FunctionalTests;

/// <summary>Every datatype end to end through a real ONNX identity model, over REST JSON, gRPC typed contents and gRPC raw contents.</summary>
[Collection(ServerCollection.Name)]
public sealed class DatatypeTests(ServerFixture server) : IDisposable
{
    private readonly GrpcChannel _channel = GrpcChannel.ForAddress(server.GrpcAddress);

    public void Dispose() => _channel.Dispose();

    /// <summary>Four values per datatype, exactly representable in it, as JSON.</summary>
    public static TheoryData<string, string> Values => new()
    {
        { "BOOL", "[true,false,true,true]" },
        { "UINT8", "[0,1,200,255]" },
        { "UINT16", "[0,1,40000,65535]" },
        { "UINT32", "[0,1,4000000000,4294967295]" },
        { "UINT64", "[0,1,18000000000000000000,18446744073709551615]" },
        { "INT8", "[-128,-1,0,127]" },
        { "INT16", "[-32768,-1,0,32767]" },
        { "INT32", "[-2147483648,-1,0,2147483647]" },
        { "INT64", "[-9223372036854775808,-1,0,9223372036854775807]" },
        { "FP16", "[0.5,-2,1024,0.25]" },
        { "BF16", "[0.5,-2,1024,0.25]" },
        { "FP32", "[0.5,-2.25,1e30,3.1415927]" },
        { "FP64", "[0.5,-2.25,1e300,3.141592653589793]" },
        { "BYTES", "[\"hello\",\"\",\"w\u00f6rld\",\"a\\\"b\"]" },
    };

    [Theory]
    [MemberData(nameof(Values))]
    public async Task Rest_json_round_trips_every_datatype(string datatype, string data)
    {
        var (status, body) = await server.PostJsonAsync($"/v2/models/identity-{datatype.ToLowerInvariant()}/infer",
            $$"""{"inputs":[{"name":"input","shape":[2,2],"datatype":"{{datatype}}","data":{{data}}}]}""");
        Assert.True(status == 200, body?.ToJsonString());
        var output = body!["outputs"]![0]!;
        Assert.Equal(datatype, output["datatype"]!.GetValue<string>());
        Assert.Equal("[2,2]", output["shape"]!.ToJsonString());
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse(data), output["data"]), $"{data} came back as {output["data"]!.ToJsonString()}");
    }

    [Theory]
    [MemberData(nameof(Values))]
    public async Task Grpc_raw_contents_round_trip_every_datatype(string datatype, string data)
    {
        var raw = Raw(datatype, JsonNode.Parse(data)!.AsArray());
        var request = Request(datatype);
        request.RawInputContents.Add(ByteString.CopyFrom(raw));
        var response = await new GRPCInferenceService.GRPCInferenceServiceClient(_channel).ModelInferAsync(request);
        Assert.Equal(datatype, response.Outputs[0].Datatype);
        Assert.Equal(raw, response.RawOutputContents[0].ToByteArray());
    }

    [Theory]
    [MemberData(nameof(Values))]
    public async Task Grpc_typed_contents_round_trip_every_datatype_that_has_them(string datatype, string data)
    {
        var values = JsonNode.Parse(data)!.AsArray();
        var request = Request(datatype);
        var contents = request.Inputs[0].Contents = new InferTensorContents();
        var client = new GRPCInferenceService.GRPCInferenceServiceClient(_channel);
        switch (datatype)
        {
            case "FP16" or "BF16":
                // No typed list exists for them: the protocol says raw, and the server says so.
                var e = await Assert.ThrowsAsync<global::Grpc.Core.RpcException>(() => client.ModelInferAsync(request).ResponseAsync);
                Assert.Equal(global::Grpc.Core.StatusCode.InvalidArgument, e.StatusCode);
                return;
            case "BOOL": contents.BoolContents.Add(values.Select(v => v!.GetValue<bool>())); break;
            case "UINT8" or "UINT16" or "UINT32": contents.UintContents.Add(values.Select(v => v!.GetValue<uint>())); break;
            case "UINT64": contents.Uint64Contents.Add(values.Select(v => v!.GetValue<ulong>())); break;
            case "INT8" or "INT16" or "INT32": contents.IntContents.Add(values.Select(v => v!.GetValue<int>())); break;
            case "INT64": contents.Int64Contents.Add(values.Select(v => v!.GetValue<long>())); break;
            case "FP32": contents.Fp32Contents.Add(values.Select(v => v!.GetValue<float>())); break;
            case "FP64": contents.Fp64Contents.Add(values.Select(v => v!.GetValue<double>())); break;
            case "BYTES": contents.BytesContents.Add(values.Select(v => ByteString.CopyFromUtf8(v!.GetValue<string>()))); break;
        }

        var response = await client.ModelInferAsync(request);
        Assert.Empty(response.RawOutputContents);
        Assert.Equal(contents, response.Outputs[0].Contents);
    }

    private static ModelInferRequest Request(string datatype)
    {
        var request = new ModelInferRequest { ModelName = $"identity-{datatype.ToLowerInvariant()}" };
        var input = new ModelInferRequest.Types.InferInputTensor { Name = "input", Datatype = datatype };
        input.Shape.Add([2, 2]);
        request.Inputs.Add(input);
        return request;
    }

    /// <summary>The protocol's raw layout of the values: little-endian, BOOL one byte, BYTES length-prefixed.</summary>
    private static byte[] Raw(string datatype, JsonArray values)
    {
        var bytes = new List<byte>();
        foreach (var v in values)
        {
            var buffer = new byte[8];
            switch (datatype)
            {
                case "BOOL": bytes.Add(v!.GetValue<bool>() ? (byte)1 : (byte)0); continue;
                case "UINT8": bytes.Add(v!.GetValue<byte>()); continue;
                case "INT8": bytes.Add((byte)v!.GetValue<sbyte>()); continue;
                case "UINT16": BinaryPrimitives.WriteUInt16LittleEndian(buffer, v!.GetValue<ushort>()); bytes.AddRange(buffer[..2]); continue;
                case "INT16": BinaryPrimitives.WriteInt16LittleEndian(buffer, v!.GetValue<short>()); bytes.AddRange(buffer[..2]); continue;
                case "UINT32": BinaryPrimitives.WriteUInt32LittleEndian(buffer, v!.GetValue<uint>()); bytes.AddRange(buffer[..4]); continue;
                case "INT32": BinaryPrimitives.WriteInt32LittleEndian(buffer, v!.GetValue<int>()); bytes.AddRange(buffer[..4]); continue;
                case "UINT64": BinaryPrimitives.WriteUInt64LittleEndian(buffer, v!.GetValue<ulong>()); bytes.AddRange(buffer); continue;
                case "INT64": BinaryPrimitives.WriteInt64LittleEndian(buffer, v!.GetValue<long>()); bytes.AddRange(buffer); continue;
                case "FP16": BinaryPrimitives.WriteHalfLittleEndian(buffer, (Half)v!.GetValue<double>()); bytes.AddRange(buffer[..2]); continue;
                case "BF16": BinaryPrimitives.WriteUInt16LittleEndian(buffer, (ushort)(BitConverter.SingleToUInt32Bits(v!.GetValue<float>()) >> 16)); bytes.AddRange(buffer[..2]); continue;
                case "FP32": BinaryPrimitives.WriteSingleLittleEndian(buffer, v!.GetValue<float>()); bytes.AddRange(buffer[..4]); continue;
                case "FP64": BinaryPrimitives.WriteDoubleLittleEndian(buffer, v!.GetValue<double>()); bytes.AddRange(buffer); continue;
                case "BYTES":
                    var utf8 = Encoding.UTF8.GetBytes(v!.GetValue<string>());
                    BinaryPrimitives.WriteUInt32LittleEndian(buffer, (uint)utf8.Length);
                    bytes.AddRange(buffer[..4]);
                    bytes.AddRange(utf8);
                    continue;
            }
        }

        return bytes.ToArray();
    }
}
