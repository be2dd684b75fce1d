using System.Collections.Immutable;
using System.Text.Json;
using Orleans.KServe.Contracts.Inference;
using Orleans.KServe.Contracts.Tensors;

namespace Orleans.KServe.Gateway.Codecs;

/// <summary>
/// The Open Inference Protocol's JSON request and response bodies. Input data is parsed straight into one
/// contiguous pooled buffer per tensor (whatever order the fields come in); responses are written straight to
/// the response's buffer writer.
/// </summary>
public static class V2JsonCodec
{
    private static readonly JsonReaderOptions ReaderOptions = new() { MaxDepth = 64 };

    /// <summary>
    /// Decodes a request body. Tensor buffers are rented from <paramref name="buffers"/>, which the caller returns
    /// once the inference call has completed. Throws <see cref="InferenceException"/> (400) naming what is wrong.
    /// </summary>
    public static InferenceRequest DecodeRequest(ReadOnlySpan<byte> json, PooledBuffers buffers)
    {
        var none = new BinarySection(ReadOnlyMemory<byte>.Empty, headerGiven: false);
        return DecodeRequest(json, ref none, buffers);
    }

    /// <summary>
    /// Decodes a request body that may carry binary tensor data: the first <paramref name="headerLength"/> bytes of
    /// <paramref name="body"/> are the JSON header and the rest the binary data of the inputs that have the
    /// parameter <c>binary_data_size</c>, in their order (no header length: the whole body is JSON). Binary inputs
    /// are slices of <paramref name="body"/>, so the body must stay alive as long as the request's tensors; JSON
    /// inputs are rented from <paramref name="buffers"/>. Throws <see cref="InferenceException"/> (400).
    /// </summary>
    public static InferenceRequest DecodeRequest(ReadOnlyMemory<byte> body, int? headerLength, PooledBuffers buffers)
    {
        if (headerLength is not { } length)
        {
            return DecodeRequest(body.Span, buffers);
        }

        if ((uint)length > (uint)body.Length)
        {
            throw InferenceException.Invalid($"{BinaryTensorCodec.HeaderLengthHeader} {length} is outside the request body of {body.Length} bytes");
        }

        var section = new BinarySection(body[length..], headerGiven: true);
        return DecodeRequest(body.Span[..length], ref section, buffers);
    }

