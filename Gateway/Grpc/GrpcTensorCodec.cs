using System.Buffers.Binary;
using System.Collections.Immutable;
using System.Runtime.InteropServices;
using Google.Protobuf;
using Google.Protobuf.Collections;
using Orleans.KServe.Contracts.Inference;
using Orleans.KServe.Contracts.Tensors;
using Orleans.KServe.Gateway.Codecs;
using Orleans.KServe.Grpc;
using ContractParameter = Orleans.KServe.Contracts.Inference.InferParameter;
using GrpcParameter = Orleans.KServe.Grpc.InferParameter;

namespace Orleans.KServe.Gateway.Grpc;

/// <summary>
/// Converts v2 gRPC messages to and from <see cref="InferenceRequest"/> / <see cref="InferenceResponse"/>.
/// Raw contents map to tensors without copying (the request message owns the bytes for the call); typed
/// contents are packed into one pooled buffer per tensor.
/// </summary>
public static class GrpcTensorCodec
{
    /// <summary>Decodes a request; throws 400 (<see cref="InferenceException"/>) naming what is wrong.</summary>
    public static InferenceRequest DecodeRequest(ModelInferRequest message, PooledBuffers buffers)
    {
        var raw = message.RawInputContents;
        if (raw.Count > 0 && raw.Count != message.Inputs.Count)
        {
            throw InferenceException.Invalid(
                $"raw_input_contents has {raw.Count} entries but the request has {message.Inputs.Count} inputs; there must be one per input");
        }

        var inputs = ImmutableArray.CreateBuilder<Tensor>(message.Inputs.Count);
        for (var i = 0; i < message.Inputs.Count; i++)
        {
            var input = message.Inputs[i];
            var label = string.IsNullOrEmpty(input.Name) ? $"inputs[{i}]" : $"input '{input.Name}'";
            if (string.IsNullOrEmpty(input.Name))
            {
                throw InferenceException.Invalid($"inputs[{i}] has no name");
            }

            if (!TensorDataTypes.TryParse(input.Datatype.AsSpan(), out var type))
            {
                throw InferenceException.Invalid(
                    $"{label} has datatype '{input.Datatype}'; expected one of {string.Join(", ", TensorDataTypes.All.Select(t => t.ToProtocolName()))}");
            }

            var shape = input.Shape.ToArray();
            if (!ShapeMath.TryElementCount(shape, out var count))
            {
                throw InferenceException.Invalid($"{label} has an invalid shape {ShapeMath.Format(shape)}");
            }

            ReadOnlyMemory<byte> data;
            if (raw.Count > 0)
            {
                if (input.Contents is not null)
                {
                    throw InferenceException.Invalid($"{label} has typed contents while the request uses raw_input_contents; use one or the other");
                }

                data = raw[i].Memory;
                CheckRawLength(label, type, shape, count, data.Span);
            }
            else
            {
                data = ReadContents(label, type, count, input.Contents, buffers);
            }

            inputs.Add(new Tensor(input.Name, type, ImmutableArray.Create(shape), data));
        }

        var outputs = ImmutableArray.CreateBuilder<RequestedOutput>(message.Outputs.Count);
        foreach (var output in message.Outputs)
        {
            outputs.Add(new RequestedOutput(output.Name, ToContract(output.Parameters)));
        }

        var id = string.IsNullOrEmpty(message.Id) ? Guid.NewGuid().ToString() : message.Id;
        return new InferenceRequest(id, inputs.MoveToImmutable(), outputs.MoveToImmutable(), ToContract(message.Parameters));
    }

