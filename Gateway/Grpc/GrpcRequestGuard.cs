using System.Buffers;
using System.Buffers.Binary;
using System.IO.Pipelines;
using Grpc.AspNetCore.Server;
using Grpc.Core;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.DependencyInjection;
using Orleans.KServe.Contracts.Inference;
using Orleans.KServe.Gateway.Serving;

namespace Orleans.KServe.Gateway.Grpc;

/// <summary>
/// Reads the length-prefixed message frames of a gRPC request as they arrive, ahead of the gRPC server: a frame
/// that declares more than the message limit is refused with RESOURCE_EXHAUSTED from its 5-byte header alone (the
/// gRPC server reads 0xFFFFFFFF as a failure of its own and answered UNKNOWN), and every frame's length is taken
/// from the server's <see cref="RequestBytesBudget"/> before its bytes are buffered. A compressed frame's inflated
/// bytes are counted by <see cref="BoundedCompressionProvider"/> through <see cref="Current"/>. Framing the caller
/// got wrong is INVALID_ARGUMENT with what is wrong (the gRPC server answered UNKNOWN or INTERNAL): a compressed
/// flag other than 0 or 1, a compressed message without a <c>grpc-encoding</c>, a body that ends inside a message,
/// a second message on an rpc that takes one.
/// </summary>
public sealed class GrpcRequestGuard : PipeReader, IRequestBodyPipeFeature
{
    private const int HeaderSize = 5;
    private static readonly AsyncLocal<GrpcRequestGuard?> s_current = new();

    private readonly PipeReader _inner;
    private readonly RequestBytesBudget _budget;
    private readonly long _maxMessageBytes;
    private ReadOnlySequence<byte> _last;
    private long _position;
    private long _nextHeader;
    private long _frameReserved;
    private long _inflatedReserved;

    private readonly bool _encoded;
    private readonly bool _oneMessage;
    private int _frames;

    private GrpcRequestGuard(PipeReader inner, RequestBytesBudget budget, long maxMessageBytes, string? encoding, bool oneMessage)
    {
        _inner = inner;
        _budget = budget;
        _maxMessageBytes = maxMessageBytes;
        _encoded = !string.IsNullOrEmpty(encoding) && !encoding.Equals("identity", StringComparison.OrdinalIgnoreCase);
        _oneMessage = oneMessage;
    }

    private static RpcException Invalid(string message) => new(new Status(StatusCode.InvalidArgument, message));

    /// <summary>The guard of the gRPC call running on this flow, if any.</summary>
    public static GrpcRequestGuard? Current => s_current.Value;

    /// <summary>Counts bytes inflated from a compressed frame against the budget (refused with RESOURCE_EXHAUSTED).</summary>
    public void ReserveInflated(long bytes)
    {
        Reserve(bytes);
        _inflatedReserved += bytes;
    }

    private void Reserve(long bytes)
    {
        try
        {
            _budget.Reserve(bytes);
        }
        catch (InferenceException e)
        {
            throw new RpcException(new Status(StatusCode.ResourceExhausted, e.Message));
        }
    }

    /// <inheritdoc />
    PipeReader IRequestBodyPipeFeature.Reader => this;

    /// <inheritdoc />
    public override ValueTask<ReadResult> ReadAsync(CancellationToken cancellationToken = default)
    {
        var read = _inner.ReadAsync(cancellationToken);
        if (!read.IsCompletedSuccessfully)
        {
            return AwaitedAsync(read);
        }

        var result = read.Result;
        Inspect(result.Buffer, result.IsCompleted);
        return new ValueTask<ReadResult>(result);
    }

