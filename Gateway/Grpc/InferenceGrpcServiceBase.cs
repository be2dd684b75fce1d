using Google.Protobuf;
using Grpc.Core;
using Orleans.KServe.Grpc;

namespace Orleans.KServe.Gateway.Grpc;

/// <summary>
/// The rpcs of <c>inference.GRPCInferenceService</c> with their method table: the generated table's names, kinds
/// and message types, except that <c>ModelInferRequest</c> (ModelInfer and ModelStreamInfer) is read by
/// <see cref="InferRequestMarshaller"/>. ASP.NET Core gRPC finds <see cref="BindService"/> through the attribute and
/// binds each entry to the override of the same name.
/// </summary>
[BindServiceMethod(typeof(InferenceGrpcServiceBase), nameof(BindService))]
public abstract class InferenceGrpcServiceBase
{
    private const string ServiceName = "inference.GRPCInferenceService";

    /// <summary>ServerLive.</summary>
    public abstract Task<ServerLiveResponse> ServerLive(ServerLiveRequest request, ServerCallContext context);

    /// <summary>ServerReady.</summary>
    public abstract Task<ServerReadyResponse> ServerReady(ServerReadyRequest request, ServerCallContext context);

    /// <summary>ModelReady.</summary>
    public abstract Task<ModelReadyResponse> ModelReady(ModelReadyRequest request, ServerCallContext context);

    /// <summary>ServerMetadata.</summary>
    public abstract Task<ServerMetadataResponse> ServerMetadata(ServerMetadataRequest request, ServerCallContext context);

    /// <summary>ModelMetadata.</summary>
    public abstract Task<ModelMetadataResponse> ModelMetadata(ModelMetadataRequest request, ServerCallContext context);

    /// <summary>ModelInfer.</summary>
    public abstract Task<ModelInferResponse> ModelInfer(ModelInferRequest request, ServerCallContext context);

    /// <summary>ModelStreamInfer (bidirectional).</summary>
    public abstract Task ModelStreamInfer(
        IAsyncStreamReader<ModelInferRequest> requestStream, IServerStreamWriter<ModelStreamInferResponse> responseStream, ServerCallContext context);

    /// <summary>ModelConfig.</summary>
    public abstract Task<ModelConfigResponse> ModelConfig(ModelConfigRequest request, ServerCallContext context);

    /// <summary>ModelStatistics.</summary>
    public abstract Task<ModelStatisticsResponse> ModelStatistics(ModelStatisticsRequest request, ServerCallContext context);

    /// <summary>RepositoryIndex.</summary>
    public abstract Task<RepositoryIndexResponse> RepositoryIndex(RepositoryIndexRequest request, ServerCallContext context);

    /// <summary>RepositoryModelLoad.</summary>
    public abstract Task<RepositoryModelLoadResponse> RepositoryModelLoad(RepositoryModelLoadRequest request, ServerCallContext context);

    /// <summary>RepositoryModelUnload.</summary>
    public abstract Task<RepositoryModelUnloadResponse> RepositoryModelUnload(RepositoryModelUnloadRequest request, ServerCallContext context);

    /// <summary>Registers every rpc with <paramref name="binder"/> (ASP.NET Core gRPC passes no instance).</summary>
    public static void BindService(ServiceBinderBase binder, InferenceGrpcServiceBase? service)
    {
        ArgumentNullException.ThrowIfNull(binder);
        Add(binder, nameof(ServerLive), ServerLiveRequest.Parser, ServerLiveResponse.Parser);
        Add(binder, nameof(ServerReady), ServerReadyRequest.Parser, ServerReadyResponse.Parser);
        Add(binder, nameof(ModelReady), ModelReadyRequest.Parser, ModelReadyResponse.Parser);
        Add(binder, nameof(ServerMetadata), ServerMetadataRequest.Parser, ServerMetadataResponse.Parser);
        Add(binder, nameof(ModelMetadata), ModelMetadataRequest.Parser, ModelMetadataResponse.Parser);
        binder.AddMethod(
            new Method<ModelInferRequest, ModelInferResponse>(MethodType.Unary, ServiceName, nameof(ModelInfer), InferRequestMarshaller.Instance, Protobuf(ModelInferResponse.Parser)),
            (UnaryServerMethod<ModelInferRequest, ModelInferResponse>?)null);
        binder.AddMethod(
            new Method<ModelInferRequest, ModelStreamInferResponse>(
                MethodType.DuplexStreaming, ServiceName, nameof(ModelStreamInfer), InferRequestMarshaller.Instance, Protobuf(ModelStreamInferResponse.Parser)),
            (DuplexStreamingServerMethod<ModelInferRequest, ModelStreamInferResponse>?)null);
        Add(binder, nameof(ModelConfig), ModelConfigRequest.Parser, ModelConfigResponse.Parser);
        Add(binder, nameof(ModelStatistics), ModelStatisticsRequest.Parser, ModelStatisticsResponse.Parser);
        Add(binder, nameof(RepositoryIndex), RepositoryIndexRequest.Parser, RepositoryIndexResponse.Parser);
        Add(binder, nameof(RepositoryModelLoad), RepositoryModelLoadRequest.Parser, RepositoryModelLoadResponse.Parser);
        Add(binder, nameof(RepositoryModelUnload), RepositoryModelUnloadRequest.Parser, RepositoryModelUnloadResponse.Parser);
    }

    private static void Add<TRequest, TResponse>(ServiceBinderBase binder, string name, MessageParser<TRequest> request, MessageParser<TResponse> response)
        where TRequest : class, IMessage<TRequest>
        where TResponse : class, IMessage<TResponse> =>
        binder.AddMethod(
            new Method<TRequest, TResponse>(MethodType.Unary, ServiceName, name, Protobuf(request), Protobuf(response)),
            (UnaryServerMethod<TRequest, TResponse>?)null);

    private static Marshaller<T> Protobuf<T>(MessageParser<T> parser)
        where T : class, IMessage<T> =>
        Marshallers.Create<T>(Serialize, context => Parse(parser, context));

    // Bytes that are not a message of the rpc's type are the caller's mistake: INVALID_ARGUMENT, as for ModelInfer.
    private static T Parse<T>(MessageParser<T> parser, DeserializationContext context)
        where T : class, IMessage<T>
    {
        try
        {
            return parser.ParseFrom(context.PayloadAsReadOnlySequence());
        }
        catch (InvalidProtocolBufferException e)
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, $"the request is not a valid {typeof(T).Name}: {e.Message}"));
        }
    }

    /// <summary>Writes a message straight into the call's buffer.</summary>
    internal static void Serialize<T>(T message, SerializationContext context)
        where T : IMessage<T>
    {
        context.SetPayloadLength(message.CalculateSize());
        message.WriteTo(context.GetBufferWriter());
        context.Complete();
    }
}
