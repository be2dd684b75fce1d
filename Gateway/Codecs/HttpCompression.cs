using System.IO.Compression;
using System.Runtime.InteropServices;
using Microsoft.Extensions.Primitives;
using Orleans.KServe.Contracts.Inference;

namespace Orleans.KServe.Gateway.Codecs;

/// <summary>The HTTP content codings the REST endpoints read and write.</summary>
public enum ContentCoding : byte
{
    /// <summary>No coding.</summary>
    Identity = 0,
    /// <summary><c>gzip</c> (RFC 1952).</summary>
    Gzip,
    /// <summary><c>deflate</c>: the zlib format (RFC 1950); raw deflate data is accepted in requests too.</summary>
    Deflate,
}

/// <summary>
/// Request and response compression: <c>Content-Encoding</c> of a request body and the coding chosen from a
/// request's <c>Accept-Encoding</c> for the answer.
/// </summary>
public static class HttpCompression
{
    /// <summary>
    /// The coding a request's <c>Content-Encoding</c> names. Throws <see cref="InferenceException"/> (400) for a
    /// coding the server cannot decode, naming it.
    /// </summary>
    public static ContentCoding ParseContentEncoding(string? value)
    {
        var name = value.AsSpan().Trim();
        if (name.IsEmpty || name.Equals("identity", StringComparison.OrdinalIgnoreCase))
        {
            return ContentCoding.Identity;
        }

        if (name.Equals("gzip", StringComparison.OrdinalIgnoreCase) || name.Equals("x-gzip", StringComparison.OrdinalIgnoreCase))
        {
            return ContentCoding.Gzip;
        }

        if (name.Equals("deflate", StringComparison.OrdinalIgnoreCase))
        {
            return ContentCoding.Deflate;
        }

        throw InferenceException.Invalid($"unsupported Content-Encoding '{value}': the server reads gzip, deflate and identity");
    }

    /// <summary>
    /// The coding for an answer given the request's <c>Accept-Encoding</c>: gzip when acceptable, else deflate,
    /// else none. A coding with <c>q=0</c> is refused; only codings named explicitly are used.
    /// </summary>
    public static ContentCoding ChooseResponseCoding(StringValues acceptEncoding)
    {
        if (acceptEncoding.Count == 0)
        {
            return ContentCoding.Identity;
        }

        var gzip = false;
        var deflate = false;
        foreach (var value in acceptEncoding)
        {
            var rest = value.AsSpan();
            while (!rest.IsEmpty)
            {
                var comma = rest.IndexOf(',');
                var item = comma < 0 ? rest : rest[..comma];
                rest = comma < 0 ? default : rest[(comma + 1)..];
                var semicolon = item.IndexOf(';');
                var coding = (semicolon < 0 ? item : item[..semicolon]).Trim();
                if (semicolon >= 0 && IsRefused(item[(semicolon + 1)..]))
                {
                    continue;
                }

                if (coding.Equals("gzip", StringComparison.OrdinalIgnoreCase) || coding.Equals("x-gzip", StringComparison.OrdinalIgnoreCase))
                {
                    gzip = true;
                }
                else if (coding.Equals("deflate", StringComparison.OrdinalIgnoreCase))
                {
                    deflate = true;
                }
            }
        }

        return gzip ? ContentCoding.Gzip : deflate ? ContentCoding.Deflate : ContentCoding.Identity;
    }

    /// <summary>True when the parameters of an Accept-Encoding item hold a weight of zero (<c>q=0</c>, <c>q=0.000</c>).</summary>
    private static bool IsRefused(ReadOnlySpan<char> parameters)
    {
        while (!parameters.IsEmpty)
        {
            var semicolon = parameters.IndexOf(';');
            var parameter = (semicolon < 0 ? parameters : parameters[..semicolon]).Trim();
            parameters = semicolon < 0 ? default : parameters[(semicolon + 1)..];
            var equals = parameter.IndexOf('=');
            if (equals < 0 || !parameter[..equals].Trim().Equals("q", StringComparison.OrdinalIgnoreCase))
            {
                continue;
            }

            var weight = parameter[(equals + 1)..].Trim();
            return weight.Length > 0 && weight[0] == '0' && !weight[1..].ContainsAnyExcept(".0");
        }

        return false;
    }

