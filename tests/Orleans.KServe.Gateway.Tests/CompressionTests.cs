using System.IO.Compression;
using Microsoft.Extensions.Primitives;
using Orleans.KServe.Contracts.Inference;
using Orleans.KServe.Gateway.Codecs;
using static Orleans.KServe.Gateway.Tests.Codec;

namespace Orleans.KServe.Gateway.Tests;

/// <summary>Content-Encoding of requests, Accept-Encoding of answers, and decompression within the body limit.</summary>
public sealed class CompressionTests
{
    private static byte[] Compress(byte[] data, Func<Stream, Stream> compressor)
    {
        using var output = new MemoryStream();
        using (var stream = compressor(output))
        {
            stream.Write(data);
        }

        return output.ToArray();
    }

    private static byte[] Gzip(byte[] data) => Compress(data, s => new GZipStream(s, CompressionLevel.Optimal, leaveOpen: true));

    private static byte[] Zlib(byte[] data) => Compress(data, s => new ZLibStream(s, CompressionLevel.Optimal, leaveOpen: true));

    private static byte[] RawDeflate(byte[] data) => Compress(data, s => new DeflateStream(s, CompressionLevel.Optimal, leaveOpen: true));

    private static byte[] Sample(int length) => Enumerable.Range(0, length).Select(i => (byte)(i * 7 % 251)).ToArray();

    [Theory]
    [InlineData(null, ContentCoding.Identity)]
    [InlineData("", ContentCoding.Identity)]
    [InlineData("identity", ContentCoding.Identity)]
    [InlineData("gzip", ContentCoding.Gzip)]
    [InlineData(" GZIP ", ContentCoding.Gzip)]
    [InlineData("x-gzip", ContentCoding.Gzip)]
    [InlineData("deflate", ContentCoding.Deflate)]
    [InlineData("Deflate", ContentCoding.Deflate)]
    public void Known_content_encodings_parse(string? value, ContentCoding expected)
    {
        Assert.Equal(expected, HttpCompression.ParseContentEncoding(value));
    }

    [Theory]
    [InlineData("br")]
    [InlineData("zstd")]
    [InlineData("gzip, deflate")]
    [InlineData("compress")]
    public void Unknown_content_encodings_are_invalid_and_named(string value)
    {
        AssertInvalid(() => HttpCompression.ParseContentEncoding(value), "unsupported Content-Encoding", $"'{value}'", "gzip, deflate");
    }

    [Theory]
    [InlineData(ContentCoding.Identity)]
    [InlineData(ContentCoding.Identity, "")]
    [InlineData(ContentCoding.Gzip, "gzip")]
    [InlineData(ContentCoding.Gzip, "gzip, deflate")]
    [InlineData(ContentCoding.Gzip, "deflate, gzip, br, zstd")]
    [InlineData(ContentCoding.Gzip, "deflate", "GZip;q=0.5")]
    [InlineData(ContentCoding.Deflate, "deflate")]
    [InlineData(ContentCoding.Deflate, "gzip;q=0, deflate")]
    [InlineData(ContentCoding.Deflate, "gzip; q=0.000 ,deflate;q=0.1")]
    [InlineData(ContentCoding.Identity, "gzip;q=0,deflate;q=0")]
    [InlineData(ContentCoding.Identity, "br")]
    [InlineData(ContentCoding.Identity, "*")]
    [InlineData(ContentCoding.Identity, "identity")]
    public void Response_coding_follows_accept_encoding(ContentCoding expected, params string[] values)
    {
        Assert.Equal(expected, HttpCompression.ChooseResponseCoding(new StringValues(values)));
    }

    public static TheoryData<ContentCoding, string> Codings => new()
    {
        { ContentCoding.Gzip, "gzip" },
        { ContentCoding.Deflate, "zlib" },
        { ContentCoding.Deflate, "raw" },
    };

    private static byte[] Encode(string format, byte[] data) => format switch
    {
        "gzip" => Gzip(data),
        "zlib" => Zlib(data),
        _ => RawDeflate(data),
    };

