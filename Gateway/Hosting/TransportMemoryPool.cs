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
    private readonly TimeProvider _time;

    /// <summary>Creates the factory.</summary>
    /// <param name="blockSize">Bytes per block (4 KiB to 1 MiB).</param>
    /// <param name="maxRetainedBytes">
    /// Bytes of returned blocks kept for reuse per pool (Kestrel makes one per endpoint), default 16 MiB; beyond that
    /// returned blocks go to the garbage collector.
    /// </param>
    /// <param name="trimPeriod">
    /// How often each pool releases the free blocks that no rent needed since the last look (default 10 s), so
    /// what a burst left behind is gone within two periods of quiet. <see cref="Timeout.InfiniteTimeSpan"/> keeps them.
    /// </param>
    /// <param name="time">The clock of the trim timer (the system's when null).</param>
    public TransportMemoryPoolFactory(int blockSize, long maxRetainedBytes = 16L * 1024 * 1024, TimeSpan? trimPeriod = null, TimeProvider? time = null)
    {
        TransportMemoryPool.CheckBlockSize(blockSize);
        BlockSize = blockSize;
        MaxRetainedBytes = maxRetainedBytes;
        TrimPeriod = TransportMemoryPool.CheckTrimPeriod(trimPeriod ?? TransportMemoryPool.DefaultTrimPeriod);
        _time = time ?? TimeProvider.System;
    }

    /// <summary>Bytes per block.</summary>
    public int BlockSize { get; }

    /// <summary>Bytes of free blocks each pool keeps.</summary>
    public long MaxRetainedBytes { get; }

    /// <summary>How often each pool releases free blocks nothing needed.</summary>
    public TimeSpan TrimPeriod { get; }

    /// <inheritdoc />
    public MemoryPool<byte> Create(MemoryPoolOptions? options = null) =>
        new TransportMemoryPool(BlockSize, (int)Math.Max(1, MaxRetainedBytes / BlockSize), TrimPeriod, _time);
}

/// <summary>
/// A pool of fixed-size blocks in the pinned object heap. <see cref="Rent"/> always returns a whole block (at least
/// what was asked, up to <see cref="MaxBufferSize"/>); disposing the owner returns the block. Block owners are
/// reused with their blocks, so renting allocates nothing once the pool is warm.
/// </summary>
/// <remarks>
/// Trimming: the pool remembers the fewest free blocks it held since its last trim (the low-water mark). Blocks
/// that stayed free all that time were not needed by any rent, so each trim releases that many and starts a new
/// period. Under steady load the mark sits near zero and nothing goes; after a burst, the first quiet period's mark
/// is everything still free.
/// </remarks>
public sealed class TransportMemoryPool : MemoryPool<byte>
{
    /// <summary>The smallest block size: Kestrel's own.</summary>
    public const int MinBlockSize = 4096;

    /// <summary>The largest block size.</summary>
    public const int MaxBlockSize = 1024 * 1024;

    /// <summary>How often a pool releases free blocks nothing needed, unless told otherwise.</summary>
    public static readonly TimeSpan DefaultTrimPeriod = TimeSpan.FromSeconds(10);

    private readonly ConcurrentQueue<Block> _free = new();
    private readonly int _blockSize;
    private readonly int _maxRetained;
    private readonly ITimer? _trimTimer;
    private int _retained;
    private int _lowWater;
    private long _trimmed;
    private bool _disposed;

    /// <summary>
    /// Creates a pool of <paramref name="blockSize"/>-byte blocks keeping at most <paramref name="maxRetainedBlocks"/>
    /// free ones, releasing every <paramref name="trimPeriod"/> (infinite by default: never) those no rent needed.
    /// </summary>
    public TransportMemoryPool(int blockSize, int maxRetainedBlocks, TimeSpan? trimPeriod = null, TimeProvider? time = null)
    {
        CheckBlockSize(blockSize);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxRetainedBlocks, 1);
        var period = CheckTrimPeriod(trimPeriod ?? Timeout.InfiniteTimeSpan);
        _blockSize = blockSize;
        _maxRetained = maxRetainedBlocks;
        if (period != Timeout.InfiniteTimeSpan)
        {
            // Dispose stops it (Kestrel disposes its pools when its transport stops).
            _trimTimer = (time ?? TimeProvider.System).CreateTimer(static state => ((TransportMemoryPool)state!).Trim(), this, period, period);
        }
    }

    /// <inheritdoc />
    public override int MaxBufferSize => _blockSize;

    /// <summary>Free blocks kept for reuse right now.</summary>
    public int Retained => Volatile.Read(ref _retained);

    /// <summary>Free blocks released by trims so far.</summary>
    public long Trimmed => Interlocked.Read(ref _trimmed);

    internal static TimeSpan CheckTrimPeriod(TimeSpan period) =>
        period == Timeout.InfiniteTimeSpan || period > TimeSpan.Zero
            ? period
            : throw new ArgumentOutOfRangeException("trimPeriod", period, "the trim period must be positive or infinite");

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
            LowerLowWater(Interlocked.Decrement(ref _retained));
        }
        else
        {
            LowerLowWater(0);
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

    private void LowerLowWater(int free)
    {
        // A plain read first: under load the mark is already at or below what a rent leaves.
        var mark = Volatile.Read(ref _lowWater);
        while (free < mark)
        {
            var seen = Interlocked.CompareExchange(ref _lowWater, free, mark);
            if (seen == mark)
            {
                return;
            }

            mark = seen;
        }
    }

    /// <summary>
    /// Releases the blocks that stayed free since the last trim (the low-water mark) and starts a new period. The
    /// timer calls it; tests may too.
    /// </summary>
    public int Trim()
    {
        if (Volatile.Read(ref _disposed))
        {
            return 0;
        }

        var surplus = Volatile.Read(ref _lowWater);
        var released = 0;
        while (released < surplus && _free.TryDequeue(out _))
        {
            released++;
            Interlocked.Decrement(ref _retained);
        }

        // The new period starts from what is free now. A rent racing this line can leave the mark one block high,
        // so the next trim may release one block too many: a later rent allocates it again.
        Volatile.Write(ref _lowWater, Volatile.Read(ref _retained));
        Interlocked.Add(ref _trimmed, released);
        return released;
    }

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        _trimTimer?.Dispose();
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
