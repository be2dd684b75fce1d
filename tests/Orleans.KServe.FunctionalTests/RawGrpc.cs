using System.Buffers.Binary;
using System.IO.Compression;
using System.Net;
using System.Net.Http.Headers;
using Google.Protobuf;
using Grpc.Core;

namespace Orleans.KServe.FunctionalTests;

/// <summary>
/// gRPC calls made byte by byte over HTTP/2 (h2c, prior knowledge), for what a generated client cannot send: frames
/// that lie about their length, pre-compressed messages, bodies that stop half way.
/// </summary>
public sealed class RawGrpc(Uri address) : IDisposable
{
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(120) };

    /// <summary>The 5-byte gRPC message header: compressed flag, then the big-endian length.</summary>
    public static byte[] Header(bool compressed, uint length)
    {
        var header = new byte[5];
        header[0] = compressed ? (byte)1 : (byte)0;
        BinaryPrimitives.WriteUInt32BigEndian(header.AsSpan(1), length);
        return header;
    }

    /// <summary>One framed message.</summary>
    public static byte[] Frame(byte[] message, bool compressed = false) => [.. Header(compressed, (uint)message.Length), .. message];

    /// <summary>A framed protobuf message.</summary>
    public static byte[] Frame(IMessage message) => Frame(message.ToByteArray());

    /// <summary>Calls <paramref name="method"/> of <c>inference.GRPCInferenceService</c> with <paramref name="body"/> as the whole request body.</summary>
    public Task<(StatusCode Status, string Message, byte[] Body)> CallAsync(string method, byte[] body, string? encoding = null, string? authority = null) =>
        CallAsync(method, new ByteArrayContent(body), encoding, authority);

    /// <summary>Calls <paramref name="method"/> with <paramref name="content"/> as the request body (and <paramref name="authority"/> as :authority).</summary>
    public async Task<(StatusCode Status, string Message, byte[] Body)> CallAsync(string method, HttpContent content, string? encoding = null, string? authority = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, new Uri(address, "/inference.GRPCInferenceService/" + method))
        {
            Content = content,
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
        };
        content.Headers.ContentType = new MediaTypeHeaderValue("application/grpc");
        request.Headers.TE.Add(new TransferCodingWithQualityHeaderValue("trailers"));
        if (authority is not null)
        {
            request.Headers.Host = authority;
        }

        if (encoding is not null)
        {
            request.Headers.Add("grpc-encoding", encoding);
        }

        using var response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        var body = await response.Content.ReadAsByteArrayAsync();

        // A trailers-only answer carries grpc-status among the headers.
        var status = Value(response.TrailingHeaders, "grpc-status") ?? Value(response.Headers, "grpc-status")
            ?? throw new InvalidOperationException($"no grpc-status in the answer (HTTP {(int)response.StatusCode} {response.Version}: {System.Text.Encoding.UTF8.GetString(body)} {response.Headers})");
        var message = Value(response.TrailingHeaders, "grpc-message") ?? Value(response.Headers, "grpc-message") ?? "";
        return ((StatusCode)int.Parse(status, System.Globalization.CultureInfo.InvariantCulture), Uri.UnescapeDataString(message), body);
    }

    private static string? Value(HttpHeaders headers, string name) => headers.TryGetValues(name, out var values) ? values.FirstOrDefault() : null;

    /// <summary>
    /// A gzip-compressed <c>ModelInferRequest</c> for <paramref name="model"/> whose one raw input holds
    /// <paramref name="inflatedBytes"/> zero bytes: a few hundred KiB that inflate to the size asked (made without
    /// holding the inflated message in memory).
    /// </summary>
    public static byte[] GzipBomb(string model, long inflatedBytes)
    {
        using var compressed = new MemoryStream();
        using (var gzip = new GZipStream(compressed, CompressionLevel.SmallestSize, leaveOpen: true))
        {
            var prefix = new MemoryStream();
            var output = new CodedOutputStream(prefix);
            output.WriteTag(1, WireFormat.WireType.LengthDelimited);
            output.WriteString(model);
            output.WriteTag(7, WireFormat.WireType.LengthDelimited);
            output.WriteLength((int)inflatedBytes);
            output.Flush();
            gzip.Write(prefix.ToArray());
            var zeros = new byte[1024 * 1024];
            for (long left = inflatedBytes; left > 0; left -= zeros.Length)
            {
                gzip.Write(zeros, 0, (int)Math.Min(zeros.Length, left));
            }
        }

        return compressed.ToArray();
    }

    public void Dispose() => _http.Dispose();
}

/// <summary>A request body that sends its first part and then waits until released before it sends the rest.</summary>
public sealed class HeldContent(byte[] first, byte[] rest) : HttpContent
{
    private readonly TaskCompletionSource _release = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Completes once the first part has been handed to the connection.</summary>
    public TaskCompletionSource FirstSent { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public void Release() => _release.TrySetResult();

    protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context)
    {
        await stream.WriteAsync(first);
        await stream.FlushAsync();
        FirstSent.TrySetResult();
        await _release.Task;
        await stream.WriteAsync(rest);
    }

    protected override bool TryComputeLength(out long length)
    {
        length = first.Length + rest.Length;
        return true;
    }
}
