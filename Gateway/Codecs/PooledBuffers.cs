using System.Buffers;
using Orleans.KServe.Gateway.Serving;

namespace Orleans.KServe.Gateway.Codecs;

/// <summary>
/// The pooled arrays one request rented: its body and the tensor buffers the codec decoded into. The request
/// handler owns this object; it returns every array to the pool once the inference call that read the tensors has
/// completed (<see cref="Dispose"/>), or abandons them to the garbage collector when a call may still be reading
/// them (<see cref="Abandon"/>).
/// </summary>
/// <remarks>
/// With a <see cref="RequestBytesBudget"/>, every rent is taken from it first (refused with 413 / RESOURCE_EXHAUSTED
/// before the array is rented when the server holds too much already) and given back when the arrays are returned
/// or abandoned.
/// </remarks>
public sealed class PooledBuffers(RequestBytesBudget? budget = null) : IDisposable
{
    private byte[]?[] _rented = new byte[]?[4];
    private int _count;
    private long _reserved;

    /// <summary>Bytes this request has taken from the budget.</summary>
    public long Reserved => _reserved;

    /// <summary>Rents an array of at least <paramref name="minimumLength"/> bytes.</summary>
    public byte[] Rent(int minimumLength)
    {
        if (budget is not null)
        {
            budget.Reserve(minimumLength);
            _reserved += minimumLength;
        }

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
        ReleaseBudget();
    }

    private void ReleaseBudget()
    {
        budget?.Release(_reserved);
        _reserved = 0;
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
        ReleaseBudget();
    }
}