    /// <summary>The token for a coding in <c>Content-Encoding</c>.</summary>
    public static string Name(ContentCoding coding) => coding switch
    {
        ContentCoding.Gzip => "gzip",
        ContentCoding.Deflate => "deflate",
        _ => "identity",
    };

    /// <summary>A stream that compresses into <paramref name="destination"/> (left open when the compressor is disposed).</summary>
    public static Stream Compressor(Stream destination, ContentCoding coding) => coding switch
    {
        ContentCoding.Gzip => new GZipStream(destination, CompressionLevel.Fastest, leaveOpen: true),
        ContentCoding.Deflate => new ZLibStream(destination, CompressionLevel.Fastest, leaveOpen: true),
        _ => throw new ArgumentOutOfRangeException(nameof(coding), coding, "no compressor for the identity coding"),
    };

    /// <summary>
    /// Decompresses <paramref name="body"/> into an array rented from <paramref name="buffers"/>. Throws
    /// <see cref="InferenceException"/>: 413 when the decompressed body exceeds <paramref name="limit"/> (read no
    /// further than that), 400 when the data is not valid for the coding.
    /// </summary>
    public static ReadOnlyMemory<byte> Decompress(ReadOnlyMemory<byte> body, ContentCoding coding, long limit, PooledBuffers buffers)
    {
        if (coding == ContentCoding.Identity)
        {
            return body;
        }

        if (!MemoryMarshal.TryGetArray(body, out var segment))
        {
            segment = new ArraySegment<byte>(body.ToArray());
        }

        using var source = new MemoryStream(segment.Array!, segment.Offset, segment.Count, writable: false);
        using Stream decompressor = coding == ContentCoding.Gzip
            ? new GZipStream(source, CompressionMode.Decompress)
            : IsZlib(body.Span)
                ? new ZLibStream(source, CompressionMode.Decompress)
                : new DeflateStream(source, CompressionMode.Decompress);

        // One byte past the limit tells "over the limit" from "exactly the limit".
        var ceiling = (int)Math.Min(limit + 1, Array.MaxLength);
        var buffer = buffers.Rent((int)Math.Min(ceiling, Math.Max(16L * 1024, body.Length * 4L)));
        var length = 0;
        try
        {
            while (true)
            {
                if (length == buffer.Length)
                {
                    if (length >= ceiling)
                    {
                        break;
                    }

                    var larger = buffers.Rent((int)Math.Min(ceiling, buffer.Length * 2L));
                    buffer.AsSpan(0, length).CopyTo(larger);
                    buffer = larger;
                }

                var read = decompressor.Read(buffer, length, Math.Min(buffer.Length, ceiling) - length);
                if (read == 0)
                {
                    break;
                }

                length += read;
            }
        }
        catch (InvalidDataException e)
        {
            throw InferenceException.Invalid($"the {Name(coding)} request body cannot be decompressed: {e.Message}");
        }

        if (length > limit)
        {
            throw new InferenceException(InferenceErrorKind.PayloadTooLarge,
                $"decompressed request body exceeds the limit of {limit} bytes");
        }

        return buffer.AsMemory(0, length);
    }

    /// <summary>True when the data starts with a zlib header (RFC 1950): method 8, window at most 32 KiB, check bits valid.</summary>
    private static bool IsZlib(ReadOnlySpan<byte> data) =>
        data.Length >= 2 && (data[0] & 0x0F) == 8 && (data[0] >> 4) <= 7 && ((data[0] << 8) | data[1]) % 31 == 0;
}
