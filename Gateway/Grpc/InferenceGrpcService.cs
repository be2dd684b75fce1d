using Grpc.Core;
using Microsoft.Extensions.Logging;
using Orleans.KServe.Contracts.Models;
using Orleans.KServe.Contracts.Tensors;
using Orleans.KServe.Gateway.Codecs;
using Orleans.KServe.Gateway.Routing;
using Orleans.KServe.Gateway.Serving;
using Orleans.KServe.Grpc;
using GrpcModelConfig = Orleans.KServe.Grpc.ModelConfig;
using GrpcModelStatistics = Orleans.KServe.Grpc.ModelStatistics;
using GrpcVersionPolicy = Orleans.KServe.Grpc.ModelVersionPolicy;
using StatisticDuration = Orleans.KServe.Grpc.StatisticDuration;

namespace Orleans.KServe.Gateway.Grpc;

/// <summary>
/// <c>inference.GRPCInferenceService</c>: the Open Inference Protocol over gRPC with KServe's repository rpcs and
/// Triton's streaming, config, statistics and index rpcs. A thin adapter over <see cref="ServingLayer"/>: it reads
/// protobuf in and writes protobuf out; failures answer by the failure table shared with REST.
/// </summary>
public sealed partial class InferenceGrpcService(ServingLayer serving, ILogger<InferenceGrpcService> logger) : InferenceGrpcServiceBase
{
    /// <inheritdoc />
    public override Task<ServerLiveResponse> ServerLive(ServerLiveRequest request, ServerCallContext context) =>
        Task.FromResult(new ServerLiveResponse { Live = true });

    /// <inheritdoc />
    public override async Task<ServerReadyResponse> ServerReady(ServerReadyRequest request, ServerCallContext context) =>
        new() { Ready = await serving.IsReadyAsync() };

    /// <inheritdoc />
    public override Task<ServerMetadataResponse> ServerMetadata(ServerMetadataRequest request, ServerCallContext context)
    {
        var response = new ServerMetadataResponse { Name = ServerDescription.Name, Version = ServerDescription.Version };
        response.Extensions.Add(ServerDescription.Extensions);
        return Task.FromResult(response);
    }

    /// <inheritdoc />
    public override Task<ModelReadyResponse> ModelReady(ModelReadyRequest request, ServerCallContext context) => Guard(context, async () =>
    {
        var status = await serving.StatusAsync(Route(context, request.Name, request.Version));
        return new ModelReadyResponse { Ready = status.State == ModelState.Loaded };
    });

