using System.Text.Encodings.Web;
using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Orleans.KServe.Contracts.Inference;
using Orleans.KServe.Gateway.Codecs;
using Orleans.Runtime;

namespace Orleans.KServe.Gateway.Endpoints;

/// <summary>Reading bodies within the limit and writing JSON answers and errors.</summary>
internal static class HttpIo
{
    [ThreadStatic]
    private static Utf8JsonWriter? t_writer;

    /// <summary>Reads the whole body into a pooled array; 413 over <paramref name="limit"/>.</summary>
    public static async ValueTask<ReadOnlyMemory<byte>> ReadBodyAsync(HttpRequest request, long limit, PooledBuffers buffers)
    {
        var declared = request.ContentLength;
        if (declared > limit)
        {
            throw TooLarge(declared.Value, limit);
        }

        // This method enforces the limit itself so that the answer is a JSON 413 naming it, not Kestrel's bare one.
        if (request.HttpContext.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } sizeLimit)
        {
            sizeLimit.MaxRequestBodySize = null;
        }

        var body = request.Body;
        var buffer = buffers.Rent(declared is > 0 ? (int)declared.Value : 16 * 1024);
        var length = 0;
        while (true)
        {
            if (length == buffer.Length)
            {
                if (declared is not null)
                {
                    // Kestrel enforces the declared length; a longer body cannot arrive here.
                    break;
                }

                var larger = buffers.Rent(checked(buffer.Length * 2));
                buffer.AsSpan(0, length).CopyTo(larger);
                buffer = larger;
            }

            var read = await body.ReadAsync(buffer.AsMemory(length));
            if (read == 0)
            {
                break;
            }

            length += read;
            if (length > limit)
            {
                throw TooLarge(length, limit);
            }
        }

        return buffer.AsMemory(0, length);
    }

    private static InferenceException TooLarge(long size, long limit) =>
        new(InferenceErrorKind.PayloadTooLarge, $"request body of {size} bytes exceeds the limit of {limit} bytes");

    /// <summary>Writes a JSON body produced by <paramref name="write"/>, with its Content-Length.</summary>
    public static async Task WriteJsonAsync<TState>(HttpResponse response, int status, TState state, Action<Utf8JsonWriter, TState> write)
    {
        using var output = new PooledBufferWriter();
        var writer = t_writer ??= new Utf8JsonWriter(output, new JsonWriterOptions { SkipValidation = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping });
        writer.Reset(output);
        try
        {
            write(writer, state);
            writer.Flush();
        }
        finally
        {
            writer.Reset(Stream.Null);
        }

        response.StatusCode = status;
        response.ContentType = "application/json";
        response.ContentLength = output.WrittenMemory.Length;
        await response.Body.WriteAsync(output.WrittenMemory);
    }

    /// <summary>Writes <c>{"error": message}</c>.</summary>
    public static Task WriteErrorAsync(HttpResponse response, int status, string message) =>
        WriteJsonAsync(response, status, message, static (w, m) =>
        {
            w.WriteStartObject();
            w.WriteString("error", m);
            w.WriteEndObject();
        });

    /// <summary>Maps a failure to its status and message: the one rule for every endpoint.</summary>
    public static (int Status, string Message) Classify(Exception e) => e switch
    {
        InferenceException ie => (ie.HttpStatus, ie.Message),
        BadHttpRequestException bad => (bad.StatusCode, bad.Message),
        TimeoutException => (503, $"the model did not answer in time: {e.Message}"),
        SiloUnavailableException or OrleansMessageRejectionException => (503, $"the model's silo is unavailable: {e.Message}"),
        OperationCanceledException => (503, "the request was cancelled"),
        _ => (500, $"internal error: {e.Message}"),
    };
}
