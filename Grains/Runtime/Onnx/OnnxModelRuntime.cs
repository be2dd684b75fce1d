using System.Buffers;
using System.Buffers.Binary;
using System.Collections.Immutable;
using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Tensor = Orleans.KServe.Contracts.Tensors.Tensor;
using Orleans.KServe.Contracts.Models;
using Orleans.KServe.Contracts.Tensors;

namespace Orleans.KServe.Grains.Runtime.Onnx;

/// <summary>One ONNX model in an ONNX Runtime CPU session. <see cref="InferenceSession.Run(RunOptions, IReadOnlyCollection{string}, IReadOnlyCollection{OrtValue}, IReadOnlyCollection{string})"/> is thread-safe.</summary>
public sealed class OnnxModelRuntime : IModelRuntime
{
    // ORT refuses a null data pointer, which is what pinning an empty buffer gives; empty tensors point here instead.
    private static readonly byte[] EmptyPinned = GC.AllocateArray<byte>(8, pinned: true);

    private readonly InferenceSession _session;
    private readonly RunOptions _runOptions = new();

    private OnnxModelRuntime(InferenceSession session, ImmutableArray<TensorMetadata> inputs, ImmutableArray<TensorMetadata> outputs, bool bytesAreText)
    {
        _session = session;
        Inputs = inputs;
        Outputs = outputs;
        BytesAreText = bytesAreText;
    }

    /// <inheritdoc />
    public string Platform => "onnxruntime_onnx";

    /// <inheritdoc />
    /// <remarks>
    /// True when the graph uses an operator that decodes strings as UTF-8 (StringNormalizer, RegexFullMatch,
    /// Tokenizer), which fail inside the runtime on other bytes; a graph that only moves strings (Identity, Gather,
    /// LabelEncoder) serves any bytes, as Triton's ONNX backend does.
    /// </remarks>
    public bool BytesAreText { get; }

    /// <inheritdoc />
    public ImmutableArray<TensorMetadata> Inputs { get; }

    /// <inheritdoc />
    public ImmutableArray<TensorMetadata> Outputs { get; }

    /// <summary>Opens <paramref name="path"/> with <paramref name="intraOpThreads"/> threads per execution, no spinning, one inter-op thread.</summary>
    public static OnnxModelRuntime Open(string path, int intraOpThreads)
    {
        var options = new SessionOptions
        {
            IntraOpNumThreads = Math.Max(1, intraOpThreads),
            InterOpNumThreads = 1,
            ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
            GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
        };

        // Spinning threads would burn the cores other executions and the gateway need.
        options.AddSessionConfigEntry("session.intra_op.allow_spinning", "0");
        options.AddSessionConfigEntry("session.inter_op.allow_spinning", "0");

        InferenceSession session;
        try
        {
            session = new InferenceSession(path, options);
        }
        catch (OnnxRuntimeException e)
        {
            throw new ModelLoadException($"ONNX Runtime cannot load '{Path.GetFileName(path)}': {e.Message}", e);
        }
        finally
        {
            options.Dispose();
        }

        try
        {
            var inputs = Describe(session.InputNames, session.InputMetadata, "input");
            var outputs = Describe(session.OutputNames, session.OutputMetadata, "output");
            var text = inputs.Any(i => i.DataType == TensorDataType.Bytes)
                && OnnxOperatorScan.OperatorTypes(path).Overlaps(OnnxOperatorScan.TextOperators);
            return new OnnxModelRuntime(session, inputs, outputs, text);
        }
        catch
        {
            session.Dispose();
            throw;
        }
    }

    private static ImmutableArray<TensorMetadata> Describe(IReadOnlyList<string> names, IReadOnlyDictionary<string, NodeMetadata> metadata, string role)
    {
        var result = ImmutableArray.CreateBuilder<TensorMetadata>(names.Count);
        foreach (var name in names)
        {
            var node = metadata[name];
            if (node.OnnxValueType != OnnxValueType.ONNX_TYPE_TENSOR)
            {
                throw new ModelLoadException(
                    $"{role} '{name}' is a {Describe(node.OnnxValueType)}, not a tensor; only tensor {role}s can be served " +
                    "(for scikit-learn classifiers convert with zipmap disabled)");
            }

            var dataType = OnnxTypes.ToDataType(node.ElementDataType);
            if (dataType == TensorDataType.Unknown)
            {
                throw new ModelLoadException($"{role} '{name}' has element type {node.ElementDataType}, which the protocol cannot carry");
            }

            var shape = node.Dimensions.Select(d => d < 0 ? -1L : d).ToImmutableArray();
            result.Add(new TensorMetadata(name, dataType, shape));
        }

        return result.MoveToImmutable();
    }

