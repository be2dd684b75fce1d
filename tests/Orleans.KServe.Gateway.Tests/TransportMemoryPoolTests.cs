using System.Runtime.InteropServices;

namespace Orleans.KServe.Gateway.Tests;

/// <summary>The connections' memory pool: whole blocks, reuse, double returns, the retention cap, bad sizes.</summary>
public sealed class TransportMemoryPoolTests
{
    [Fact]
    public void Every_rent_gets_a_whole_block_however_little_was_asked()
    {
        using var pool = new TransportMemoryPoolFactory(32 * 1024).Create();

        Assert.Equal(32 * 1024, pool.MaxBufferSize);
        foreach (var size in new[] { -1, 0, 1, 4096, 32 * 1024 })
        {
            using var owner = pool.Rent(size);
            Assert.Equal(32 * 1024, owner.Memory.Length);
            Assert.True(MemoryMarshal.TryGetArray<byte>(owner.Memory, out var array));
            Assert.Equal(32 * 1024, array.Array!.Length);
        }
    }

    [Fact]
    public void A_returned_block_is_rented_again_instead_of_a_new_one()
    {
        using var pool = new TransportMemoryPool(8192, maxRetainedBlocks: 4);
        var first = pool.Rent(100);
        first.Memory.Span[0] = 42;
        var memory = first.Memory;
        first.Dispose();
        Assert.Equal(1, pool.Retained);

        using var second = pool.Rent(100);
        Assert.True(second.Memory.Span.Overlaps(memory.Span));
        Assert.Equal(0, pool.Retained);
    }

    [Fact]
    public void A_block_returned_twice_is_kept_once_and_never_handed_to_two_renters()
    {
        using var pool = new TransportMemoryPool(4096, maxRetainedBlocks: 4);
        var owner = pool.Rent();
        owner.Dispose();
        owner.Dispose();
        Assert.Equal(1, pool.Retained);

        using var a = pool.Rent();
        using var b = pool.Rent();
        Assert.False(a.Memory.Span.Overlaps(b.Memory.Span));
    }

    [Fact]
    public void Free_blocks_beyond_the_cap_go_to_the_garbage_collector()
    {
        using var pool = new TransportMemoryPool(4096, maxRetainedBlocks: 2);
        var owners = Enumerable.Range(0, 5).Select(_ => pool.Rent()).ToList();
        owners.ForEach(o => o.Dispose());

        Assert.Equal(2, pool.Retained);
    }

    [Fact]
    public void Asking_for_more_than_a_block_or_a_bad_block_size_is_refused()
    {
        using var pool = new TransportMemoryPool(4096, maxRetainedBlocks: 2);
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => pool.Rent(4097));
        Assert.Contains("blocks are 4096 bytes", e.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => new TransportMemoryPoolFactory(1024));
        Assert.Throws<ArgumentOutOfRangeException>(() => new TransportMemoryPoolFactory(2 * 1024 * 1024));
    }

    [Fact]
    public void After_dispose_rents_still_succeed_and_nothing_is_kept()
    {
        var pool = new TransportMemoryPool(4096, maxRetainedBlocks: 2);
        pool.Dispose();

        var owner = pool.Rent();
        Assert.Equal(4096, owner.Memory.Length);
        owner.Dispose();
        Assert.Equal(0, pool.Retained);
    }
}
