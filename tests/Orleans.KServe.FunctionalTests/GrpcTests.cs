using System.Runtime.InteropServices;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Net.Client;
using Orleans.KServe.Grpc;

namespace Orleans.KServe.FunctionalTests;

[Collection(ServerCollection.Name)]
public sealed class GrpcTests(ServerFixture server) : IDisposable
{
    private readonly GrpcChannel _channel = GrpcChannel.ForAddress(server.GrpcAddress);

    private GRPCInferenceService.GRPCInferenceServiceClient Client => new(_channel);

    public void Dispose() => _channel.Dispose();

    private static ModelInferRequest DoubleRequest(params float[] values)
    {
        var request = new ModelInferRequest { ModelName = "double", Id = "grpc-1" };
        var input = new ModelInferRequest.Types.InferInputTensor { Name = "input", Datatype = "FP32", Contents = new InferTensorContents() };
        input.Shape.Add([values.Length / 2, 2]);
        input.Contents.Fp32Contents.Add(values);
        request.Inputs.Add(input);
        return request;
    }

    private static ModelInferRequest RawDoubleRequest(params float[] values)
    {
        var request = DoubleRequest(values);
        request.Inputs[0].Contents = null;
        request.RawInputContents.Add(ByteString.CopyFrom(MemoryMarshal.AsBytes(values.AsSpan())));
        return request;
    }

    private async Task<RpcException> FailsAsync(Func<Task> call, StatusCode expected)
    {
        var e = await Assert.ThrowsAsync<RpcException>(call);
        Assert.Equal(expected, e.StatusCode);
        return e;
    }

    [Fact]
    public async Task Health_and_server_metadata()
    {
        Assert.True((await Client.ServerLiveAsync(new ServerLiveRequest())).Live);
        Assert.True((await Client.ServerReadyAsync(new ServerReadyRequest())).Ready);
        var metadata = await Client.ServerMetadataAsync(new ServerMetadataRequest());
        Assert.Equal("orleans-kserve", metadata.Name);
        Assert.Contains("model_repository", metadata.Extensions);
        Assert.True((await Client.ModelReadyAsync(new ModelReadyRequest { Name = "double" })).Ready);
        Assert.False((await Client.ModelReadyAsync(new ModelReadyRequest { Name = "zipmap" })).Ready);
        await FailsAsync(() => Client.ModelReadyAsync(new ModelReadyRequest { Name = "nope" }).ResponseAsync, StatusCode.NotFound);
    }

    [Fact]
    public async Task Model_metadata_matches_rest()
    {
        var metadata = await Client.ModelMetadataAsync(new ModelMetadataRequest { Name = "mlp" });
        Assert.Equal("onnxruntime_onnx", metadata.Platform);
        Assert.Equal(["1"], metadata.Versions);
        Assert.Equal("input", metadata.Inputs[0].Name);
        Assert.Equal("FP32", metadata.Inputs[0].Datatype);
        Assert.Equal([-1L, 64L], metadata.Inputs[0].Shape);
        Assert.Equal(["probabilities", "label"], metadata.Outputs.Select(o => o.Name));
        await FailsAsync(() => Client.ModelMetadataAsync(new ModelMetadataRequest { Name = "mlp", Version = "9" }).ResponseAsync, StatusCode.NotFound);
    }

    [Fact]
    public async Task Typed_contents_answer_typed_and_raw_contents_answer_raw()
    {
        var typed = await Client.ModelInferAsync(DoubleRequest(1, 2, 3, 4));
        Assert.Equal("grpc-1", typed.Id);
        Assert.Equal("double", typed.ModelName);
        Assert.Empty(typed.RawOutputContents);
        Assert.Equal([2f, 4f, 6f, 8f], typed.Outputs[0].Contents.Fp32Contents);
        Assert.Equal([2L, 2L], typed.Outputs[0].Shape);

        var raw = await Client.ModelInferAsync(RawDoubleRequest(1, 2, 3, 4));
        Assert.Null(raw.Outputs[0].Contents);
        Assert.Equal([2f, 4f, 6f, 8f], MemoryMarshal.Cast<byte, float>(raw.RawOutputContents[0].Span).ToArray());
    }