    private static void CheckRawLength(string label, TensorDataType type, long[] shape, long count, ReadOnlySpan<byte> data)
    {
        if (type.IsFixedSize())
        {
            var expected = count * type.ElementSize();
            if (data.Length != expected)
            {
                throw InferenceException.Invalid(
                    $"{label} has {data.Length} raw bytes but shape {ShapeMath.Format(shape)} of {type.ToProtocolName()} needs {expected}");
            }

            return;
        }

        long elements = 0;
        var rest = data;
        while (!rest.IsEmpty)
        {
            if (rest.Length < 4)
            {
                throw InferenceException.Invalid($"{label}: a BYTES element's 4-byte length prefix is truncated");
            }

            var length = BinaryPrimitives.ReadUInt32LittleEndian(rest);
            if (length > (uint)(rest.Length - 4))
            {
                throw InferenceException.Invalid($"{label}: a BYTES element declares {length} bytes but only {rest.Length - 4} remain");
            }

            rest = rest[(4 + (int)length)..];
            elements++;
        }

        if (elements != count)
        {
            throw InferenceException.Invalid($"{label} has {elements} raw BYTES elements but shape {ShapeMath.Format(shape)} needs {count}");
        }
    }

    private static ReadOnlyMemory<byte> ReadContents(string label, TensorDataType type, long count, InferTensorContents? contents, PooledBuffers buffers)
    {
        contents ??= new InferTensorContents();
        if (type is TensorDataType.FP16 or TensorDataType.BF16)
        {
            throw InferenceException.Invalid($"{label} is {type.ToProtocolName()}, which has no typed contents: send it in raw_input_contents");
        }

        if (type == TensorDataType.Bytes)
        {
            var elements = contents.BytesContents;
            CheckCount(label, type, count, elements.Count, "bytes_contents");
            var size = 0L;
            foreach (var element in elements)
            {
                size += 4 + element.Length;
            }

            var bytes = buffers.Rent(checked((int)size));
            var offset = 0;
            foreach (var element in elements)
            {
                BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(offset), (uint)element.Length);
                element.Span.CopyTo(bytes.AsSpan(offset + 4));
                offset += 4 + element.Length;
            }

            return bytes.AsMemory(0, offset);
        }

        var byteCount = checked((int)(count * type.ElementSize()));
        var array = buffers.Rent(byteCount);
        var target = array.AsSpan(0, byteCount);
        switch (type)
        {
            case TensorDataType.Bool:
                CheckCount(label, type, count, contents.BoolContents.Count, "bool_contents");
                for (var i = 0; i < target.Length; i++)
                {
                    target[i] = contents.BoolContents[i] ? (byte)1 : (byte)0;
                }

                break;
            case TensorDataType.Int8:
                Narrow(label, type, count, contents.IntContents, "int_contents", sbyte.MinValue, sbyte.MaxValue, (span, i, v) => span[i] = (byte)(sbyte)v, target);
                break;
            case TensorDataType.Int16:
                Narrow(label, type, count, contents.IntContents, "int_contents", short.MinValue, short.MaxValue, (span, i, v) => BinaryPrimitives.WriteInt16LittleEndian(span[(i * 2)..], (short)v), target);
                break;
            case TensorDataType.Int32:
                CheckCount(label, type, count, contents.IntContents.Count, "int_contents");
                Copy(contents.IntContents, MemoryMarshal.Cast<byte, int>(target));
                break;
            case TensorDataType.Int64:
                CheckCount(label, type, count, contents.Int64Contents.Count, "int64_contents");
                Copy(contents.Int64Contents, MemoryMarshal.Cast<byte, long>(target));
                break;
            case TensorDataType.UInt8:
                NarrowUnsigned(label, type, count, contents.UintContents, byte.MaxValue, (span, i, v) => span[i] = (byte)v, target);
                break;
            case TensorDataType.UInt16:
                NarrowUnsigned(label, type, count, contents.UintContents, ushort.MaxValue, (span, i, v) => BinaryPrimitives.WriteUInt16LittleEndian(span[(i * 2)..], (ushort)v), target);
                break;
            case TensorDataType.UInt32:
                CheckCount(label, type, count, contents.UintContents.Count, "uint_contents");
                Copy(contents.UintContents, MemoryMarshal.Cast<byte, uint>(target));
                break;
            case TensorDataType.UInt64:
                CheckCount(label, type, count, contents.Uint64Contents.Count, "uint64_contents");
                Copy(contents.Uint64Contents, MemoryMarshal.Cast<byte, ulong>(target));
                break;
            case TensorDataType.FP32:
                CheckCount(label, type, count, contents.Fp32Contents.Count, "fp32_contents");
                Copy(contents.Fp32Contents, MemoryMarshal.Cast<byte, float>(target));
                break;
            case TensorDataType.FP64:
                CheckCount(label, type, count, contents.Fp64Contents.Count, "fp64_contents");
                Copy(contents.Fp64Contents, MemoryMarshal.Cast<byte, double>(target));
                break;
            default:
                throw InferenceException.Invalid($"{label} has datatype {type.ToProtocolName()}, which typed contents cannot carry");
        }