    private static string Describe(OnnxValueType type) => type switch
    {
        OnnxValueType.ONNX_TYPE_SEQUENCE => "sequence",
        OnnxValueType.ONNX_TYPE_MAP => "map",
        OnnxValueType.ONNX_TYPE_OPTIONAL => "optional",
        OnnxValueType.ONNX_TYPE_SPARSETENSOR => "sparse tensor",
        _ => type.ToString(),
    };

    /// <inheritdoc />
    public RuntimeResult Execute(ImmutableArray<Tensor> inputs, ImmutableArray<string> outputNames)
    {
        var started = Stopwatch.GetTimestamp();
        var count = inputs.Length;
        var names = new string[count];
        var values = new OrtValue[count];
        var pins = new MemoryHandle[count];
        try
        {
            for (var i = 0; i < count; i++)
            {
                var tensor = inputs[i];
                names[i] = tensor.Name;
                values[i] = tensor.DataType == TensorDataType.Bytes
                    ? CreateStringValue(tensor)
                    : CreateNumericValue(tensor, ref pins[i]);
            }

            var prepared = Stopwatch.GetTimestamp();
            using var results = _session.Run(_runOptions, names, values, outputNames);
            var ran = Stopwatch.GetTimestamp();
            var outputs = ImmutableArray.CreateBuilder<Tensor>(outputNames.Length);
            for (var i = 0; i < outputNames.Length; i++)
            {
                outputs.Add(ReadOutput(outputNames[i], results[i]));
            }

            return new RuntimeResult(outputs.MoveToImmutable(), prepared - started, ran - prepared, Stopwatch.GetTimestamp() - ran);
        }
        catch (OnnxRuntimeException e)
        {
            throw new ModelExecutionException(e.Message, e);
        }
        finally
        {
            foreach (var value in values)
            {
                value?.Dispose();
            }

            foreach (var pin in pins)
            {
                pin.Dispose();
            }
        }
    }

    private static unsafe OrtValue CreateNumericValue(Tensor tensor, ref MemoryHandle pin)
    {
        var shape = tensor.Shape.ToArray();
        nint pointer;
        if (tensor.Data.IsEmpty)
        {
            pointer = (nint)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(EmptyPinned));
        }
        else
        {
            // The caller owns the buffer; it stays pinned only for this execution.
            pin = MemoryMarshal.AsMemory(tensor.Data).Pin();
            pointer = (nint)pin.Pointer;
        }

        return OrtValue.CreateTensorValueWithData(
            OrtMemoryInfo.DefaultInstance, OnnxTypes.ToElementType(tensor.DataType), shape, pointer, tensor.Data.Length);
    }

    private static OrtValue CreateStringValue(Tensor tensor)
    {
        var value = OrtValue.CreateTensorWithEmptyStrings(OrtAllocator.DefaultInstance, tensor.Shape.ToArray());
        var data = tensor.Data.Span;
        var index = 0;
        while (!data.IsEmpty)
        {
            var length = (int)BinaryPrimitives.ReadUInt32LittleEndian(data);
            value.StringTensorSetElementAt(data.Slice(4, length), index++);
            data = data[(4 + length)..];
        }

        return value;
    }

    private static Tensor ReadOutput(string name, OrtValue value)
    {
        var info = value.GetTensorTypeAndShape();
        var dataType = OnnxTypes.ToDataType(info.ElementDataType);
        var shape = ImmutableArray.Create(info.Shape);
        if (dataType == TensorDataType.Bytes)
        {
            var elements = (int)info.ElementCount;
            var size = 0;
            for (var i = 0; i < elements; i++)
            {
                size += 4 + value.GetStringElementAsSpan(i).Length;
            }

            var buffer = new byte[size];
            var offset = 0;
            for (var i = 0; i < elements; i++)
            {
                var element = value.GetStringElementAsSpan(i);
                BinaryPrimitives.WriteUInt32LittleEndian(buffer.AsSpan(offset), (uint)element.Length);
                element.CopyTo(buffer.AsSpan(offset + 4));
                offset += 4 + element.Length;
            }

            return new Tensor(name, dataType, shape, buffer);
        }

        // The output array belongs to the response from here on (see Tensor's ownership note).
        var raw = value.GetTensorMutableRawData();
        return new Tensor(name, dataType, shape, raw.ToArray());
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _session.Dispose();
        _runOptions.Dispose();
    }
}