    [Theory]
    [MemberData(nameof(Codings))]
    public void Gzip_zlib_and_raw_deflate_bodies_decompress_into_pooled_buffers(ContentCoding coding, string format)
    {
        var data = Sample(300_000);
        using var buffers = new PooledBuffers();

        var body = HttpCompression.Decompress(Encode(format, data), coding, 1 << 20, buffers);

        Assert.Equal(data, body.ToArray());
    }

    [Theory]
    [MemberData(nameof(Codings))]
    public void A_body_of_exactly_the_limit_decompresses_and_one_byte_more_is_413(ContentCoding coding, string format)
    {
        var data = new byte[100_000];
        using var buffers = new PooledBuffers();

        Assert.Equal(data.Length, HttpCompression.Decompress(Encode(format, data), coding, data.Length, buffers).Length);

        var e = Assert.Throws<InferenceException>(() => HttpCompression.Decompress(Encode(format, data), coding, data.Length - 1, buffers));
        Assert.Equal(413, Orleans.KServe.Gateway.Serving.FailureTable.HttpStatus(e.Kind));
        Assert.Contains("decompressed request body exceeds the limit of 99999 bytes", e.Message);
    }

    [Fact]
    public void A_compression_bomb_stops_at_the_limit()
    {
        var bomb = Gzip(new byte[64 * 1024 * 1024]);
        using var buffers = new PooledBuffers();

        var e = Assert.Throws<InferenceException>(() => HttpCompression.Decompress(bomb, ContentCoding.Gzip, 1024 * 1024, buffers));

        Assert.Equal(InferenceErrorKind.PayloadTooLarge, e.Kind);
    }

    [Fact]
    public void Corrupt_compressed_data_is_invalid()
    {
        var data = Gzip(Sample(10_000));
        data[20] ^= 0xFF;
        data[21] ^= 0xFF;
        using var buffers = new PooledBuffers();

        AssertInvalid(() => HttpCompression.Decompress(data, ContentCoding.Gzip, 1 << 20, buffers), "gzip request body cannot be decompressed");
        AssertInvalid(() => HttpCompression.Decompress("not gzip"u8.ToArray(), ContentCoding.Gzip, 1 << 20, buffers), "cannot be decompressed");
    }

    [Fact]
    public void An_empty_compressed_body_is_empty()
    {
        using var buffers = new PooledBuffers();
        Assert.Equal(0, HttpCompression.Decompress(Gzip([]), ContentCoding.Gzip, 1024, buffers).Length);
    }

    [Theory]
    [InlineData(ContentCoding.Gzip)]
    [InlineData(ContentCoding.Deflate)]
    public void The_compressor_writes_into_a_pooled_buffer_what_the_decompressor_reads_back(ContentCoding coding)
    {
        var data = Sample(200_000);
        using var compressed = new PooledBufferWriter();
        var target = new BufferWriterStream(compressed);
        using (var compressor = HttpCompression.Compressor(target, coding))
        {
            compressor.Write(data.AsSpan(0, 1000));
            compressor.Write(data.AsSpan(1000));
        }

        Assert.Equal(compressed.WrittenMemory.Length, target.Length);
        using var buffers = new PooledBuffers();
        Assert.Equal(data, HttpCompression.Decompress(compressed.WrittenMemory.ToArray(), coding, 1 << 20, buffers).ToArray());

        // What standard readers expect: gzip for gzip, zlib (RFC 1950) for HTTP's deflate.
        using var reader = coding == ContentCoding.Gzip
            ? (Stream)new GZipStream(new MemoryStream(compressed.WrittenMemory.ToArray()), CompressionMode.Decompress)
            : new ZLibStream(new MemoryStream(compressed.WrittenMemory.ToArray()), CompressionMode.Decompress);
        using var back = new MemoryStream();
        reader.CopyTo(back);
        Assert.Equal(data, back.ToArray());
    }

    [Fact]
    public void Coding_names_are_the_http_tokens()
    {
        Assert.Equal("gzip", HttpCompression.Name(ContentCoding.Gzip));
        Assert.Equal("deflate", HttpCompression.Name(ContentCoding.Deflate));
        Assert.Throws<ArgumentOutOfRangeException>(() => HttpCompression.Compressor(Stream.Null, ContentCoding.Identity));
    }
}