        return array.AsMemory(0, byteCount);
    }

    // Little-endian hosts only: the protocol's byte order is the machine's.
    private static void Copy<T>(RepeatedField<T> source, Span<T> target)
    {
        for (var i = 0; i < target.Length; i++)
        {
            target[i] = source[i];
        }
    }

    private delegate void Store(Span<byte> target, int index, long value);

    private static void Narrow(string label, TensorDataType type, long count, RepeatedField<int> source, string field, int min, int max, Store store, Span<byte> target)
    {
        CheckCount(label, type, count, source.Count, field);
        for (var i = 0; i < source.Count; i++)
        {
            var v = source[i];
            if (v < min || v > max)
            {
                throw InferenceException.Invalid($"{label} is {type.ToProtocolName()}: value {v} is out of range");
            }

            store(target, i, v);
        }
    }

    private static void NarrowUnsigned(string label, TensorDataType type, long count, RepeatedField<uint> source, uint max, Store store, Span<byte> target)
    {
        CheckCount(label, type, count, source.Count, "uint_contents");
        for (var i = 0; i < source.Count; i++)
        {
            var v = source[i];
            if (v > max)
            {
                throw InferenceException.Invalid($"{label} is {type.ToProtocolName()}: value {v} is out of range");
            }

            store(target, i, v);
        }
    }

    private static void CheckCount(string label, TensorDataType type, long expected, int actual, string field)
    {
        if (actual != expected)
        {
            throw InferenceException.Invalid($"{label} ({type.ToProtocolName()}) has {actual} values in contents.{field} but its shape needs {expected}");
        }
    }

    /// <summary>
    /// Encodes a response: raw contents when the request was raw or an output has no typed list (FP16, BF16);
    /// typed contents otherwise. Raw outputs wrap the response's arrays without copying.
    /// </summary>
    public static ModelInferResponse EncodeResponse(InferenceResponse response, bool raw)
    {
        raw |= response.Outputs.Any(o => o.DataType is TensorDataType.FP16 or TensorDataType.BF16);
        var message = new ModelInferResponse
        {
            ModelName = response.ModelName,
            ModelVersion = response.ModelVersion ?? "",
            Id = response.Id,
        };
        AddParameters(message.Parameters, response.Parameters);
        foreach (var output in response.Outputs)
        {
            var tensor = new ModelInferResponse.Types.InferOutputTensor { Name = output.Name, Datatype = output.DataType.ToProtocolName() };
            tensor.Shape.Add(output.Shape);
            if (raw)
            {
                message.RawOutputContents.Add(UnsafeByteOperations.UnsafeWrap(output.Data));
            }
            else
            {
                tensor.Contents = ToContents(output);
            }

            message.Outputs.Add(tensor);
        }

        return message;
    }

    private static InferTensorContents ToContents(Tensor tensor)
    {
        var contents = new InferTensorContents();
        var data = tensor.Data.Span;
        switch (tensor.DataType)
        {
            case TensorDataType.Bool:
                foreach (var b in data)
                {
                    contents.BoolContents.Add(b != 0);
                }

                break;
            case TensorDataType.Int8:
                foreach (var b in MemoryMarshal.Cast<byte, sbyte>(data))
                {
                    contents.IntContents.Add(b);
                }

                break;
            case TensorDataType.Int16:
                foreach (var v in MemoryMarshal.Cast<byte, short>(data))
                {
                    contents.IntContents.Add(v);
                }

                break;
            case TensorDataType.Int32:
                contents.IntContents.AddRange(MemoryMarshal.Cast<byte, int>(data).ToArray());
                break;
            case TensorDataType.Int64:
                contents.Int64Contents.AddRange(MemoryMarshal.Cast<byte, long>(data).ToArray());
                break;
            case TensorDataType.UInt8:
                foreach (var b in data)
                {
                    contents.UintContents.Add(b);
                }

                break;
            case TensorDataType.UInt16:
                foreach (var v in MemoryMarshal.Cast<byte, ushort>(data))
                {
                    contents.UintContents.Add(v);
                }

                break;
            case TensorDataType.UInt32:
                contents.UintContents.AddRange(MemoryMarshal.Cast<byte, uint>(data).ToArray());
                break;
            case TensorDataType.UInt64:
                contents.Uint64Contents.AddRange(MemoryMarshal.Cast<byte, ulong>(data).ToArray());
                break;
            case TensorDataType.FP32:
                contents.Fp32Contents.AddRange(MemoryMarshal.Cast<byte, float>(data).ToArray());
                break;
            case TensorDataType.FP64:
                contents.Fp64Contents.AddRange(MemoryMarshal.Cast<byte, double>(data).ToArray());
                break;
            case TensorDataType.Bytes:
                while (data.Length >= 4)
                {
                    var length = (int)BinaryPrimitives.ReadUInt32LittleEndian(data);
                    contents.BytesContents.Add(ByteString.CopyFrom(data.Slice(4, length)));
                    data = data[(4 + length)..];
                }

                break;
            default:
                throw new InvalidOperationException($"{tensor.DataType} has no typed contents");
        }

        return contents;
    }

    /// <summary>Converts protocol parameters to the contract's.</summary>
    public static ImmutableDictionary<string, ContractParameter>? ToContract(MapField<string, GrpcParameter> parameters)
    {
        if (parameters.Count == 0)
        {
            return null;
        }

        var result = InferParameters.Empty.ToBuilder();
        foreach (var (key, value) in parameters)
        {
            result[key] = value.ParameterChoiceCase switch
            {
                GrpcParameter.ParameterChoiceOneofCase.BoolParam => ContractParameter.Of(value.BoolParam),
                GrpcParameter.ParameterChoiceOneofCase.Int64Param => ContractParameter.Of(value.Int64Param),
                GrpcParameter.ParameterChoiceOneofCase.StringParam => ContractParameter.Of(value.StringParam),
                GrpcParameter.ParameterChoiceOneofCase.DoubleParam => ContractParameter.Of(value.DoubleParam),
                GrpcParameter.ParameterChoiceOneofCase.Uint64Param => new ContractParameter(InferParameterKind.UInt64, UInt64Value: value.Uint64Param),
                _ => throw InferenceException.Invalid($"parameter '{key}' has no value"),
            };
        }

        return result.ToImmutable();
    }

    private static void AddParameters(MapField<string, GrpcParameter> target, IReadOnlyDictionary<string, ContractParameter>? parameters)
    {
        if (parameters is null)
        {
            return;
        }

        foreach (var (key, value) in parameters)
        {
            target[key] = value.Kind switch
            {
                InferParameterKind.Bool => new GrpcParameter { BoolParam = value.BoolValue },
                InferParameterKind.Int64 => new GrpcParameter { Int64Param = value.Int64Value },
                InferParameterKind.Double => new GrpcParameter { DoubleParam = value.DoubleValue },
                InferParameterKind.UInt64 => new GrpcParameter { Uint64Param = value.UInt64Value },
                _ => new GrpcParameter { StringParam = value.StringValue ?? "" },
            };
        }
    }
}
