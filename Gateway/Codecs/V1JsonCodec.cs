using System.Collections.Immutable;
using System.Text.Json;
using Orleans.KServe.Contracts.Inference;
using Orleans.KServe.Contracts.Models;
using Orleans.KServe.Contracts.Tensors;

namespace Orleans.KServe.Gateway.Codecs;

/// <summary>
/// KServe's v1 (TF-Serving style) JSON. <c>{"instances": [...]}</c>: for a one-input model each instance is one
/// row, stacked on the batch dimension; for several inputs each instance is an object keyed by input name.
/// <c>{"inputs": ...}</c> (columnar) carries the whole tensor, or an object of tensors by input name. The answer
/// is <c>{"predictions": [...]}</c>, one entry per row: the row itself for one output, an object keyed by output
/// name for several.
/// </summary>
public static class V1JsonCodec
{
    private static readonly JsonReaderOptions ReaderOptions = new() { MaxDepth = 64 };

    /// <summary>Decodes a v1 predict body for a model with <paramref name="metadata"/>.</summary>
    public static InferenceRequest DecodeRequest(ReadOnlySpan<byte> json, ModelMetadata metadata, PooledBuffers buffers)
    {
        try
        {
            return Decode(json, metadata, buffers);
        }
        catch (JsonException e)
        {
            throw InferenceException.Invalid($"malformed JSON: {e.Message}");
        }
        catch (InvalidOperationException e)
        {
            // The reader's string accessors throw this for invalid UTF-8 and lone surrogate escapes.
            throw InferenceException.Invalid($"malformed JSON string: {e.Message}");
        }
    }

    private static InferenceRequest Decode(ReadOnlySpan<byte> json, ModelMetadata metadata, PooledBuffers buffers)
    {
        JsonText.EnsureUtf8(json);
        var reader = new Utf8JsonReader(json, ReaderOptions);
        if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
        {
            throw InferenceException.Invalid("the request body must be a JSON object");
        }

        Utf8JsonReader instances = default, columns = default;
        bool hasInstances = false, hasColumns = false;
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            var isInstances = reader.ValueTextEquals("instances"u8);
            var isInputs = reader.ValueTextEquals("inputs"u8);
            reader.Read();
            if (isInstances)
            {
                instances = reader;
                hasInstances = true;
            }
            else if (isInputs)
            {
                columns = reader;
                hasColumns = true;
            }

            reader.Skip();
        }

        if (reader.TokenType != JsonTokenType.EndObject || reader.Read())
        {
            throw InferenceException.Invalid("malformed JSON: content after the request object");
        }

        if (hasInstances == hasColumns)
        {
            throw InferenceException.Invalid("a v1 request needs exactly one of 'instances' or 'inputs'");
        }

