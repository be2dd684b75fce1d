using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Logging;
using Orleans.KServe.Contracts.Inference;
using Orleans.KServe.Gateway.Codecs;
using Orleans.KServe.Gateway.Serving;

namespace Orleans.KServe.Gateway.Endpoints;

/// <summary>Inference: v2 infer (JSON, binary tensor data, compressed), v1 predict and explain.</summary>
public static class InferenceEndpoints
{
    /// <summary>Maps <c>POST /v2/models/{model}[/versions/{version}]/infer</c>, <c>POST /v1/models/{model}:predict</c> and <c>:explain</c>.</summary>
    public static IEndpointRouteBuilder MapInferenceEndpoints(this IEndpointRouteBuilder endpoints, ServingLayer serving, GatewayOptions options, ILogger logger)
    {
        var v2 = endpoints.MapGroup("/v2");
        v2.MapPost("/models/{model}/infer", context => RunAsync(context, serving, options, logger, InferV2Async));
        v2.MapPost("/models/{model}/versions/{version}/infer", context => RunAsync(context, serving, options, logger, InferV2Async));
        var v1 = endpoints.MapGroup("/v1");
        v1.MapPost("/models/{model}:predict", context => RunAsync(context, serving, options, logger, PredictV1Async));
        v1.MapPost("/models/{model}:explain", context => RestSupport.GuardAsync(context, logger, () =>
        {
            var route = RestSupport.Route(context, serving);
            throw new InferenceException(InferenceErrorKind.NotImplemented, $"model '{route.Name}' has no explainer");
        }));
        return endpoints;
    }

    /// <summary>
    /// A JSON body, or a JSON header followed by binary tensor data (<c>Inference-Header-Content-Length</c>), optionally
    /// gzip- or deflate-compressed. The answer is JSON unless outputs were asked for in binary, and compressed when the
    /// request's Accept-Encoding allows.
    /// </summary>
    private static async Task InferV2Async(HttpContext context, ServingLayer serving, GatewayOptions options, InferenceCall call)
    {
        var route = RestSupport.Route(context, serving);
        serving.Router.EnsureAvailable(route);
        var headers = context.Request.Headers;
        var body = await HttpIo.ReadBodyAsync(context.Request, options.MaxRequestBodyBytes, call.Buffers);
        var headerLength = BinaryTensorCodec.ParseHeaderLength(ReadHeader(headers, BinaryTensorCodec.HeaderLengthHeader), body.Length);
        var request = V2JsonCodec.DecodeRequest(body, headerLength, call.Buffers);
        var binary = BinaryOutputs.For(request);
        var coding = HttpCompression.ChooseResponseCoding(headers.AcceptEncoding);
        call.ModelCalled();
        var response = await serving.InferAsync(route, request, context.RequestAborted);
        if (!binary.Any && coding == ContentCoding.Identity)
        {
            await HttpIo.WriteJsonAsync(context.Response, 200, response, V2JsonCodec.WriteResponse);
        }
        else
        {
            await HttpIo.WriteInferResponseAsync(context.Response, response, binary.Mask(response), coding);
        }
    }

    private static string? ReadHeader(IHeaderDictionary headers, string name) =>
        headers.TryGetValue(name, out var value) && value.Count > 0 ? value.ToString() : null;

    /// <summary>v1 <c>instances</c> or columnar <c>inputs</c> → <c>predictions</c>.</summary>
    private static async Task PredictV1Async(HttpContext context, ServingLayer serving, GatewayOptions options, InferenceCall call)
    {
        var route = RestSupport.Route(context, serving);
        serving.Router.EnsureAvailable(route);
        var body = await HttpIo.ReadBodyAsync(context.Request, options.MaxRequestBodyBytes, call.Buffers);
        var metadata = await serving.MetadataAsync(route);
        var request = V1JsonCodec.DecodeRequest(body.Span, metadata, call.Buffers);
        var rows = request.Inputs[0].Shape.Length > 0 ? request.Inputs[0].Shape[0] : 1;
        call.ModelCalled();
        var response = await serving.InferAsync(route, request, context.RequestAborted);
        await HttpIo.WriteJsonAsync(context.Response, 200, (response, rows), static (w, s) => V1JsonCodec.WriteResponse(w, s.response, s.rows));
    }

    private static async Task RunAsync(
        HttpContext context, ServingLayer serving, GatewayOptions options, ILogger logger,
        Func<HttpContext, ServingLayer, GatewayOptions, InferenceCall, Task> handle)
    {
        InferenceCall call;
        try
        {
            call = serving.BeginInference();
        }
        catch (InferenceException e)
        {
            context.Response.Headers.RetryAfter = "1";
            await HttpIo.WriteErrorAsync(context.Response, FailureTable.HttpStatus(e.Kind), e.Message);
            return;
        }

        using (call)
        {
            try
            {
                await handle(context, serving, options, call);
            }
            catch (Exception e)
            {
                call.Failed(e);

                // A client that went away reads no answer and is no server failure worth logging.
                if (!context.RequestAborted.IsCancellationRequested)
                {
                    await RestSupport.WriteFailureAsync(context, logger, e);
                }
            }
        }
    }
}
