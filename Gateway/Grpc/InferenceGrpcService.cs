using Grpc.Core;
using Microsoft.Extensions.Logging;
using Orleans.KServe.Contracts.Inference;
using Orleans.KServe.Contracts.Models;
using Orleans.KServe.Contracts.Serving;
using Orleans.KServe.Contracts.Tensors;
using Orleans.KServe.Gateway.Codecs;
using Orleans.KServe.Gateway.Endpoints;
using Orleans.KServe.Gateway.Routing;
using Orleans.KServe.Gateway.Serving;
using Orleans.KServe.Grpc;
using GrpcModelConfig = Orleans.KServe.Grpc.ModelConfig;
using GrpcModelStatistics = Orleans.KServe.Grpc.ModelStatistics;
using StatisticDuration = Orleans.KServe.Grpc.StatisticDuration;

namespace Orleans.KServe.Gateway.Grpc;

/// <summary>
/// <c>inference.GRPCInferenceService</c>: the Open Inference Protocol over gRPC with KServe's repository rpcs and
/// Triton's streaming, config, statistics and index rpcs. Failures map by one rule shared with REST: invalid input
/// INVALID_ARGUMENT, unknown model NOT_FOUND, not ready UNAVAILABLE, a failure inside the model INTERNAL.
/// </summary>
public sealed partial class InferenceGrpcService(
    ModelRouter router,
    RequestAdmission admission,
    Serving.RequestBytesBudget budget,
    InferenceHandlers handlers,
    ILogger<InferenceGrpcService> logger,
    IModelRepositoryControl? repository = null) : InferenceGrpcServiceBase
{
    /// <inheritdoc />
    public override Task<ServerLiveResponse> ServerLive(ServerLiveRequest request, ServerCallContext context) =>
        Task.FromResult(new ServerLiveResponse { Live = true });

    /// <inheritdoc />
    public override async Task<ServerReadyResponse> ServerReady(ServerReadyRequest request, ServerCallContext context) =>
        new() { Ready = await handlers.IsReadyAsync() };

    /// <inheritdoc />
    public override Task<ServerMetadataResponse> ServerMetadata(ServerMetadataRequest request, ServerCallContext context)
    {
        var response = new ServerMetadataResponse { Name = InferenceHandlers.ServerName, Version = InferenceHandlers.ServerVersion };
        response.Extensions.Add(InferenceHandlers.Extensions);
        return Task.FromResult(response);
    }

    /// <inheritdoc />
    public override Task<ModelReadyResponse> ModelReady(ModelReadyRequest request, ServerCallContext context) => Guard(context, async () =>
    {
        var route = router.Get(request.Name, Version(request.Version));
        var status = await router.GetStatusAsync(route);
        return new ModelReadyResponse { Ready = status.State == ModelState.Loaded };
    });

    /// <inheritdoc />
    public override Task<ModelMetadataResponse> ModelMetadata(ModelMetadataRequest request, ServerCallContext context) => Guard(context, async () =>
    {
        var route = router.Get(request.Name, Version(request.Version));
        var metadata = await router.GetMetadataAsync(route);
        var response = new ModelMetadataResponse { Name = metadata.Name, Platform = metadata.Platform };
        response.Versions.Add(route.AllVersions);
        response.Inputs.Add(metadata.Inputs.Select(ToProtocol));
        response.Outputs.Add(metadata.Outputs.Select(ToProtocol));
        return response;
    });

    private static ModelMetadataResponse.Types.TensorMetadata ToProtocol(TensorMetadata tensor)
    {
        var result = new ModelMetadataResponse.Types.TensorMetadata { Name = tensor.Name, Datatype = tensor.DataType.ToProtocolName() };
        result.Shape.Add(tensor.Shape);
        return result;
    }

    /// <inheritdoc />
    public override Task<ModelInferResponse> ModelInfer(ModelInferRequest request, ServerCallContext context) => Guard(context, () => InferAsync(request, context.CancellationToken));

    private async Task<ModelInferResponse> InferAsync(ModelInferRequest request, CancellationToken cancellationToken)
    {
        var buffers = new PooledBuffers(budget);
        var release = true;
        try
        {
            request.AdoptPooledInto(buffers);
            using var ticket = admission.Enter();
            var route = router.Get(request.ModelName, Version(request.ModelVersion));
            router.EnsureAvailable(route);
            release = false;
            var decoded = GrpcTensorCodec.DecodeRequest(request, buffers);
            var response = await router.InferAsync(route, decoded, cancellationToken);
            release = true;
            return GrpcTensorCodec.EncodeResponse(response, raw: request.RawInputContents.Count > 0);
        }
        catch (InferenceException)
        {
            release = true;
            throw;
        }
        finally
        {
            // Typed inputs were packed into pooled arrays; a call that may still read them (a timeout) keeps them.
            if (release)
            {
                buffers.Dispose();
            }
            else
            {
                buffers.Abandon();
            }
        }
    }

    /// <inheritdoc />
    public override async Task ModelStreamInfer(
        IAsyncStreamReader<ModelInferRequest> requestStream, IServerStreamWriter<ModelStreamInferResponse> responseStream, ServerCallContext context)
    {
        // One answer per request, in order; a failed request answers with its error and the stream goes on.
        await foreach (var request in requestStream.ReadAllAsync(context.CancellationToken))
        {
            ModelStreamInferResponse answer;
            try
            {
                answer = new ModelStreamInferResponse { InferResponse = await InferAsync(request, context.CancellationToken) };
            }
            catch (Exception e)
            {
                var (status, message) = Classify(e);
                LogIfServerFault(status, e);
                answer = new ModelStreamInferResponse { ErrorMessage = message };
            }

            await responseStream.WriteAsync(answer, context.CancellationToken);
        }
    }

    /// <inheritdoc />
    public override Task<ModelConfigResponse> ModelConfig(ModelConfigRequest request, ServerCallContext context) => Guard(context, async () =>
    {
        var route = router.Get(request.Name, Version(request.Version));
        var config = await router.GetConfigurationAsync(route);
        var message = new GrpcModelConfig
        {
            Name = config.Name,
            Platform = config.Platform,
            Backend = config.Backend,
            MaxBatchSize = config.MaxBatchSize,
            VersionPolicy = ToProtocol(route.Entry.VersionPolicy),
        };
        foreach (var input in config.Inputs)
        {
            var tensor = new ModelInput { Name = input.Name, DataType = ToTritonType(input.DataType) };
            tensor.Dims.Add(input.Shape);
            message.Input.Add(tensor);
        }

        foreach (var output in config.Outputs)
        {
            var tensor = new ModelOutput { Name = output.Name, DataType = ToTritonType(output.DataType) };
            tensor.Dims.Add(output.Shape);
            message.Output.Add(tensor);
        }

        message.InstanceGroup.Add(new ModelInstanceGroup { Name = config.Name, Count = config.InstanceCount, Kind = ModelInstanceGroup.Types.Kind.Cpu });
        if (config.Batching is { } b)
        {
            var batching = new ModelDynamicBatching
            {
                MaxQueueDelayMicroseconds = (ulong)b.MaxQueueDelayMicroseconds,
                PreserveOrdering = b.PreserveOrdering,
                PriorityLevels = (ulong)b.PriorityLevels,
                DefaultPriorityLevel = (ulong)b.DefaultPriorityLevel,
                DefaultQueuePolicy = new ModelQueuePolicy
                {
                    TimeoutAction = ModelQueuePolicy.Types.TimeoutAction.Reject,
                    DefaultTimeoutMicroseconds = (ulong)b.DefaultQueueTimeoutMicroseconds,
                    AllowTimeoutOverride = b.AllowTimeoutOverride,
                    MaxQueueSize = (uint)b.MaxQueueSize,
                },
            };
            batching.PreferredBatchSize.Add(b.PreferredBatchSizes);
            message.DynamicBatching = batching;
        }
        return new ModelConfigResponse { Config = message };
    });

    private static ModelVersionPolicy ToProtocol(string policy)
    {
        if (policy == "all")
        {
            return new ModelVersionPolicy { All = new ModelVersionPolicy.Types.All() };
        }

        if (policy.StartsWith("specific:", StringComparison.Ordinal))
        {
            var specific = new ModelVersionPolicy.Types.Specific();
            specific.Versions.Add(policy[9..].Split(',').Select(v => long.Parse(v, System.Globalization.CultureInfo.InvariantCulture)));
            return new ModelVersionPolicy { Specific = specific };
        }

        var latest = uint.Parse(policy.Split(':')[^1], System.Globalization.CultureInfo.InvariantCulture);
        return new ModelVersionPolicy { Latest = new ModelVersionPolicy.Types.Latest { NumVersions = latest } };
    }

    /// <summary>Triton's DataType enum value of a protocol datatype.</summary>
    public static DataType ToTritonType(TensorDataType type) => type switch
    {
        TensorDataType.Bool => DataType.TypeBool,
        TensorDataType.UInt8 => DataType.TypeUint8,
        TensorDataType.UInt16 => DataType.TypeUint16,
        TensorDataType.UInt32 => DataType.TypeUint32,
        TensorDataType.UInt64 => DataType.TypeUint64,
        TensorDataType.Int8 => DataType.TypeInt8,
        TensorDataType.Int16 => DataType.TypeInt16,
        TensorDataType.Int32 => DataType.TypeInt32,
        TensorDataType.Int64 => DataType.TypeInt64,
        TensorDataType.FP16 => DataType.TypeFp16,
        TensorDataType.FP32 => DataType.TypeFp32,
        TensorDataType.FP64 => DataType.TypeFp64,
        TensorDataType.BF16 => DataType.TypeBf16,
        TensorDataType.Bytes => DataType.TypeString,
        _ => DataType.TypeInvalid,
    };

    /// <inheritdoc />
    public override Task<ModelStatisticsResponse> ModelStatistics(ModelStatisticsRequest request, ServerCallContext context) => Guard(context, async () =>
    {
        var response = new ModelStatisticsResponse();
        var routes = string.IsNullOrEmpty(request.Name)
            ? router.Routes.Where(r => r.Grain is not null && !r.Entry.Unloaded).ToList()
            : [router.Get(request.Name, Version(request.Version))];
        foreach (var route in routes)
        {
            var stats = await router.GetStatisticsAsync(route);
            var message = new GrpcModelStatistics
            {
                Name = stats.Name,
                Version = stats.Version,
                LastInference = (ulong)stats.LastInferenceMilliseconds,
                InferenceCount = (ulong)stats.InferenceCount,
                ExecutionCount = (ulong)stats.ExecutionCount,
                InferenceStats = new InferStatistics
                {
                    Success = Duration(stats.Success),
                    Fail = Duration(stats.Fail),
                    Queue = Duration(stats.Queue),
                    ComputeInput = Duration(stats.ComputeInput),
                    ComputeInfer = Duration(stats.ComputeInfer),
                    ComputeOutput = Duration(stats.ComputeOutput),
                    CacheHit = new StatisticDuration(),
                    CacheMiss = new StatisticDuration(),
                },
            };
            foreach (var batch in stats.Batches)
            {
                message.BatchStats.Add(new InferBatchStatistics
                {
                    BatchSize = (ulong)batch.BatchSize,
                    ComputeInput = Duration(batch.ComputeInput),
                    ComputeInfer = Duration(batch.ComputeInfer),
                    ComputeOutput = Duration(batch.ComputeOutput),
                });
            }

            response.ModelStats.Add(message);
        }

        return response;
    });

    private static StatisticDuration Duration(Contracts.Models.StatisticDuration d) => new() { Count = (ulong)d.Count, Ns = (ulong)d.Nanoseconds };

    /// <inheritdoc />
    public override Task<RepositoryIndexResponse> RepositoryIndex(RepositoryIndexRequest request, ServerCallContext context) => Guard(context, async () =>
    {
        var response = new RepositoryIndexResponse();
        foreach (var (route, status) in await handlers.IndexAsync())
        {
            if (request.Ready && status.State != ModelState.Loaded)
            {
                continue;
            }

            response.Models.Add(new RepositoryIndexResponse.Types.ModelIndex
            {
                Name = route.Name,
                Version = route.Version,
                State = InferenceHandlers.TritonState(status.State),
                Reason = InferenceHandlers.IndexReason(status),
            });
        }

        return response;
    });

    /// <inheritdoc />
    public override Task<RepositoryModelLoadResponse> RepositoryModelLoad(RepositoryModelLoadRequest request, ServerCallContext context) => Guard(context, async () =>
    {
        var name = string.IsNullOrEmpty(request.TritonModelName) ? request.ModelName : request.TritonModelName;
        await Repository.LoadAsync(name, context.CancellationToken);
        return new RepositoryModelLoadResponse { ModelName = name, IsLoaded = true };
    });

    /// <inheritdoc />
    public override Task<RepositoryModelUnloadResponse> RepositoryModelUnload(RepositoryModelUnloadRequest request, ServerCallContext context) => Guard(context, async () =>
    {
        var name = string.IsNullOrEmpty(request.TritonModelName) ? request.ModelName : request.TritonModelName;
        await Repository.UnloadAsync(name, context.CancellationToken);
        return new RepositoryModelUnloadResponse { ModelName = name, IsUnloaded = true };
    });

    private IModelRepositoryControl Repository =>
        repository ?? throw new InferenceException(InferenceErrorKind.NotImplemented, "this gateway has no model repository to load from");

    private static string? Version(string version) => string.IsNullOrEmpty(version) ? null : version;

    private async Task<T> Guard<T>(ServerCallContext context, Func<Task<T>> call)
    {
        try
        {
            return await call();
        }
        catch (RpcException)
        {
            throw;
        }
        catch (OperationCanceledException) when (context.CancellationToken.IsCancellationRequested)
        {
            // The client cancelled or went away: an expected end, not a server fault.
            throw new RpcException(new Status(StatusCode.Cancelled, "the call was cancelled by the client"));
        }
        catch (Exception e)
        {
            var (status, message) = Classify(e);
            LogIfServerFault(status, e);
            throw new RpcException(new Status(status, message));
        }
    }

    /// <summary>The gRPC status and message of a failure (the failure table, shared with REST).</summary>
    public static (StatusCode Status, string Message) Classify(Exception e) => FailureTable.ForGrpc(e);

    private void LogIfServerFault(StatusCode status, Exception e)
    {
        if (status == StatusCode.Internal)
        {
            LogFailure(e);
        }
    }

    [LoggerMessage(1, LogLevel.Error, "gRPC call failed")]
    private partial void LogFailure(Exception exception);
}
