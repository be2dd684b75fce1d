using System.Numerics;
using System.Runtime.InteropServices;
using Google.Protobuf;
using Google.Protobuf.Collections;
using Grpc.Core;
using Orleans.KServe.Grpc;

namespace Orleans.KServe.Bench.GrpcFloor;

/// <summary>
/// <c>inference.GRPCInferenceService</c> with the `double` model only: FP32 input <c>input</c> of shape
/// [batch, 2], output <c>output</c> = 2 × input. A request with typed contents (<c>fp32_contents</c>) is answered
/// with typed contents, one with <c>raw_input_contents</c> with <c>raw_output_contents</c>. Bad requests get
/// INVALID_ARGUMENT, another model NOT_FOUND; every rpc not overridden here answers UNIMPLEMENTED.
/// </summary>
internal sealed class FloorInferenceService : GRPCInferenceService.GRPCInferenceServiceBase
{
    private const string ModelName = "double";
    private const string ModelVersion = "1";
    private const string InputName = "input";
    private const string OutputName = "output";
    private const string Fp32 = "FP32";
    private const int Width = 2;

    public override Task<ServerLiveResponse> ServerLive(ServerLiveRequest request, ServerCallContext context) =>
        Task.FromResult(new ServerLiveResponse { Live = true });

    public override Task<ServerReadyResponse> ServerReady(ServerReadyRequest request, ServerCallContext context) =>
        Task.FromResult(new ServerReadyResponse { Ready = true });

    public override Task<ModelReadyResponse> ModelReady(ModelReadyRequest request, ServerCallContext context)
    {
        CheckModel(request.Name, request.Version);
        return Task.FromResult(new ModelReadyResponse { Ready = true });
    }

    public override Task<ModelInferResponse> ModelInfer(ModelInferRequest request, ServerCallContext context)
    {
        CheckModel(request.ModelName, request.ModelVersion);
        if (request.Inputs.Count != 1)
        {
            throw Invalid($"model '{ModelName}' expects exactly one input tensor '{InputName}', got {request.Inputs.Count}");
        }

        var input = request.Inputs[0];
        if (input.Name != InputName)
        {
            throw Invalid($"unexpected input '{input.Name}', model '{ModelName}' expects '{InputName}'");
        }
        if (input.Datatype != Fp32)
        {
            throw Invalid($"input '{InputName}' has datatype '{input.Datatype}', expected '{Fp32}'");
        }
        if (input.Shape.Count != 2 || input.Shape[0] < 0 || input.Shape[1] != Width)
        {
            throw Invalid($"input '{InputName}' must have shape [batch, {Width}]");
        }

        var batch = input.Shape[0];
        if (batch > int.MaxValue / (Width * sizeof(float)))
        {
            throw Invalid($"input '{InputName}' has batch {batch}, more than a message can carry");
        }

        var elements = (int)batch * Width;
        CheckRequestedOutputs(request.Outputs);

        var output = new ModelInferResponse.Types.InferOutputTensor { Name = OutputName, Datatype = Fp32 };
        output.Shape.Add(batch);
        output.Shape.Add(Width);
        var response = new ModelInferResponse { ModelName = ModelName, ModelVersion = ModelVersion, Id = request.Id };
        response.Outputs.Add(output);

        if (request.RawInputContents.Count > 0)
        {
            if (request.RawInputContents.Count != 1)
            {
                throw Invalid($"raw_input_contents has {request.RawInputContents.Count} entries for 1 input");
            }
            if (input.Contents is not null)
            {
                throw Invalid($"input '{InputName}' has both contents and raw_input_contents");
            }

            // Raw contents are little-endian on the wire; the floor reinterprets them in place.
            if (!BitConverter.IsLittleEndian)
            {
                throw new RpcException(new Status(StatusCode.Unimplemented, "the gRPC floor reads raw contents in place and needs a little-endian machine"));
            }

            var raw = request.RawInputContents[0].Span;
            if (raw.Length != elements * sizeof(float))
            {
                throw Invalid($"input '{InputName}' has {raw.Length} bytes of raw contents, shape [{batch}, {Width}] needs {elements * sizeof(float)}");
            }

            var doubled = new byte[raw.Length];
            Double(MemoryMarshal.Cast<byte, float>(raw), MemoryMarshal.Cast<byte, float>(doubled.AsSpan()));
            response.RawOutputContents.Add(UnsafeByteOperations.UnsafeWrap(doubled));
        }
        else
        {
            var contents = input.Contents ?? throw Invalid($"input '{InputName}' has no contents and there are no raw_input_contents");
            var values = contents.Fp32Contents;
            if (values.Count != elements)
            {
                throw Invalid($"input '{InputName}' has {values.Count} fp32_contents, shape [{batch}, {Width}] needs {elements}");
            }
            if (OtherContents(contents) != 0)
            {
                throw Invalid($"input '{InputName}' is {Fp32} but carries contents of another datatype");
            }

            var doubled = new float[elements];
            for (var i = 0; i < doubled.Length; i++)
            {
                doubled[i] = values[i] * 2f;
            }

            output.Contents = new InferTensorContents();
            output.Contents.Fp32Contents.AddRange(doubled);
        }

        return Task.FromResult(response);
    }

    private static void CheckModel(string name, string version)
    {
        if (name != ModelName)
        {
            throw new RpcException(new Status(StatusCode.NotFound, $"unknown model '{name}'"));
        }
        if (version.Length != 0 && version != ModelVersion)
        {
            throw new RpcException(new Status(StatusCode.NotFound, $"model '{name}' has no version '{version}'"));
        }
    }

    private static void CheckRequestedOutputs(RepeatedField<ModelInferRequest.Types.InferRequestedOutputTensor> outputs)
    {
        foreach (var requested in outputs)
        {
            if (requested.Name != OutputName)
            {
                throw Invalid($"unknown output '{requested.Name}', model '{ModelName}' has '{OutputName}'");
            }
        }
        if (outputs.Count > 1)
        {
            throw Invalid($"output '{OutputName}' requested {outputs.Count} times");
        }
    }

    private static int OtherContents(InferTensorContents contents) =>
        contents.BoolContents.Count + contents.IntContents.Count + contents.Int64Contents.Count + contents.UintContents.Count +
        contents.Uint64Contents.Count + contents.Fp64Contents.Count + contents.BytesContents.Count;

    private static void Double(ReadOnlySpan<float> source, Span<float> destination)
    {
        var i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            for (; i <= source.Length - Vector<float>.Count; i += Vector<float>.Count)
            {
                (new Vector<float>(source[i..]) * 2f).CopyTo(destination[i..]);
            }
        }
        for (; i < source.Length; i++)
        {
            destination[i] = source[i] * 2f;
        }
    }

    private static RpcException Invalid(string message) => new(new Status(StatusCode.InvalidArgument, message));
}
