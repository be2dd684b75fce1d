using Google.Protobuf;
using Grpc.Core;
using Microsoft.AspNetCore.Http;
using Orleans.KServe.Contracts.Inference;
using Orleans.KServe.Gateway.Serving;
using Orleans.Runtime;

namespace Orleans.KServe.Gateway.Tests;

/// <summary>The one table both transports answer failures by: a test per row, and every exception a handler may meet.</summary>
public sealed class FailureTableTests
{
    public static TheoryData<InferenceErrorKind, int, StatusCode> Rows => new()
    {
        { InferenceErrorKind.InvalidInput, 400, StatusCode.InvalidArgument },
        { InferenceErrorKind.NotFound, 404, StatusCode.NotFound },
        { InferenceErrorKind.Unavailable, 503, StatusCode.Unavailable },
        { InferenceErrorKind.Internal, 500, StatusCode.Internal },
        { InferenceErrorKind.NotImplemented, 501, StatusCode.Unimplemented },
        { InferenceErrorKind.ResourceExhausted, 503, StatusCode.ResourceExhausted },
        { InferenceErrorKind.PayloadTooLarge, 413, StatusCode.ResourceExhausted },
        { InferenceErrorKind.Retired, 503, StatusCode.Unavailable },
    };

    [Theory]
    [MemberData(nameof(Rows))]
    public void Each_failure_kind_answers_one_rest_status_and_one_grpc_status(InferenceErrorKind kind, int http, StatusCode grpc)
    {
        var failure = new InferenceException(kind, "what is wrong");
        Assert.Equal((http, "what is wrong"), FailureTable.ForHttp(failure));
        Assert.Equal((grpc, "what is wrong"), FailureTable.ForGrpc(failure));
        Assert.Equal(new FailureRow(kind, http, grpc), FailureTable.Row(kind));
    }

    [Fact]
    public void Every_failure_kind_has_its_row()
    {
        Assert.Equal(Enum.GetValues<InferenceErrorKind>().Order(), FailureTable.Rows.Select(r => r.Kind).Order());
        Assert.Equal(Rows.Count(), FailureTable.Rows.Count);
    }

    public static TheoryData<Exception, int, StatusCode, string> Exceptions => new()
    {
        { new BadHttpRequestException("Bad chunk size data.", 400), 400, StatusCode.InvalidArgument, "malformed HTTP request: Bad chunk size data." },
        { new BadHttpRequestException("Request body too large.", 413), 413, StatusCode.ResourceExhausted, "Request body too large." },
        { ProtobufFailure(), 400, StatusCode.InvalidArgument, "the request is not a valid protobuf message" },
        { new TimeoutException("30 s"), 503, StatusCode.Unavailable, "the model did not answer in time: 30 s" },
        { new OperationCanceledException(), 503, StatusCode.Unavailable, "the request was cancelled" },
        { new SiloUnavailableException("gone"), 503, StatusCode.Unavailable, "the model's silo is unavailable: gone" },
        { new InvalidOperationException("a bug"), 500, StatusCode.Internal, "internal error: a bug" },
    };

    [Theory]
    [MemberData(nameof(Exceptions))]
    public void Exceptions_that_are_not_inference_failures_map_by_what_they_mean(Exception e, int http, StatusCode grpc, string message)
    {
        var (status, text) = FailureTable.ForHttp(e);
        Assert.Equal(http, status);
        Assert.StartsWith(message, text);
        Assert.Equal(grpc, FailureTable.ForGrpc(e).Status);
    }

    private static InvalidProtocolBufferException ProtobufFailure()
    {
        try
        {
            Orleans.KServe.Grpc.ServerLiveRequest.Parser.ParseFrom([0x0A, 0xFF]);
        }
        catch (InvalidProtocolBufferException e)
        {
            return e;
        }

        throw new InvalidOperationException("the parser accepted a truncated message");
    }
}
