using System.Buffers.Binary;
using System.Collections.Immutable;
using Orleans.KServe.Contracts.Inference;
using Orleans.KServe.Contracts.Models;
using Orleans.KServe.Contracts.Tensors;

namespace Orleans.KServe.Grains.Execution;

/// <summary>Checks a request against a model's declared inputs and outputs, whatever transport it came by.</summary>
public static class InputValidator
{
    /// <summary>
    /// Validates <paramref name="request"/> for <paramref name="metadata"/> and returns the output names to compute.
    /// With <paramref name="bytesAreText"/>, every BYTES element must be UTF-8 (the runtime reads them as strings).
    /// Throws <see cref="InferenceException"/> (400) naming what is wrong.
    /// </summary>
    public static ImmutableArray<string> Validate(InferenceRequest request, ModelMetadata metadata, ImmutableArray<string> allOutputs, bool bytesAreText = false)
    {
        var inputs = request.Inputs;
        if (inputs.IsDefaultOrEmpty)
        {
            throw InferenceException.Invalid($"the request has no inputs; model '{metadata.Name}' expects {Names(metadata.Inputs)}");
        }

        for (var i = 0; i < inputs.Length; i++)
        {
            var tensor = inputs[i];
            for (var j = 0; j < i; j++)
            {
                if (inputs[j].Name == tensor.Name)
                {
                    throw InferenceException.Invalid($"input '{tensor.Name}' appears more than once");
                }
            }

            var declared = metadata.FindInput(tensor.Name)
                ?? throw InferenceException.Invalid($"unknown input '{tensor.Name}' for model '{metadata.Name}'; its inputs are {Names(metadata.Inputs)}");
            CheckTensor(tensor, declared, bytesAreText, metadata.Name);
        }

        foreach (var declared in metadata.Inputs)
        {
            if (!Contains(inputs, declared.Name))
            {
                throw InferenceException.Invalid($"missing input '{declared.Name}' for model '{metadata.Name}'; it expects {Names(metadata.Inputs)}");
            }
        }

        if (request.AllOutputs)
        {
            return allOutputs;
        }

        var names = ImmutableArray.CreateBuilder<string>(request.Outputs.Length);
        foreach (var output in request.Outputs)
        {
            if (metadata.FindOutput(output.Name) is null)
            {
                throw InferenceException.Invalid($"unknown requested output '{output.Name}' for model '{metadata.Name}'; its outputs are {Names(metadata.Outputs)}");
            }

            if (names.Contains(output.Name))
            {
                throw InferenceException.Invalid($"output '{output.Name}' is requested more than once");
            }

            names.Add(output.Name);
        }

        return names.MoveToImmutable();
    }

    private static void CheckTensor(Tensor tensor, TensorMetadata declared, bool bytesAreText, string model)
    {
        if (tensor.DataType != declared.DataType)
        {
            throw InferenceException.Invalid(
                $"input '{tensor.Name}' has datatype {tensor.DataType.ToProtocolName()} but the model expects {declared.DataType.ToProtocolName()}");
        }

        var shape = tensor.Shape.AsSpan();
        var expected = declared.Shape.AsSpan();
        var mismatch = shape.Length != expected.Length;
        for (var d = 0; !mismatch && d < shape.Length; d++)
        {
            mismatch = expected[d] >= 0 && expected[d] != shape[d];
        }

        if (mismatch)
        {
            throw InferenceException.Invalid(
                $"input '{tensor.Name}' has shape {ShapeMath.Format(shape)} but the model expects {ShapeMath.Format(expected)} (-1 is any size)");
        }

        if (!ShapeMath.TryElementCount(shape, out var count))
        {
            throw InferenceException.Invalid($"input '{tensor.Name}' has an invalid shape {ShapeMath.Format(shape)}");
        }

        if (tensor.DataType.IsFixedSize())
        {
            var bytes = count * tensor.DataType.ElementSize();
            if (bytes != tensor.Data.Length)
            {
                throw InferenceException.Invalid(
                    $"input '{tensor.Name}' carries {tensor.Data.Length} bytes but shape {ShapeMath.Format(shape)} of {tensor.DataType.ToProtocolName()} needs {bytes}");
            }
        }
        else
        {
            var elements = CountByteElements(tensor.Data.Span, bytesAreText, out var notText);
            if (elements != count)
            {
                throw InferenceException.Invalid(
                    elements < 0
                        ? $"input '{tensor.Name}' has a truncated BYTES element"
                        : $"input '{tensor.Name}' has {elements} BYTES elements but shape {ShapeMath.Format(shape)} needs {count}");
            }

            if (notText >= 0)
            {
                throw InferenceException.Invalid(
                    $"input '{tensor.Name}' element {notText} is not valid UTF-8: model '{model}' reads its BYTES inputs as text (ONNX strings)");
            }
        }
    }

    /// <summary>Counts the length-prefixed elements of a BYTES buffer; -1 when one is truncated.</summary>
    public static long CountByteElements(ReadOnlySpan<byte> data) => CountByteElements(data, requireUtf8: false, out _);

    /// <summary>
    /// Counts the length-prefixed elements of a BYTES buffer (-1 when one is truncated); with
    /// <paramref name="requireUtf8"/>, <paramref name="notUtf8"/> is the index of the first element that is not UTF-8 (else -1).
    /// </summary>
    public static long CountByteElements(ReadOnlySpan<byte> data, bool requireUtf8, out long notUtf8)
    {
        notUtf8 = -1;
        long count = 0;
        while (!data.IsEmpty)
        {
            if (data.Length < 4)
            {
                return -1;
            }

            var length = BinaryPrimitives.ReadUInt32LittleEndian(data);
            if (length > (uint)(data.Length - 4))
            {
                return -1;
            }

            if (requireUtf8 && notUtf8 < 0 && !System.Text.Unicode.Utf8.IsValid(data.Slice(4, (int)length)))
            {
                notUtf8 = count;
            }

            data = data[(4 + (int)length)..];
            count++;
        }

        return count;
    }

    private static bool Contains(ImmutableArray<Tensor> inputs, string name)
    {
        foreach (var input in inputs)
        {
            if (input.Name == name)
            {
                return true;
            }
        }

        return false;
    }

    private static string Names(ImmutableArray<TensorMetadata> tensors) =>
        string.Join(", ", tensors.Select(t => $"'{t.Name}' {t.DataType.ToProtocolName()}{ShapeMath.Format(t.Shape.AsSpan())}"));
}
