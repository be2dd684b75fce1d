using System.Buffers;
using System.Text.Json;
using Orleans.KServe.Gateway.Codecs;

namespace Orleans.KServe.Gateway.Tests;

/// <summary>The per-request pool scope and the pooled buffer writer.</summary>
public sealed class PooledBuffersTests
{
    [Fact]
    public void Rent_gives_at_least_the_requested_length()
    {
        using var buffers = new PooledBuffers();

        Assert.True(buffers.Rent(1).Length >= 1);
        Assert.True(buffers.Rent(1000).Length >= 1000);
        Assert.Empty(buffers.Rent(0));
    }

    [Fact]
    public void Dispose_returns_the_arrays_to_the_shared_pool()
    {
        // ArrayPool.Shared keeps a returned array in a per-thread slot: renting the same size on the same thread
        // gives it back. Other tests share the pool, so look for reuse over a few tries.
        const int size = 23_456;
        var reused = false;
        for (var attempt = 0; attempt < 5 && !reused; attempt++)
        {
            var buffers = new PooledBuffers();
            var first = buffers.Rent(size);
            buffers.Dispose();

            using var again = new PooledBuffers();
            reused = ReferenceEquals(first, again.Rent(size));
        }

        Assert.True(reused, "a disposed scope's array never came back from ArrayPool<byte>.Shared");
    }

    [Fact]
    public void Dispose_returns_every_array_even_past_the_initial_capacity()
    {
        int[] sizes = [100, 1_000, 5_000, 20_000, 70_000, 300_000];   // six different pool buckets, more than the initial 4 slots
        var returnedAll = false;
        for (var attempt = 0; attempt < 5 && !returnedAll; attempt++)
        {
            var buffers = new PooledBuffers();
            var arrays = sizes.Select(buffers.Rent).ToArray();
            buffers.Dispose();

            using var again = new PooledBuffers();
            returnedAll = sizes.Select(again.Rent).Zip(arrays).All(pair => ReferenceEquals(pair.First, pair.Second));
        }

        Assert.True(returnedAll, "not every rented array came back after Dispose");
    }

    [Fact]
    public void Abandon_forgets_the_arrays_so_Dispose_does_not_return_them()
    {
        const int size = 41_000;
        var buffers = new PooledBuffers();
        var abandoned = buffers.Rent(size);
        abandoned[0] = 42;

        buffers.Abandon();
        buffers.Dispose();

        var rented = new List<byte[]>();
        try
        {
            for (var i = 0; i < 5; i++)
            {
                rented.Add(ArrayPool<byte>.Shared.Rent(size));
            }

            Assert.DoesNotContain(rented, array => ReferenceEquals(array, abandoned));
        }
        finally
        {
            rented.ForEach(array => ArrayPool<byte>.Shared.Return(array));
        }

        Assert.Equal(42, abandoned[0]);
    }

    [Fact]
    public void Scope_can_be_used_again_after_Abandon_and_disposed_twice()
    {
        var buffers = new PooledBuffers();
        buffers.Rent(10);
        buffers.Abandon();
        var second = buffers.Rent(10);
        second[0] = 1;

        buffers.Dispose();
        buffers.Dispose();
    }

    [Fact]
    public void Writer_grows_and_keeps_what_was_written()
    {
        using var writer = new PooledBufferWriter(16);
        var expected = new List<byte>();
        for (var chunk = 0; chunk < 2_000; chunk++)
        {
            var length = 1 + chunk % 13;
            var span = writer.GetSpan(length);
            Assert.True(span.Length >= length);
            for (var i = 0; i < length; i++)
            {
                span[i] = (byte)(chunk + i);
                expected.Add((byte)(chunk + i));
            }

            writer.Advance(length);
        }

        Assert.Equal(expected.ToArray(), writer.WrittenMemory.ToArray());
    }

    [Fact]
    public void Writer_memory_and_span_honour_large_size_hints()
    {
        using var writer = new PooledBufferWriter(8);
        writer.GetSpan(3)[..3].Fill(7);
        writer.Advance(3);

        var memory = writer.GetMemory(100_000);
        Assert.True(memory.Length >= 100_000);
        memory.Span[0] = 9;
        writer.Advance(1);

        Assert.Equal(new byte[] { 7, 7, 7, 9 }, writer.WrittenMemory.ToArray());
        Assert.True(writer.GetSpan().Length >= 1);
    }

    [Fact]
    public void Writer_with_zero_initial_capacity_still_works()
    {
        using var writer = new PooledBufferWriter(0);
        writer.GetSpan()[0] = 5;
        writer.Advance(1);

        Assert.Equal(new byte[] { 5 }, writer.WrittenMemory.ToArray());
    }

    [Fact]
    public void Writer_serves_a_Utf8JsonWriter_through_several_growths()
    {
        using var output = new PooledBufferWriter(4);
        using (var json = new Utf8JsonWriter(output))
        {
            json.WriteStartArray();
            for (var i = 0; i < 10_000; i++)
            {
                json.WriteNumberValue(i);
            }

            json.WriteEndArray();
        }

        using var document = JsonDocument.Parse(output.WrittenMemory);
        Assert.Equal(Enumerable.Range(0, 10_000), document.RootElement.EnumerateArray().Select(e => e.GetInt32()));
    }

    [Fact]
    public void Writer_can_be_disposed_twice()
    {
        var writer = new PooledBufferWriter();
        writer.GetSpan(10);
        writer.Advance(10);

        writer.Dispose();
        writer.Dispose();
    }
}