        var inputs = hasInstances
            ? ReadInstances(ref instances, metadata, json.Length, buffers)
            : ReadColumns(ref columns, metadata, json.Length, buffers);
        return new InferenceRequest(Guid.NewGuid().ToString(), inputs, ImmutableArray<RequestedOutput>.Empty);
    }

    private static ImmutableArray<Tensor> ReadInstances(ref Utf8JsonReader reader, ModelMetadata metadata, int bodyLength, PooledBuffers buffers)
    {
        if (reader.TokenType != JsonTokenType.StartArray)
        {
            throw InferenceException.Invalid("'instances' must be an array");
        }

        var rows = CountItems(reader);
        if (rows == 0)
        {
            throw InferenceException.Invalid("'instances' is empty");
        }

        var first = reader;
        first.Read();
        if (first.TokenType == JsonTokenType.StartObject)
        {
            return ReadObjectRows(reader, rows, metadata, bodyLength, buffers);
        }

        if (metadata.Inputs.Length != 1)
        {
            throw InferenceException.Invalid(
                $"model '{metadata.Name}' has {metadata.Inputs.Length} inputs: each instance must be an object keyed by input name");
        }

        var input = metadata.Inputs[0];
        var rowShape = InferShape(first);
        var row = reader;
        row.Read();
        for (var r = 0; r < rows; r++, row.Skip(), row.Read())
        {
            if (!HasShape(row, rowShape))
            {
                throw InferenceException.Invalid(
                    $"instances[{r}] for input '{input.Name}' does not have the shape {ShapeMath.Format(rowShape)} of instances[0]: every instance must have the same shape");
            }
        }

        var shape = new long[rowShape.Length + 1];
        shape[0] = rows;
        rowShape.CopyTo(shape, 1);
        return [ReadTensor(ref reader, input, shape, bodyLength, buffers)];
    }

    private static ImmutableArray<Tensor> ReadObjectRows(Utf8JsonReader reader, int rows, ModelMetadata metadata, int bodyLength, PooledBuffers buffers)
    {
        // Each input gathers its value from every row; rows are decoded one by one and concatenated.
        var result = ImmutableArray.CreateBuilder<Tensor>(metadata.Inputs.Length);
        foreach (var input in metadata.Inputs)
        {
            var rowTensors = new Tensor[rows];
            var cursor = reader;
            cursor.Read();
            for (var row = 0; row < rows; row++, cursor.Read())
            {
                if (cursor.TokenType != JsonTokenType.StartObject)
                {
                    throw InferenceException.Invalid($"instances[{row}] must be an object keyed by input name");
                }

                if (!FindProperty(cursor, input.Name, out var value))
                {
                    throw InferenceException.Invalid($"instances[{row}] has no value for input '{input.Name}'");
                }

                var rowShape = InferShape(value);
                rowTensors[row] = ReadTensor(ref value, input, rowShape, bodyLength, buffers);
                if (row > 0 && !rowTensors[row].Shape.SequenceEqual(rowTensors[0].Shape))
                {
                    throw InferenceException.Invalid(
                        $"instances[{row}].{input.Name} has shape {ShapeMath.Format(rowTensors[row].Shape.AsSpan())}, unlike instances[0] {ShapeMath.Format(rowTensors[0].Shape.AsSpan())}");
                }

                cursor.Skip();
            }

            var stacked = new long[rowTensors[0].Shape.Length + 1];
            stacked[0] = rows;
            rowTensors[0].Shape.CopyTo(stacked, 1);
            var size = rowTensors.Sum(t => (long)t.Data.Length);
            var buffer = buffers.Rent(checked((int)size));
            var offset = 0;
            foreach (var tensor in rowTensors)
            {
                tensor.Data.Span.CopyTo(buffer.AsSpan(offset));
                offset += tensor.Data.Length;
            }

            result.Add(new Tensor(input.Name, input.DataType, ImmutableArray.Create(stacked), buffer.AsMemory(0, offset)));
        }

        // Names the rows carry that the model lacks are mistakes worth reporting, in every row.
        var check = reader;
        check.Read();
        for (var row = 0; row < rows; row++)
        {
            while (check.Read() && check.TokenType == JsonTokenType.PropertyName)
            {
                var name = check.GetString()!;
                if (metadata.FindInput(name) is null)
                {
                    throw InferenceException.Invalid($"unknown input '{name}' in instances[{row}] for model '{metadata.Name}'");
                }

                check.Read();
                check.Skip();
            }

            check.Read();
        }

        return result.MoveToImmutable();
    }

    private static ImmutableArray<Tensor> ReadColumns(ref Utf8JsonReader reader, ModelMetadata metadata, int bodyLength, PooledBuffers buffers)
    {
        if (reader.TokenType != JsonTokenType.StartObject)
        {
            if (metadata.Inputs.Length != 1)
            {
                throw InferenceException.Invalid($"model '{metadata.Name}' has {metadata.Inputs.Length} inputs: 'inputs' must be an object keyed by input name");
            }

            return [ReadTensor(ref reader, metadata.Inputs[0], InferShape(reader), bodyLength, buffers)];
        }

        var result = ImmutableArray.CreateBuilder<Tensor>();
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            var name = reader.GetString()!;
            var input = metadata.FindInput(name) ?? throw InferenceException.Invalid($"unknown input '{name}' for model '{metadata.Name}'");
            reader.Read();
            var value = reader;
            result.Add(ReadTensor(ref value, input, InferShape(reader), bodyLength, buffers));
            reader.Skip();
        }

        if (result.Count == 0)
        {
            throw InferenceException.Invalid($"'inputs' names no input; model '{metadata.Name}' expects {string.Join(", ", metadata.Inputs.Select(i => $"'{i.Name}'"))}");
        }

        return result.ToImmutable();
    }

    private static Tensor ReadTensor(ref Utf8JsonReader reader, TensorMetadata input, long[] shape, int bodyLength, PooledBuffers buffers)
    {
        if (!ShapeMath.TryElementCount(shape, out var count) || count > (bodyLength / 2) + 1)
        {
            throw InferenceException.Invalid($"input '{input.Name}' has an invalid shape {ShapeMath.Format(shape)}");
        }

        var data = JsonElementCodec.ReadData(ref reader, input.DataType, count, input.Name, buffers);
        return new Tensor(input.Name, input.DataType, ImmutableArray.Create(shape), data);
    }

    private static bool FindProperty(Utf8JsonReader reader, string name, out Utf8JsonReader value)
    {
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            var match = reader.ValueTextEquals(name);
            reader.Read();
            if (match)
            {
                value = reader;
                return true;
            }

            reader.Skip();
        }

        value = default;
        return false;
    }

    /// <summary>True when the value at <paramref name="reader"/> is nested arrays of exactly <paramref name="shape"/>.</summary>
    private static bool HasShape(Utf8JsonReader reader, ReadOnlySpan<long> shape)
    {
        if (shape.IsEmpty)
        {
            return reader.TokenType is not (JsonTokenType.StartArray or JsonTokenType.StartObject);
        }

        if (reader.TokenType != JsonTokenType.StartArray)
        {
            return false;
        }

        long count = 0;
        while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
        {
            if (!HasShape(reader, shape[1..]))
            {
                return false;
            }

            reader.Skip();
            count++;
        }

        return count == shape[0];
    }

    /// <summary>The shape of nested arrays, from the first element at each level.</summary>
    private static long[] InferShape(Utf8JsonReader reader)
    {
        var dims = new List<long>();
        while (reader.TokenType == JsonTokenType.StartArray)
        {
            var count = CountItems(reader);
            dims.Add(count);
            if (count == 0)
            {
                break;
            }

            reader.Read();
        }

        return dims.ToArray();
    }

    private static int CountItems(Utf8JsonReader reader)
    {
        var count = 0;
        while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
        {
            reader.Skip();
            count++;
        }

        return count;
    }

    private static readonly JsonEncodedText PredictionsProperty = JsonEncodedText.Encode("predictions");

    /// <summary>Writes <c>{"predictions": [...]}</c> for a response whose outputs hold <paramref name="rows"/> rows.</summary>
    public static void WriteResponse(Utf8JsonWriter writer, InferenceResponse response, long rows)
    {
        writer.WriteStartObject();
        writer.WriteStartArray(PredictionsProperty);
        var outputs = response.Outputs;
        if (outputs.Length == 1)
        {
            var output = outputs[0];
            var data = output.Data.Span;
            if (output.Shape.Length == 0)
            {
                JsonElementCodec.WriteElements(writer, output.DataType, ref data, 1);
            }
            else
            {
                WriteRows(writer, output, ref data);
            }
        }
        else if (outputs.All(o => o.Shape.Length > 0 && o.Shape[0] == rows))
        {
            var cursors = new ReadOnlyMemory<byte>[outputs.Length];
            for (var i = 0; i < outputs.Length; i++)
            {
                cursors[i] = outputs[i].Data;
            }

            for (long row = 0; row < rows; row++)
            {
                writer.WriteStartObject();
                for (var i = 0; i < outputs.Length; i++)
                {
                    var output = outputs[i];
                    writer.WritePropertyName(output.Name);
                    var data = cursors[i].Span;
                    var before = data.Length;
                    WriteNested(writer, output.DataType, ref data, output.Shape.AsSpan()[1..]);
                    cursors[i] = cursors[i][(before - data.Length)..];
                }

                writer.WriteEndObject();
            }
        }
        else
        {
            writer.WriteStartObject();
            foreach (var output in outputs)
            {
                writer.WritePropertyName(output.Name);
                var data = output.Data.Span;
                WriteNested(writer, output.DataType, ref data, output.Shape.AsSpan());
            }

            writer.WriteEndObject();
        }

        writer.WriteEndArray();
        writer.WriteEndObject();
    }

    private static void WriteRows(Utf8JsonWriter writer, Tensor output, ref ReadOnlySpan<byte> data)
    {
        var inner = output.Shape.AsSpan()[1..];
        for (long row = 0; row < output.Shape[0]; row++)
        {
            WriteNested(writer, output.DataType, ref data, inner);
        }
    }

    private static void WriteNested(Utf8JsonWriter writer, TensorDataType type, ref ReadOnlySpan<byte> data, ReadOnlySpan<long> shape)
    {
        if (shape.IsEmpty)
        {
            JsonElementCodec.WriteElements(writer, type, ref data, 1);
            return;
        }

        writer.WriteStartArray();
        if (shape.Length == 1)
        {
            JsonElementCodec.WriteElements(writer, type, ref data, shape[0]);
        }
        else
        {
            for (long i = 0; i < shape[0]; i++)
            {
                WriteNested(writer, type, ref data, shape[1..]);
            }
        }

        writer.WriteEndArray();
    }
}
