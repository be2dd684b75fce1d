using System.Runtime.InteropServices;
using Microsoft.Extensions.Time.Testing;

namespace Orleans.KServe.Gateway.Tests;

/// <summary>The connections' memory pool: whole blocks, reuse, double returns, the retention cap, idle trims, bad sizes.</summary>
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

    [Fact]
    public void What_a_burst_leaves_behind_is_released_after_two_quiet_periods()
    {
        var time = new FakeTimeProvider();
        using var pool = new TransportMemoryPoolFactory(4096, trimPeriod: TimeSpan.FromSeconds(10), time: time).Create();
        var typed = Assert.IsType<TransportMemoryPool>(pool);
        var burst = Enumerable.Range(0, 8).Select(_ => pool.Rent()).ToList();
        burst.ForEach(o => o.Dispose());
        Assert.Equal(8, typed.Retained);

        // The burst's period needed every block (its mark is 0): the first trim keeps them all.
        time.Advance(TimeSpan.FromSeconds(10));
        Assert.Equal(8, typed.Retained);

        // A whole period with no rent: all eight stayed free, so all eight go.
        time.Advance(TimeSpan.FromSeconds(10));
        Assert.Equal(0, typed.Retained);
        Assert.Equal(8, typed.Trimmed);
    }

    [Fact]
    public void Under_steady_use_only_the_blocks_no_rent_needed_are_released()
    {
        var time = new FakeTimeProvider();
        using var pool = new TransportMemoryPool(4096, maxRetainedBlocks: 16, TimeSpan.FromSeconds(10), time);
        Enumerable.Range(0, 8).Select(_ => pool.Rent()).ToList().ForEach(o => o.Dispose());
        time.Advance(TimeSpan.FromSeconds(10));

        // Each period three blocks are in use at once: five stayed free and go, three stay for the next period.
        for (var period = 0; period < 3; period++)
        {
            var inUse = Enumerable.Range(0, 3).Select(_ => pool.Rent()).ToList();
            inUse.ForEach(o => o.Dispose());
            time.Advance(TimeSpan.FromSeconds(10));
            Assert.Equal(3, pool.Retained);
        }

        Assert.Equal(5, pool.Trimmed);
    }

    [Fact]
    public void A_disposed_pool_trims_nothing_and_a_bad_trim_period_is_refused()
    {
        var time = new FakeTimeProvider();
        var pool = new TransportMemoryPool(4096, maxRetainedBlocks: 4, TimeSpan.FromSeconds(1), time);
        pool.Rent().Dispose();
        pool.Dispose();
        time.Advance(TimeSpan.FromSeconds(5));
        Assert.Equal(0, pool.Trimmed);
        Assert.Equal(0, pool.Trim());

        var e = Assert.Throws<ArgumentOutOfRangeException>(() => new TransportMemoryPool(4096, 4, TimeSpan.Zero));
        Assert.Contains("positive or infinite", e.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => new TransportMemoryPoolFactory(4096, trimPeriod: TimeSpan.FromSeconds(-1)));
    }

    [Fact]
    public void With_an_infinite_trim_period_free_blocks_stay()
    {
        var time = new FakeTimeProvider();
        using var pool = new TransportMemoryPoolFactory(4096, trimPeriod: Timeout.InfiniteTimeSpan, time: time).Create();
        pool.Rent().Dispose();
        time.Advance(TimeSpan.FromHours(1));

        Assert.Equal(1, Assert.IsType<TransportMemoryPool>(pool).Retained);
    }
}
