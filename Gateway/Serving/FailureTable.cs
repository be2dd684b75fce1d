using System.Collections.Frozen;
using Google.Protobuf;
using Grpc.Core;
using Microsoft.AspNetCore.Http;
using Orleans.KServe.Contracts.Inference;
using Orleans.Runtime;

namespace Orleans.KServe.Gateway.Serving;

/// <summary>One failure as both transports report it.</summary>
/// <param name="Kind">What kind of failure it is.</param>
/// <param name="HttpStatus">The REST status.</param>
/// <param name="GrpcStatus">The gRPC status.</param>
public readonly record struct FailureRow(InferenceErrorKind Kind, int HttpStatus, StatusCode GrpcStatus);

/// <summary>
/// The one mapping from what went wrong to what a caller sees, used by REST and gRPC alike: a failure kind to its
/// HTTP status and gRPC status, and any exception to its kind and message. A client's mistake is never a 500 or an
/// INTERNAL: malformed bytes are INVALID_ARGUMENT, a message too large is RESOURCE_EXHAUSTED, and so on.
/// </summary>
public static class FailureTable
{
    /// <summary>Every row: KServe's statuses where it has them, RESOURCE_EXHAUSTED for limits as Triton answers.</summary>
    public static IReadOnlyList<FailureRow> Rows { get; } =
    [
        new(InferenceErrorKind.InvalidInput, 400, StatusCode.InvalidArgument),
        new(InferenceErrorKind.NotFound, 404, StatusCode.NotFound),
        new(InferenceErrorKind.Unavailable, 503, StatusCode.Unavailable),
        new(InferenceErrorKind.Internal, 500, StatusCode.Internal),
        new(InferenceErrorKind.NotImplemented, 501, StatusCode.Unimplemented),
        new(InferenceErrorKind.ResourceExhausted, 503, StatusCode.ResourceExhausted),
        new(InferenceErrorKind.PayloadTooLarge, 413, StatusCode.ResourceExhausted),
        new(InferenceErrorKind.Retired, 503, StatusCode.Unavailable),
    ];

    private static readonly FrozenDictionary<InferenceErrorKind, FailureRow> ByKind = Rows.ToFrozenDictionary(r => r.Kind);

    /// <summary>The row of <paramref name="kind"/> (an unknown kind is an internal failure).</summary>
    public static FailureRow Row(InferenceErrorKind kind) => ByKind.TryGetValue(kind, out var row) ? row : ByKind[InferenceErrorKind.Internal];

    /// <summary>The REST status of <paramref name="kind"/>.</summary>
    public static int HttpStatus(InferenceErrorKind kind) => Row(kind).HttpStatus;

    /// <summary>The gRPC status of <paramref name="kind"/>.</summary>
    public static StatusCode GrpcStatus(InferenceErrorKind kind) => Row(kind).GrpcStatus;

    /// <summary>What kind of failure <paramref name="e"/> is, and the message a caller reads.</summary>
    public static (InferenceErrorKind Kind, string Message) Classify(Exception e) => e switch
    {
        InferenceException inference => (inference.Kind, inference.Message),
        BadHttpRequestException { StatusCode: 413 } bad => (InferenceErrorKind.PayloadTooLarge, bad.Message),
        BadHttpRequestException bad => (InferenceErrorKind.InvalidInput, $"malformed HTTP request: {bad.Message}"),
        InvalidProtocolBufferException bad => (InferenceErrorKind.InvalidInput, $"the request is not a valid protobuf message: {bad.Message}"),
        TimeoutException => (InferenceErrorKind.Unavailable, $"the model did not answer in time: {e.Message}"),
        SiloUnavailableException or OrleansMessageRejectionException => (InferenceErrorKind.Unavailable, $"the model's silo is unavailable: {e.Message}"),
        OperationCanceledException => (InferenceErrorKind.Unavailable, "the request was cancelled"),
        _ => (InferenceErrorKind.Internal, $"internal error: {e.Message}"),
    };

    /// <summary>The REST status and message of <paramref name="e"/>.</summary>
    public static (int Status, string Message) ForHttp(Exception e)
    {
        var (kind, message) = Classify(e);
        return (HttpStatus(kind), message);
    }

    /// <summary>The gRPC status and message of <paramref name="e"/>.</summary>
    public static (StatusCode Status, string Message) ForGrpc(Exception e)
    {
        var (kind, message) = Classify(e);
        return (GrpcStatus(kind), message);
    }
}
