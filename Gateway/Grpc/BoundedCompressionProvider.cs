using System.IO.Compression;
using Grpc.Core;
using Grpc.Net.Compression;

namespace Orleans.KServe.Gateway.Grpc;

/// <summary>
/// gRPC's gzip and deflate message codings with a limit on the bytes one message may inflate to, enforced while
/// inflating: the gRPC server inflates a whole message into memory before it checks anything, so a 253 KiB gzip
/// message inflated to 250 MiB. Past the limit the call ends RESOURCE_EXHAUSTED; inflated bytes also count against
/// the server's request budget (<see cref="GrpcRequestGuard"/>).
/// </summary>
public sealed class BoundedCompressionProvider(string encodingName, long maxInflatedBytes) : ICompressionProvider
{
    /// <summary>The codings the server reads and writes, each bounded by <paramref name="maxInflatedBytes"/>.</summary>
    public static IList<ICompressionProvider> All(long maxInflatedBytes) =>
        [new BoundedCompressionProvider("gzip", maxInflatedBytes), new BoundedCompressionProvider("deflate", maxInflatedBytes)];

    /// <inheritdoc />
    public string EncodingName { get; } = encodingName;

    /// <inheritdoc />
    public Stream CreateCompressionStream(Stream stream, CompressionLevel? compressionLevel) => EncodingName == "gzip"
        ? new GZipStream(stream, compressionLevel ?? CompressionLevel.Fastest, leaveOpen: true)
        : new ZLibStream(stream, compressionLevel ?? CompressionLevel.Fastest, leaveOpen: true);

    /// <inheritdoc />
    public Stream CreateDecompressionStream(Stream stream) => new InflateLimit(
        EncodingName == "gzip" ? new GZipStream(stream, CompressionMode.Decompress, leaveOpen: true) : new ZLibStream(stream, CompressionMode.Decompress, leaveOpen: true),
        maxInflatedBytes, GrpcRequestGuard.Current, EncodingName);

    private sealed class InflateLimit(Stream inner, long limit, GrpcRequestGuard? guard, string coding) : Stream
    {
        private const int ReserveStep = 64 * 1024;
        private long _inflated;
        private long _reserved;

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => _inflated; set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            // One byte past the limit tells "over" from "exactly at" it; never more is asked of the inflater.
            var room = limit + 1 - _inflated;
            int read;
            try
            {
                read = inner.Read(buffer[..(int)Math.Min(buffer.Length, room)]);
            }
            catch (InvalidDataException e)
            {
                throw new RpcException(new Status(StatusCode.InvalidArgument, $"the {coding} request message cannot be inflated: {e.Message}"));
            }

            _inflated += read;
            if (_inflated > limit)
            {
                throw new RpcException(new Status(StatusCode.ResourceExhausted,
                    $"the {coding} request message inflates to more than {limit} bytes (--grpc-max-decompressed-bytes)"));
            }

            if (guard is not null && _inflated > _reserved)
            {
                var step = Math.Max(ReserveStep, _inflated - _reserved);
                guard.ReserveInflated(step);
                _reserved += step;
            }

            return read;
        }

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                inner.Dispose();
            }

            base.Dispose(disposing);
        }
    }
}