    private static InferenceRequest DecodeRequest(ReadOnlySpan<byte> json, ref BinarySection binary, PooledBuffers buffers)
    {
        try
        {
            return Decode(json, ref binary, buffers);
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

    private static InferenceRequest Decode(ReadOnlySpan<byte> json, ref BinarySection binary, PooledBuffers buffers)
    {
        JsonText.EnsureUtf8(json);
        var reader = new Utf8JsonReader(json, ReaderOptions);
        if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
        {
            throw InferenceException.Invalid("the request body must be a JSON object");
        }

        string? id = null;
        ImmutableDictionary<string, InferParameter>? parameters = null;
        var inputs = ImmutableArray<Tensor>.Empty;
        var outputs = ImmutableArray<RequestedOutput>.Empty;
        var sawInputs = false;
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            if (reader.ValueTextEquals("id"u8))
            {
                reader.Read();
                id = reader.TokenType == JsonTokenType.String
                    ? reader.GetString()
                    : throw InferenceException.Invalid("'id' must be a string");
            }
            else if (reader.ValueTextEquals("parameters"u8))
            {
                reader.Read();
                parameters = ReadParameters(ref reader, "parameters");
            }
            else if (reader.ValueTextEquals("inputs"u8))
            {
                reader.Read();
                inputs = ReadInputs(ref reader, json.Length, ref binary, buffers);
                sawInputs = true;
            }
            else if (reader.ValueTextEquals("outputs"u8))
            {
                reader.Read();
                outputs = ReadOutputs(ref reader);
            }
            else
            {
                reader.Read();
                reader.Skip();
            }
        }

        if (reader.TokenType != JsonTokenType.EndObject || reader.Read())
        {
            throw InferenceException.Invalid("malformed JSON: content after the request object");
        }

        if (!sawInputs)
        {
            throw InferenceException.Invalid("the request has no 'inputs'");
        }

        BinaryTensorCodec.CheckFullyUsed(binary);

        return new InferenceRequest(id ?? Guid.NewGuid().ToString(), inputs, outputs, parameters);
    }

    private static ImmutableArray<Tensor> ReadInputs(ref Utf8JsonReader reader, int bodyLength, ref BinarySection binary, PooledBuffers buffers)
    {
        if (reader.TokenType != JsonTokenType.StartArray)
        {
            throw InferenceException.Invalid("'inputs' must be an array");
        }

        var inputs = ImmutableArray.CreateBuilder<Tensor>();
        while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
        {
            inputs.Add(ReadInput(ref reader, inputs.Count, bodyLength, ref binary, buffers));
        }

        return inputs.ToImmutable();
    }

    private static Tensor ReadInput(ref Utf8JsonReader reader, int position, int bodyLength, ref BinarySection binary, PooledBuffers buffers)
    {
        if (reader.TokenType != JsonTokenType.StartObject)
        {
            throw InferenceException.Invalid($"inputs[{position}] must be an object");
        }

        string? name = null;
        long[]? shape = null;
        var dataType = TensorDataType.Unknown;
        Utf8JsonReader data = default;
        var hasData = false;
        var binarySize = -1L;
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            if (reader.ValueTextEquals("name"u8))
            {
                reader.Read();
                name = reader.TokenType == JsonTokenType.String ? reader.GetString() : throw InferenceException.Invalid($"inputs[{position}].name must be a string");
            }
            else if (reader.ValueTextEquals("shape"u8))
            {
                reader.Read();
                shape = ReadShape(ref reader, name ?? $"inputs[{position}]");
            }
            else if (reader.ValueTextEquals("datatype"u8))
            {
                reader.Read();
                if (reader.TokenType != JsonTokenType.String || !TensorDataTypes.TryParse(reader.ValueSpan, out dataType))
                {
                    throw InferenceException.Invalid(
                        $"inputs[{position}].datatype must be one of {string.Join(", ", TensorDataTypes.All.Select(t => t.ToProtocolName()))}");
                }
            }
            else if (reader.ValueTextEquals("data"u8))
            {
                reader.Read();
                if (reader.TokenType is not (JsonTokenType.StartArray or JsonTokenType.Number or JsonTokenType.String or JsonTokenType.True or JsonTokenType.False))
                {
                    throw InferenceException.Invalid($"inputs[{position}].data must be an array");
                }

                // Shape and datatype may come after the data: keep a copy of the reader here and parse once the object is read.
                data = reader;
                hasData = true;
                reader.Skip();
            }
            else if (reader.ValueTextEquals("parameters"u8))
            {
                reader.Read();
                binarySize = ReadBinaryDataSize(ref reader, name is null ? $"inputs[{position}]" : $"input '{name}'");
            }
            else
            {
                reader.Read();
                reader.Skip();
            }
        }

        var label = name is null ? $"inputs[{position}]" : $"input '{name}'";
        if (name is null)
        {
            throw InferenceException.Invalid($"inputs[{position}] has no 'name'");
        }

        if (shape is null)
        {
            throw InferenceException.Invalid($"{label} has no 'shape'");
        }

        if (dataType == TensorDataType.Unknown)
        {
            throw InferenceException.Invalid($"{label} has no 'datatype'");
        }

        if (binarySize >= 0)
        {
            if (hasData)
            {
                throw InferenceException.Invalid($"{label} has both 'data' and the parameter '{BinaryTensorCodec.BinaryDataSize}': a binary input carries no 'data'");
            }

            return new Tensor(name, dataType, ImmutableArray.Create(shape), BinaryTensorCodec.TakeInput(ref binary, name, dataType, shape, binarySize));
        }

        if (!hasData)
        {
            throw InferenceException.Invalid($"{label} has no 'data'");
        }

        if (!ShapeMath.TryElementCount(shape, out var count) || count > (bodyLength / 2) + 1)
        {
            // Every JSON element takes at least one byte: a shape that needs more than the body holds is wrong.
            throw InferenceException.Invalid($"{label} has shape {ShapeMath.Format(shape)}, more elements than the request carries");
        }

        var bytes = JsonElementCodec.ReadData(ref data, dataType, count, name, buffers);
        return new Tensor(name, dataType, ImmutableArray.Create(shape), bytes);
    }

