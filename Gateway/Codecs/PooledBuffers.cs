using System.Buffers;

namespace Orleans.KServe.Gateway.Codecs;

/// <summary>
/// The pooled arrays one request rented: its body and the tensor buffers the codec decoded into. The request
/// handler owns this object; it returns every array to the pool once the inference call that read the tensors has
/// completed (<see cref="Dispose"/>), or abandons them to the garbage collector when a call may still be reading
/// them (<see cref="Abandon"/>).
/// </summary>
public sealed class PooledBuffers : IDisposable
{
    private byte[]?[] _rented = new byte[]?[4];
    private int _count;

    /// <summary>Rents an array of at least <paramref name="minimumLength"/> bytes.</summary>
    public byte[] Rent(int minimumLength)
    {
        var array = ArrayPool<byte>.Shared.Rent(minimumLength);
        Adopt(array);
        return array;
    }

    /// <summary>Takes an array rented from <see cref="ArrayPool{T}.Shared"/> elsewhere into this request's keeping.</summary>
    public void Adopt(byte[] array)
    {
        if (_count == _rented.Length)
        {
            Array.Resize(ref _rented, _count * 2);
        }

        _rented[_count++] = array;
    }

    /// <summary>Forgets the arrays without returning them: someone may still read them.</summary>
    public void Abandon()
    {
        Array.Clear(_rented, 0, _count);
        _count = 0;
    }

    /// <summary>Returns every rented array to the pool.</summary>
    public void Dispose()
    {
        for (var i = 0; i < _count; i++)
        {
            ArrayPool<byte>.Shared.Return(_rented[i]!);
            _rented[i] = null;
        }

        _count = 0;
    }
}