    [Fact]
    public async Task Protocol_mistakes_are_invalid_argument_with_a_message()
    {
        var mixed = RawDoubleRequest(1, 2);
        mixed.Inputs[0].Contents = new InferTensorContents();
        mixed.Inputs[0].Contents.Fp32Contents.Add([1f, 2f]);
        Assert.Contains("use one or the other", (await FailsAsync(() => Client.ModelInferAsync(mixed).ResponseAsync, StatusCode.InvalidArgument)).Status.Detail);

        var extraRaw = RawDoubleRequest(1, 2);
        extraRaw.RawInputContents.Add(ByteString.CopyFrom(new byte[8]));
        Assert.Contains("one per input", (await FailsAsync(() => Client.ModelInferAsync(extraRaw).ResponseAsync, StatusCode.InvalidArgument)).Status.Detail);

        var shortRaw = RawDoubleRequest(1, 2);
        shortRaw.RawInputContents[0] = ByteString.CopyFrom(new byte[7]);
        Assert.Contains("7 raw bytes", (await FailsAsync(() => Client.ModelInferAsync(shortRaw).ResponseAsync, StatusCode.InvalidArgument)).Status.Detail);

        var fewer = DoubleRequest(1, 2);
        fewer.Inputs[0].Shape[0] = 2;
        Assert.Contains("needs 4", (await FailsAsync(() => Client.ModelInferAsync(fewer).ResponseAsync, StatusCode.InvalidArgument)).Status.Detail);

        var wrongType = DoubleRequest(1, 2);
        wrongType.Inputs[0].Datatype = "FP16";
        Assert.Contains("raw_input_contents", (await FailsAsync(() => Client.ModelInferAsync(wrongType).ResponseAsync, StatusCode.InvalidArgument)).Status.Detail);

        var unknown = DoubleRequest(1, 2);
        unknown.ModelName = "missing";
        await FailsAsync(() => Client.ModelInferAsync(unknown).ResponseAsync, StatusCode.NotFound);

        var failed = DoubleRequest(1, 2);
        failed.ModelName = "zipmap";
        Assert.Contains("not a tensor", (await FailsAsync(() => Client.ModelInferAsync(failed).ResponseAsync, StatusCode.Unavailable)).Status.Detail);
    }

    [Fact]
    public async Task Truncated_bytes_length_prefixes_are_invalid_argument()
    {
        var request = new ModelInferRequest { ModelName = "identity-bytes" };
        var input = new ModelInferRequest.Types.InferInputTensor { Name = "input", Datatype = "BYTES" };
        input.Shape.Add([1, 1]);
        request.Inputs.Add(input);
        request.RawInputContents.Add(ByteString.CopyFrom([5, 0, 0, 0, (byte)'a', (byte)'b']));
        Assert.Contains("declares 5 bytes", (await FailsAsync(() => Client.ModelInferAsync(request).ResponseAsync, StatusCode.InvalidArgument)).Status.Detail);
    }

    [Fact]
    public async Task Stream_infer_answers_each_request_in_order_and_reports_errors_without_closing()
    {
        using var call = Client.ModelStreamInfer();
        await call.RequestStream.WriteAsync(DoubleRequest(1, 2));
        var bad = DoubleRequest(1, 2);
        bad.ModelName = "missing";
        await call.RequestStream.WriteAsync(bad);
        await call.RequestStream.WriteAsync(RawDoubleRequest(5, 6));
        await call.RequestStream.CompleteAsync();

        var answers = new List<ModelStreamInferResponse>();
        await foreach (var answer in call.ResponseStream.ReadAllAsync())
        {
            answers.Add(answer);
        }

        Assert.Equal(3, answers.Count);
        Assert.Equal([2f, 4f], answers[0].InferResponse.Outputs[0].Contents.Fp32Contents);
        Assert.Contains("model 'missing' not found", answers[1].ErrorMessage);
        Assert.Equal([10f, 12f], MemoryMarshal.Cast<byte, float>(answers[2].InferResponse.RawOutputContents[0].Span).ToArray());
    }

    [Fact]
    public async Task Model_config_reports_the_real_settings()
    {
        var config = (await Client.ModelConfigAsync(new ModelConfigRequest { Name = "mlp" })).Config;
        Assert.Equal("mlp", config.Name);
        Assert.Equal("onnxruntime_onnx", config.Platform);
        Assert.Equal("onnxruntime", config.Backend);
        Assert.Equal(DataType.TypeFp32, config.Input[0].DataType);
        Assert.Equal([-1L, 64L], config.Input[0].Dims);
        Assert.Equal(DataType.TypeInt64, config.Output.Single(o => o.Name == "label").DataType);
        Assert.Equal(Environment.ProcessorCount, config.InstanceGroup[0].Count);
        Assert.Equal(ModelInstanceGroup.Types.Kind.Cpu, config.InstanceGroup[0].Kind);
    }

