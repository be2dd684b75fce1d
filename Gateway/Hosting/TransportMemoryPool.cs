using System.Buffers;
using System.Collections.Concurrent;
using Microsoft.AspNetCore.Connections;

namespace Orleans.KServe.Gateway;

/// <summary>
/// Hands Kestrel's socket transport and connection pipes <see cref="TransportMemoryPool"/>s, whose blocks are larger
/// than Kestrel's own 4 KiB. Kestrel reads a socket into the free part of its current pipe block, so the block size
/// caps every <c>recv</c>: a 588 KiB image took 147 reads at 4 KiB and takes 19 at 32 KiB.
/// </summary>
/// <remarks>Registered as the application's <see cref="IMemoryPoolFactory{T}"/>, which Kestrel's socket transport takes from DI.</remarks>
public sealed class TransportMemoryPoolFactory : IMemoryPoolFactory<byte>
{
    /// <summary>Creates the factory.</summary>
    /// <param name="blockSize">Bytes per block (4 KiB to 1 MiB).</param>
    /// <param name="maxRetainedBytes">
    /// Bytes of returned blocks kept for reuse per pool (Kestrel makes one per endpoint), default 16 MiB; beyond that
    /// returned blocks go to the garbage collector. Unlike Kestrel's own pool nothing is released while idle, so this
    /// cap is what a burst can leave behind.
    /// </param>
    public TransportMemoryPoolFactory(int blockSize, long maxRetainedBytes = 16L * 1024 * 1024)
    {
        TransportMemoryPool.CheckBlockSize(blockSize);
        BlockSize = blockSize;
        MaxRetainedBytes = maxRetainedBytes;
    }

    /// <summary>Bytes per block.</summary>
    public int BlockSize { get; }

    /// <summary>Bytes of free blocks each pool keeps.</summary>
    public long MaxRetainedBytes { get; }

    /// <inheritdoc />
    public MemoryPool<byte> Create(MemoryPoolOptions? options = null) =>
        new TransportMemoryPool(BlockSize, (int)Math.Max(1, MaxRetainedBytes / BlockSize));
}

/// <summary>
/// A pool of fixed-size blocks in the pinned object heap. <see cref="Rent"/> always returns a whole block (at least
/// what was asked, up to <see cref="MaxBufferSize"/>); disposing the owner returns the block. Block owners are
/// reused with their blocks, so renting allocates nothing once the pool is warm.
/// </summary>
public sealed class TransportMemoryPool : MemoryPool<byte>
{
    /// <summary>The smallest block size: Kestrel's own.</summary>
    public const int MinBlockSize = 4096;

    /// <summary>The largest block size.</summary>
    public const int MaxBlockSize = 1024 * 1024;

    private readonly ConcurrentQueue<Block> _free = new();
    private readonly int _blockSize;
    private readonly int _maxRetained;
    private int _retained;
    private bool _disposed;

    /// <summary>Creates a pool of <paramref name="blockSize"/>-byte blocks keeping at most <paramref name="maxRetainedBlocks"/> free ones.</summary>
    public TransportMemoryPool(int blockSize, int maxRetainedBlocks)
    {
        CheckBlockSize(blockSize);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxRetainedBlocks, 1);
        _blockSize = blockSize;
        _maxRetained = maxRetainedBlocks;
    }

    /// <inheritdoc />
    public override int MaxBufferSize => _blockSize;

    /// <summary>Free blocks kept for reuse right now.</summary>
    public int Retained => Volatile.Read(ref _retained);

    internal static void CheckBlockSize(int blockSize)
    {
        if (blockSize is < MinBlockSize or > MaxBlockSize)
        {
            throw new ArgumentOutOfRangeException(nameof(blockSize), blockSize, "the transport block size must be between 4 KiB and 1 MiB");
        }
    }

    /// <inheritdoc />
    public override IMemoryOwner<byte> Rent(int minBufferSize = -1)
    {
        if (minBufferSize > _blockSize)
        {
            throw new ArgumentOutOfRangeException(nameof(minBufferSize), minBufferSize, $"this pool's blocks are {_blockSize} bytes");
        }

        // After Dispose (the transport is stopping) connections still closing get blocks that are not kept.
        if (_free.TryDequeue(out var block))
        {
            Interlocked.Decrement(ref _retained);
        }
        else
        {
            block = new Block(this, GC.AllocateUninitializedArray<byte>(_blockSize, pinned: true));
        }

        block.Rented = 1;
        return block;
    }

    private void Return(Block block)
    {
        // A second return of the same owner is ignored: queueing it twice would hand one block to two renters.
        if (Interlocked.Exchange(ref block.Rented, 0) == 0 || Volatile.Read(ref _disposed))
        {
            return;
        }

        if (Interlocked.Increment(ref _retained) > _maxRetained)
        {
            Interlocked.Decrement(ref _retained);
            return;
        }

        _free.Enqueue(block);
    }

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        Volatile.Write(ref _disposed, true);
        _free.Clear();
        Volatile.Write(ref _retained, 0);
    }

    private sealed class Block(TransportMemoryPool pool, byte[] array) : IMemoryOwner<byte>
    {
        public int Rented;

        public Memory<byte> Memory { get; } = array;

        public void Dispose() => pool.Return(this);
    }
}