    // The wait for bytes not yet arrived, without a state machine allocated per wait.
    [System.Runtime.CompilerServices.AsyncMethodBuilder(typeof(System.Runtime.CompilerServices.PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<ReadResult> AwaitedAsync(ValueTask<ReadResult> read)
    {
        var result = await read.ConfigureAwait(false);
        Inspect(result.Buffer, result.IsCompleted);
        return result;
    }

    /// <inheritdoc />
    public override bool TryRead(out ReadResult result)
    {
        if (!_inner.TryRead(out result))
        {
            return false;
        }

        Inspect(result.Buffer, result.IsCompleted);
        return true;
    }

    // Parses every frame header that lies in the buffer; the buffer starts at stream offset _position.
    private void Inspect(ReadOnlySequence<byte> buffer, bool completed)
    {
        _last = buffer;
        Span<byte> header = stackalloc byte[HeaderSize];
        while (_nextHeader + HeaderSize <= _position + buffer.Length)
        {
            buffer.Slice(_nextHeader - _position, HeaderSize).CopyTo(header);
            if (_oneMessage && ++_frames > 1)
            {
                throw Invalid("this rpc takes one request message, and a second one follows it");
            }

            if (header[0] > 1)
            {
                throw Invalid($"a message header's compressed flag is {header[0]}; it must be 0 (not compressed) or 1 (compressed)");
            }

            if (header[0] == 1 && !_encoded)
            {
                throw Invalid("a message is marked compressed but the request names no grpc-encoding (gzip or deflate)");
            }

            var length = BinaryPrimitives.ReadUInt32BigEndian(header[1..]);
            if (length > _maxMessageBytes)
            {
                throw new RpcException(new Status(StatusCode.ResourceExhausted,
                    $"the request message declares {length} bytes, more than the limit of {_maxMessageBytes} bytes (--grpc-max-message-bytes)"));
            }

            // The frame before this one has been read whole: what it held is the call's to keep, not the stream's.
            _budget.Release(_frameReserved + _inflatedReserved);
            _frameReserved = _inflatedReserved = 0;
            Reserve(length);
            _frameReserved = length;
            _nextHeader += HeaderSize + length;
        }

        var end = _position + buffer.Length;
        if (completed && end != _nextHeader && (end > _nextHeader || _frameReserved > 0))
        {
            throw Invalid(end > _nextHeader
                ? $"the request ended inside a message header ({end - _nextHeader} of its 5 bytes)"
                : $"the request ended {_nextHeader - end} bytes before the end of the {_frameReserved}-byte message its header declared");
        }
    }

    /// <inheritdoc />
    public override void AdvanceTo(SequencePosition consumed) => AdvanceTo(consumed, consumed);

    /// <inheritdoc />
    public override void AdvanceTo(SequencePosition consumed, SequencePosition examined)
    {
        _position += _last.Slice(_last.Start, consumed).Length;
        _last = default;
        _inner.AdvanceTo(consumed, examined);
    }

    /// <inheritdoc />
    public override void CancelPendingRead() => _inner.CancelPendingRead();

    /// <inheritdoc />
    public override void Complete(Exception? exception = null) => _inner.Complete(exception);

    /// <inheritdoc />
    public override ValueTask CompleteAsync(Exception? exception = null) => _inner.CompleteAsync(exception);

    private void ReleaseAll()
    {
        _budget.Release(_frameReserved + _inflatedReserved);
        _frameReserved = _inflatedReserved = 0;
    }

    /// <summary>Guards every gRPC request (HTTP/2, <c>application/grpc</c>) that passes through <paramref name="app"/>.</summary>
    public static IApplicationBuilder Use(IApplicationBuilder app)
    {
        var budget = app.ApplicationServices.GetRequiredService<RequestBytesBudget>();
        var options = app.ApplicationServices.GetRequiredService<GatewayOptions>();
        return app.Use(async (context, next) =>
        {
            if (!IsGrpc(context.Request) || context.Features.Get<IRequestBodyPipeFeature>() is not { } body)
            {
                await next(context);
                return;
            }

            var unary = context.GetEndpoint()?.Metadata.GetMetadata<GrpcMethodMetadata>()?.Method.Type is MethodType.Unary or MethodType.ServerStreaming;
            var encoding = context.Request.Headers["grpc-encoding"];
            var guard = new GrpcRequestGuard(body.Reader, budget, options.GrpcMaxMessageBytes, encoding, unary);
            context.Features.Set<IRequestBodyPipeFeature>(guard);

            // Only a call that may carry compressed messages needs its guard found by the inflater (an AsyncLocal costs a context copy).
            var compressed = guard._encoded;
            if (compressed)
            {
                s_current.Value = guard;
            }

            try
            {
                await next(context);
            }
            finally
            {
                if (compressed)
                {
                    s_current.Value = null;
                }

                guard.ReleaseAll();
            }
        });
    }

    private static bool IsGrpc(HttpRequest request) =>
        HttpProtocol.IsHttp2(request.Protocol) && request.ContentType is { } type && type.StartsWith("application/grpc", StringComparison.OrdinalIgnoreCase);
}
