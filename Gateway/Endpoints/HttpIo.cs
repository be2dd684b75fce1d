using System.Buffers;
using System.Globalization;
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

    /// <summary>
    /// Reads the whole body into a pooled array, decompressed when its <c>Content-Encoding</c> is gzip or deflate
    /// (400 for a coding the server cannot read); 413 when the body, or the body once decompressed, is over
    /// <paramref name="limit"/>.
    /// </summary>
    public static ValueTask<ReadOnlyMemory<byte>> ReadBodyAsync(HttpRequest request, long limit, PooledBuffers buffers)
    {
        // No Content-Encoding: straight to the read, without another async layer.
        var encoding = request.Headers.ContentEncoding;
        return encoding.Count == 0 ? ReadRawBodyAsync(request, limit, buffers) : ReadEncodedBodyAsync(request, encoding.ToString(), limit, buffers);
    }

    private static async ValueTask<ReadOnlyMemory<byte>> ReadEncodedBodyAsync(HttpRequest request, string encoding, long limit, PooledBuffers buffers)
    {
        var coding = HttpCompression.ParseContentEncoding(encoding);
        var body = await ReadRawBodyAsync(request, limit, buffers);
        return HttpCompression.Decompress(body, coding, limit, buffers);
    }

    private static async ValueTask<ReadOnlyMemory<byte>> ReadRawBodyAsync(HttpRequest request, long limit, PooledBuffers buffers)
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

            int read;
            try
            {
                read = await body.ReadAsync(buffer.AsMemory(length));
            }
            catch (IOException e) when (!request.HttpContext.RequestAborted.IsCancellationRequested)
            {
                // Kestrel reports some malformed framing this way (a chunk size past 2^31 - 1), not as a bad request.
                throw InferenceException.Invalid($"the request body cannot be read: {e.Message}");
            }

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
        Serialize(output, state, write);
        response.StatusCode = status;
        response.ContentType = "application/json";
        response.ContentLength = output.WrittenMemory.Length;
        await response.Body.WriteAsync(output.WrittenMemory);
    }

    private static void Serialize<TState>(PooledBufferWriter output, TState state, Action<Utf8JsonWriter, TState> write)
    {
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
    }

    /// <summary>Unflushed bytes after which a binary response is flushed before its next piece is written.</summary>
    private const int FlushThreshold = 64 * 1024;

    /// <summary>
    /// Writes a v2 infer response (200) whose outputs may go binary (<paramref name="binary"/>: one flag per output,
    /// or null) and whose body may be compressed (<paramref name="coding"/>). The JSON header is followed by the
    /// binary outputs' arrays themselves, never gathered into one buffer first; compression writes into a pooled
    /// buffer so that the answer still has its Content-Length.
    /// </summary>
    public static async Task WriteInferResponseAsync(HttpResponse response, InferenceResponse inference, bool[]? binary, ContentCoding coding)
    {
        using var header = new PooledBufferWriter();
        Serialize(header, (inference, binary), static (w, s) => V2JsonCodec.WriteResponse(w, s.inference, s.binary));
        ReadOnlyMemory<byte>[] segments = binary is null ? [header.WrittenMemory] : BinaryTensorCodec.Segments(header.WrittenMemory, inference, binary);

        response.StatusCode = 200;
        if (binary is null)
        {
            response.ContentType = "application/json";
        }
        else
        {
            response.ContentType = BinaryTensorCodec.OctetStream;
            response.Headers[BinaryTensorCodec.HeaderLengthHeader] = header.WrittenMemory.Length.ToString(CultureInfo.InvariantCulture);
        }

        if (coding != ContentCoding.Identity)
        {
            using var compressed = new PooledBufferWriter();
            await using (var compressor = HttpCompression.Compressor(new BufferWriterStream(compressed), coding))
            {
                foreach (var segment in segments)
                {
                    compressor.Write(segment.Span);
                }
            }

            response.Headers.ContentEncoding = HttpCompression.Name(coding);
            response.ContentLength = compressed.WrittenMemory.Length;
            await response.Body.WriteAsync(compressed.WrittenMemory);
            return;
        }

        long length = 0;
        foreach (var segment in segments)
        {
            length += segment.Length;
        }

        response.ContentLength = length;
        var pipe = response.BodyWriter;
        foreach (var segment in segments)
        {
            if (pipe.CanGetUnflushedBytes && pipe.UnflushedBytes >= FlushThreshold)
            {
                var flushed = await pipe.FlushAsync();
                if (flushed.IsCanceled || flushed.IsCompleted)
                {
                    return;
                }
            }

            pipe.Write(segment.Span);
        }

        await pipe.FlushAsync();
    }

    /// <summary>Writes <c>{"error": message}</c>.</summary>
    public static Task WriteErrorAsync(HttpResponse response, int status, string message) =>
        WriteJsonAsync(response, status, message, static (w, m) =>
        {
            w.WriteStartObject();
            w.WriteString("error", m);
            w.WriteEndObject();
        });

}