    /// <inheritdoc />
    public override Task<ModelMetadataResponse> ModelMetadata(ModelMetadataRequest request, ServerCallContext context) => Guard(context, async () =>
    {
        var route = Route(context, request.Name, request.Version);
        var metadata = await serving.MetadataAsync(route);
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
    public override Task<ModelInferResponse> ModelInfer(ModelInferRequest request, ServerCallContext context) =>
        Guard(context, () => InferAsync(request, context.Host, context.CancellationToken));

    // The :authority names a model's namespace as a Host does (KServe's and Knative's domain templates).
    private ModelRoute Route(ServerCallContext context, string model, string version) => serving.Route(model, version, context.Host);

    private async Task<ModelInferResponse> InferAsync(ModelInferRequest request, string? host, CancellationToken cancellationToken)
    {
        using var call = serving.BeginInference();
        try
        {
            // The raw contents' pooled arrays are this call's from here on.
            request.AdoptPooledInto(call.Buffers);
            var route = serving.Route(request.ModelName, request.ModelVersion, host);
            serving.Router.EnsureAvailable(route);
            var decoded = GrpcTensorCodec.DecodeRequest(request, call.Buffers);
            call.ModelCalled();
            var response = await serving.InferAsync(route, decoded, cancellationToken);
            return GrpcTensorCodec.EncodeResponse(response, raw: request.RawInputContents.Count > 0);
        }
        catch (Exception e)
        {
            call.Failed(e);
            throw;
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
                answer = new ModelStreamInferResponse { InferResponse = await InferAsync(request, context.Host, context.CancellationToken) };
            }
            catch (Exception e)
            {
                var (status, message) = FailureTable.ForGrpc(e);
                LogIfServerFault(status, e);
                answer = new ModelStreamInferResponse { ErrorMessage = message };
            }

            await responseStream.WriteAsync(answer, context.CancellationToken);
        }
    }

    /// <inheritdoc />
    public override Task<ModelConfigResponse> ModelConfig(ModelConfigRequest request, ServerCallContext context) => Guard(context, async () =>
    {
        var config = await serving.ConfigAsync(Route(context, request.Name, request.Version));
        var message = new GrpcModelConfig
        {
            Name = config.Name,
            Platform = config.Platform,
            Backend = config.Backend,
            MaxBatchSize = config.MaxBatchSize,
            VersionPolicy = ToProtocol(config.VersionPolicy),
        };
        foreach (var input in config.Inputs)
        {
            var tensor = new ModelInput { Name = input.Name, DataType = (DataType)input.DataType.Number };
            tensor.Dims.Add(input.Dims);
            message.Input.Add(tensor);
        }

        foreach (var output in config.Outputs)
        {
            var tensor = new ModelOutput { Name = output.Name, DataType = (DataType)output.DataType.Number };
            tensor.Dims.Add(output.Dims);
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

    private static GrpcVersionPolicy ToProtocol(Contracts.Models.ModelVersionPolicy policy)
    {
        switch (policy.Kind)
        {
            case VersionPolicyKind.All:
                return new GrpcVersionPolicy { All = new GrpcVersionPolicy.Types.All() };
            case VersionPolicyKind.Specific:
                var specific = new GrpcVersionPolicy.Types.Specific();
                specific.Versions.Add(policy.Versions);
                return new GrpcVersionPolicy { Specific = specific };
            default:
                return new GrpcVersionPolicy { Latest = new GrpcVersionPolicy.Types.Latest { NumVersions = (uint)policy.Latest } };
        }
    }

    /// <inheritdoc />
    public override Task<ModelStatisticsResponse> ModelStatistics(ModelStatisticsRequest request, ServerCallContext context) => Guard(context, async () =>
    {
        var response = new ModelStatisticsResponse();
        var all = string.IsNullOrEmpty(request.Name)
            ? await serving.StatisticsAsync()
            : await serving.StatisticsAsync(Route(context, request.Name, request.Version));
        foreach (var stats in all)
        {
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
        foreach (var entry in await serving.IndexAsync())
        {
            if (request.Ready && !entry.Ready)
            {
                continue;
            }

            response.Models.Add(new RepositoryIndexResponse.Types.ModelIndex { Name = entry.Name, Version = entry.Version, State = entry.State, Reason = entry.Reason });
        }

        return response;
    });

    /// <inheritdoc />
    public override Task<RepositoryModelLoadResponse> RepositoryModelLoad(RepositoryModelLoadRequest request, ServerCallContext context) => Guard(context, async () =>
    {
        // Triton puts the model name in field 2, KServe in field 1.
        var name = string.IsNullOrEmpty(request.TritonModelName) ? request.ModelName : request.TritonModelName;
        await serving.LoadAsync(name, context.CancellationToken);
        return new RepositoryModelLoadResponse { ModelName = name, IsLoaded = true };
    });

    /// <inheritdoc />
    public override Task<RepositoryModelUnloadResponse> RepositoryModelUnload(RepositoryModelUnloadRequest request, ServerCallContext context) => Guard(context, async () =>
    {
        var name = string.IsNullOrEmpty(request.TritonModelName) ? request.ModelName : request.TritonModelName;
        await serving.UnloadAsync(name, context.CancellationToken);
        return new RepositoryModelUnloadResponse { ModelName = name, IsUnloaded = true };
    });

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
            var (status, message) = FailureTable.ForGrpc(e);
            LogIfServerFault(status, e);
            throw new RpcException(new Status(status, message));
        }
    }

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
