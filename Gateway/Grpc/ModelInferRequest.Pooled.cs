using Orleans.KServe.Gateway.Codecs;

namespace Orleans.KServe.Grpc;

/// <summary>The pooled arrays that hold this request's raw contents (see <see cref="Orleans.KServe.Gateway.Grpc.InferRequestMarshaller"/>).</summary>
public sealed partial class ModelInferRequest
{
    private List<byte[]>? _pooled;

    internal void AddPooled(byte[] array) => (_pooled ??= []).Add(array);

    /// <summary>
    /// Hands the arrays behind <c>raw_input_contents</c> to <paramref name="buffers"/>, which returns them to the
    /// pool when the call that reads them is over; the message must not be read after that.
    /// </summary>
    public void AdoptPooledInto(PooledBuffers buffers)
    {
        if (_pooled is null)
        {
            return;
        }

        foreach (var array in _pooled)
        {
            buffers.Adopt(array);
        }

        _pooled = null;
    }
}