    [Fact]
    public async Task Statistics_count_inferences_and_executions()
    {
        var before = (await Client.ModelStatisticsAsync(new ModelStatisticsRequest { Name = "double" })).ModelStats.Single();
        await Client.ModelInferAsync(DoubleRequest(1, 2, 3, 4, 5, 6));
        var after = (await Client.ModelStatisticsAsync(new ModelStatisticsRequest { Name = "double" })).ModelStats.Single();
        Assert.Equal(before.InferenceCount + 3, after.InferenceCount);
        Assert.Equal(before.ExecutionCount + 1, after.ExecutionCount);
        Assert.Equal(before.InferenceStats.Success.Count + 1, after.InferenceStats.Success.Count);
        Assert.True(after.InferenceStats.ComputeInfer.Ns > before.InferenceStats.ComputeInfer.Ns);
        Assert.True(after.LastInference > 0);
        Assert.Contains(after.BatchStats, b => b.BatchSize == 3);

        var all = await Client.ModelStatisticsAsync(new ModelStatisticsRequest());
        Assert.Contains(all.ModelStats, s => s.Name == "mlp");
    }

    [Fact]
    public async Task Repository_index_lists_states_and_reasons()
    {
        var index = await Client.RepositoryIndexAsync(new RepositoryIndexRequest());
        Assert.Equal("READY", index.Models.Single(m => m.Name == "double").State);
        Assert.Contains("not a tensor", index.Models.Single(m => m.Name == "zipmap").Reason);
        var ready = await Client.RepositoryIndexAsync(new RepositoryIndexRequest { Ready = true });
        Assert.DoesNotContain(ready.Models, m => m.Name == "zipmap");
    }

    [Fact]
    public async Task Large_raw_inputs_round_trip_through_model_infer_and_the_stream()
    {
        // 512 KiB of FP32 in: raw contents this large are read into pooled arrays rather than by the generated parser.
        var values = Enumerable.Range(0, 128 * 1024).Select(i => (float)(i % 1000) - 500).ToArray();
        var request = RawDoubleRequest(values);
        var response = await Client.ModelInferAsync(request);
        var doubled = MemoryMarshal.Cast<byte, float>(response.RawOutputContents[0].Span).ToArray();
        Assert.Equal(values.Select(v => v * 2).ToArray(), doubled);

        using var stream = Client.ModelStreamInfer();
        for (var call = 0; call < 3; call++)
        {
            var shifted = values.Select(v => v + call).ToArray();
            await stream.RequestStream.WriteAsync(RawDoubleRequest(shifted));
            Assert.True(await stream.ResponseStream.MoveNext(CancellationToken.None));
            var answer = stream.ResponseStream.Current;
            Assert.Equal(string.Empty, answer.ErrorMessage);
            Assert.Equal(shifted.Select(v => v * 2).ToArray(), MemoryMarshal.Cast<byte, float>(answer.InferResponse.RawOutputContents[0].Span).ToArray());
        }

        await stream.RequestStream.CompleteAsync();
    }

    [Fact]
    public async Task A_model_infer_message_that_is_not_valid_protobuf_is_invalid_argument()
    {
        var bytes = RawDoubleRequest(new float[16 * 1024]).ToByteArray();
        var method = new Method<byte[], byte[]>(
            MethodType.Unary, "inference.GRPCInferenceService", "ModelInfer",
            Marshallers.Create(static b => b, static b => b), Marshallers.Create(static b => b, static b => b));
        var invoker = _channel.CreateCallInvoker();
        foreach (var broken in new[] { bytes[..^10], bytes.Concat(new byte[] { 0x0F, 0x01 }).ToArray() })
        {
            var e = await FailsAsync(() => invoker.AsyncUnaryCall(method, null, new CallOptions(), broken).ResponseAsync, StatusCode.InvalidArgument);
            Assert.Contains("not a valid ModelInferRequest", e.Status.Detail);
        }
    }
}