    /// <summary>Reads an input's parameters object for <c>binary_data_size</c> (-1 when absent); other parameters are skipped.</summary>
    private static long ReadBinaryDataSize(ref Utf8JsonReader reader, string label)
    {
        if (reader.TokenType != JsonTokenType.StartObject)
        {
            throw InferenceException.Invalid($"{label}: 'parameters' must be an object");
        }

        var size = -1L;
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            if (reader.ValueTextEquals("binary_data_size"u8))
            {
                reader.Read();
                if (reader.TokenType != JsonTokenType.Number || !reader.TryGetInt64(out size) || size < 0)
                {
                    throw InferenceException.Invalid($"{label}: parameter '{BinaryTensorCodec.BinaryDataSize}' must be a non-negative integer");
                }
            }
            else
            {
                reader.Read();
                reader.Skip();
            }
        }

        return size;
    }

    private static long[] ReadShape(ref Utf8JsonReader reader, string label)
    {
        if (reader.TokenType != JsonTokenType.StartArray)
        {
            throw InferenceException.Invalid($"{label}: 'shape' must be an array of non-negative integers");
        }

        Span<long> dims = stackalloc long[16];
        var rank = 0;
        while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
        {
            if (reader.TokenType != JsonTokenType.Number || !reader.TryGetInt64(out var dim) || dim < 0)
            {
                throw InferenceException.Invalid($"{label}: 'shape' must be an array of non-negative integers");
            }

            if (rank == dims.Length)
            {
                throw InferenceException.Invalid($"{label}: 'shape' has more than {dims.Length} dimensions");
            }

            dims[rank++] = dim;
        }

        return dims[..rank].ToArray();
    }

    private static ImmutableArray<RequestedOutput> ReadOutputs(ref Utf8JsonReader reader)
    {
        if (reader.TokenType != JsonTokenType.StartArray)
        {
            throw InferenceException.Invalid("'outputs' must be an array");
        }

        var outputs = ImmutableArray.CreateBuilder<RequestedOutput>();
        while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
        {
            if (reader.TokenType != JsonTokenType.StartObject)
            {
                throw InferenceException.Invalid($"outputs[{outputs.Count}] must be an object");
            }

            string? name = null;
            ImmutableDictionary<string, InferParameter>? parameters = null;
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                if (reader.ValueTextEquals("name"u8))
                {
                    reader.Read();
                    name = reader.TokenType == JsonTokenType.String ? reader.GetString() : null;
                }
                else if (reader.ValueTextEquals("parameters"u8))
                {
                    reader.Read();
                    parameters = ReadParameters(ref reader, $"outputs[{outputs.Count}].parameters");
                }
                else
                {
                    reader.Read();
                    reader.Skip();
                }
            }

            outputs.Add(new RequestedOutput(name ?? throw InferenceException.Invalid($"outputs[{outputs.Count}] has no 'name'"), parameters));
        }

        return outputs.ToImmutable();
    }

    /// <summary>Reads a parameters object: booleans, integers, numbers and strings; other values are kept as their JSON text.</summary>
    public static ImmutableDictionary<string, InferParameter> ReadParameters(ref Utf8JsonReader reader, string label)
    {
        if (reader.TokenType != JsonTokenType.StartObject)
        {
            throw InferenceException.Invalid($"'{label}' must be an object");
        }

        var result = InferParameters.Empty.ToBuilder();
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            var key = reader.GetString()!;
            reader.Read();
            InferParameter value;
            switch (reader.TokenType)
            {
                case JsonTokenType.True:
                case JsonTokenType.False:
                    value = InferParameter.Of(reader.GetBoolean());
                    break;
                case JsonTokenType.String:
                    value = InferParameter.Of(reader.GetString()!);
                    break;
                case JsonTokenType.Number:
                    value = reader.TryGetInt64(out var integer) ? InferParameter.Of(integer)
                        : reader.TryGetUInt64(out var unsigned) ? new InferParameter(InferParameterKind.UInt64, UInt64Value: unsigned)
                        : InferParameter.Of(reader.GetDouble());
                    break;
                default:
                    using (var document = JsonDocument.ParseValue(ref reader))
                    {
                        value = InferParameter.Of(document.RootElement.GetRawText());
                    }

                    break;
            }

            result[key] = value;
        }

        return result.ToImmutable();
    }

    private static readonly JsonEncodedText ModelNameProperty = JsonEncodedText.Encode("model_name");
    private static readonly JsonEncodedText ModelVersionProperty = JsonEncodedText.Encode("model_version");
    private static readonly JsonEncodedText IdProperty = JsonEncodedText.Encode("id");
    private static readonly JsonEncodedText ParametersProperty = JsonEncodedText.Encode("parameters");
    private static readonly JsonEncodedText OutputsProperty = JsonEncodedText.Encode("outputs");
    private static readonly JsonEncodedText NameProperty = JsonEncodedText.Encode("name");
    private static readonly JsonEncodedText DatatypeProperty = JsonEncodedText.Encode("datatype");
    private static readonly JsonEncodedText ShapeProperty = JsonEncodedText.Encode("shape");
    private static readonly JsonEncodedText DataProperty = JsonEncodedText.Encode("data");

    private static readonly JsonEncodedText BinaryDataSizeProperty = JsonEncodedText.Encode(BinaryTensorCodec.BinaryDataSize);

    /// <summary>Writes an inference response with every output's data as JSON.</summary>
    public static void WriteResponse(Utf8JsonWriter writer, InferenceResponse response) => WriteResponse(writer, response, default);

    /// <summary>
    /// Writes an inference response; the outputs flagged in <paramref name="binary"/> (by position) carry the
    /// parameter <c>binary_data_size</c> instead of <c>data</c>, their bytes to follow the JSON in output order.
    /// </summary>
    public static void WriteResponse(Utf8JsonWriter writer, InferenceResponse response, ReadOnlySpan<bool> binary)
    {
        writer.WriteStartObject();
        writer.WriteString(ModelNameProperty, response.ModelName);
        if (response.ModelVersion is not null)
        {
            writer.WriteString(ModelVersionProperty, response.ModelVersion);
        }

        writer.WriteString(IdProperty, response.Id);
        if (response.Parameters is { Count: > 0 } parameters)
        {
            writer.WritePropertyName(ParametersProperty);
            WriteParameters(writer, parameters);
        }

        writer.WriteStartArray(OutputsProperty);
        var outputs = response.Outputs;
        for (var i = 0; i < outputs.Length; i++)
        {
            var output = outputs[i];
            writer.WriteStartObject();
            writer.WriteString(NameProperty, output.Name);
            writer.WriteString(DatatypeProperty, output.DataType.ToProtocolName());
            writer.WriteStartArray(ShapeProperty);
            foreach (var dim in output.Shape)
            {
                writer.WriteNumberValue(dim);
            }

            writer.WriteEndArray();
            if (i < binary.Length && binary[i])
            {
                writer.WriteStartObject(ParametersProperty);
                writer.WriteNumber(BinaryDataSizeProperty, output.Data.Length);
                writer.WriteEndObject();
            }
            else
            {
                writer.WriteStartArray(DataProperty);
                JsonElementCodec.WriteData(writer, output.DataType, output.Data.Span, output.ElementCount);
                writer.WriteEndArray();
            }

            writer.WriteEndObject();
        }

        writer.WriteEndArray();
        writer.WriteEndObject();
    }

    /// <summary>Writes a parameters object.</summary>
    public static void WriteParameters(Utf8JsonWriter writer, IReadOnlyDictionary<string, InferParameter> parameters)
    {
        writer.WriteStartObject();
        foreach (var (key, value) in parameters)
        {
            switch (value.Kind)
            {
                case InferParameterKind.Bool:
                    writer.WriteBoolean(key, value.BoolValue);
                    break;
                case InferParameterKind.Int64:
                    writer.WriteNumber(key, value.Int64Value);
                    break;
                case InferParameterKind.UInt64:
                    writer.WriteNumber(key, value.UInt64Value);
                    break;
                case InferParameterKind.Double:
                    writer.WriteNumber(key, value.DoubleValue);
                    break;
                default:
                    writer.WriteString(key, value.StringValue);
                    break;
            }
        }

        writer.WriteEndObject();
    }
}
