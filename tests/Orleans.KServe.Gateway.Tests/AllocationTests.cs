using System.Globalization;
using System.Text;
using Orleans.KServe.Gateway.Codecs;
using Xunit.Abstractions;

namespace Orleans.KServe.Gateway.Tests;

/// <summary>
/// Allocation bounds (bytes allocated on the decoding thread, not timings): a v2 JSON request's tensor data is parsed
/// straight into one pooled buffer, so decoding costs the tensor's bytes at most, and nothing big once the pool is warm.
/// </summary>
public sealed class AllocationTests(ITestOutputHelper output)
{
    private const int Elements = 1_000_000;
    private const long TensorBytes = 4L * 1024 * 1024;   // one FP32 tensor of 1,000,000 elements, as the pool rounds it
    private const long Slack = 64 * 1024;

    private static byte[] BigRequest()
    {
        var json = new StringBuilder(Elements * 6 + 200);
        json.Append("""{"id":"big","inputs":[{"name":"x","shape":[1000,1000],"datatype":"FP32","data":[""");
        for (var i = 0; i < Elements; i++)
        {
            if (i > 0)
            {
                json.Append(',');
            }

            json.Append(((i % 1000) * 0.5).ToString(CultureInfo.InvariantCulture));
        }

        json.Append("]}]}");
        return Encoding.UTF8.GetBytes(json.ToString());
    }

    [Fact]
    public void Decoding_a_million_FP32_elements_allocates_the_tensor_buffer_at_most_and_nothing_when_warm()
    {
        var body = BigRequest();
        using (var warmUp = new PooledBuffers())
        {
            // JIT and static initialisation; a small tensor, so the large pool bucket stays cold.
            V2JsonCodec.DecodeRequest("""{"inputs":[{"name":"x","shape":[2],"datatype":"FP32","data":[1,2]}]}"""u8, warmUp);
        }

        var cold = new PooledBuffers();
        var before = GC.GetAllocatedBytesForCurrentThread();
        var request = V2JsonCodec.DecodeRequest(body, cold);
        var coldBytes = GC.GetAllocatedBytesForCurrentThread() - before;

        var tensor = Assert.Single(request.Inputs);
        Assert.Equal(4 * Elements, tensor.Data.Length);
        var values = LE.ToFloats(tensor.Data);
        Assert.Equal(0f, values[0]);
        Assert.Equal(0.5f, values[1]);
        Assert.Equal(499.5f, values[999]);
        Assert.Equal(499.5f, values[^1]);
        Assert.True(coldBytes <= TensorBytes + Slack, $"cold decode allocated {coldBytes:N0} bytes");
        cold.Dispose();

        using var warm = new PooledBuffers();
        before = GC.GetAllocatedBytesForCurrentThread();
        var again = V2JsonCodec.DecodeRequest(body, warm);
        var warmBytes = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Equal(4 * Elements, Assert.Single(again.Inputs).Data.Length);
        output.WriteLine($"cold decode: {coldBytes:N0} bytes allocated; warm decode: {warmBytes:N0} bytes allocated");
        Assert.True(warmBytes <= Slack, $"warm decode allocated {warmBytes:N0} bytes");
    }
}
