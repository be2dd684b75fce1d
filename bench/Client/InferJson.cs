using System.Text.Json;

namespace Orleans.KServe.Bench.Client;

/// <summary>A tensor as a v2 REST JSON body or binary header describes it.</summary>
internal sealed class JsonTensor
{
    public string? Name { get; set; }

    public string? Datatype { get; set; }

    public long[]? Shape { get; set; }

    /// <summary>The <c>binary_data_size</c> parameter: the tensor's bytes follow the JSON part.</summary>
    public long? BinaryDataSize { get; set; }

    /// <summary>The <c>data</c> member, flattened; null when absent.</summary>
    public float[]? Data { get; set; }
}

/// <summary>
/// The members of a v2 infer request or response body (or the JSON part of a binary one) the client needs, read with
/// <see cref="Utf8JsonReader"/>: fast enough that timing a client's decode of a 1 MiB JSON answer measures JSON and
/// not a DOM.
/// </summary>
internal sealed class InferJson
{
    public string? ModelName { get; private set; }

    public string? Id { get; private set; }

    public string? Error { get; private set; }

    public List<JsonTensor> Inputs { get; } = [];

    public List<JsonTensor> Outputs { get; } = [];

    public static InferJson Parse(ReadOnlySpan<byte> json)
    {
        var reader = new Utf8JsonReader(json, new JsonReaderOptions { MaxDepth = 64 });
        var result = new InferJson();
        try
        {
            Expect(ref reader, JsonTokenType.StartObject);
            while (Next(ref reader) != JsonTokenType.EndObject)
            {
                var property = reader.GetString();
                Next(ref reader);
                switch (property)
                {
                    case "model_name":
                        result.ModelName = reader.GetString();
                        break;
                    case "id":
                        result.Id = reader.GetString();
                        break;
                    case "error":
                        result.Error = reader.TokenType == JsonTokenType.String ? reader.GetString() : "(not a string)";
                        break;
                    case "inputs":
                        ReadTensors(ref reader, result.Inputs);
                        break;
                    case "outputs":
                        ReadTensors(ref reader, result.Outputs);
                        break;
                    default:
                        reader.Skip();
                        break;
                }
            }
        }
        catch (JsonException e)
        {
            throw new CheckException($"the JSON is not a v2 infer body: {e.Message}");
        }
        catch (InvalidOperationException e)
        {
            throw new CheckException($"the JSON is not a v2 infer body: {e.Message}");
        }
        return result;
    }

    private static void ReadTensors(ref Utf8JsonReader reader, List<JsonTensor> tensors)
    {
        if (reader.TokenType != JsonTokenType.StartArray)
        {
            throw new JsonException("inputs/outputs is not an array");
        }
        while (Next(ref reader) != JsonTokenType.EndArray)
        {
            if (reader.TokenType != JsonTokenType.StartObject)
            {
                throw new JsonException("a tensor is not an object");
            }

            var tensor = new JsonTensor();
            while (Next(ref reader) != JsonTokenType.EndObject)
            {
                var property = reader.GetString();
                Next(ref reader);
                switch (property)
                {
                    case "name":
                        tensor.Name = reader.GetString();
                        break;
                    case "datatype":
                        tensor.Datatype = reader.GetString();
                        break;
                    case "shape":
                        tensor.Shape = ReadShape(ref reader);
                        break;
                    case "data":
                        tensor.Data = ReadData(ref reader);
                        break;
                    case "parameters":
                        tensor.BinaryDataSize = ReadBinaryDataSize(ref reader);
                        break;
                    default:
                        reader.Skip();
                        break;
                }
            }
            tensors.Add(tensor);
        }
    }

    private static long[] ReadShape(ref Utf8JsonReader reader)
    {
        if (reader.TokenType != JsonTokenType.StartArray)
        {
            throw new JsonException("shape is not an array");
        }
        var shape = new List<long>();
        while (Next(ref reader) != JsonTokenType.EndArray)
        {
            shape.Add(reader.GetInt64());
        }
        return [.. shape];
    }

    private static float[] ReadData(ref Utf8JsonReader reader)
    {
        if (reader.TokenType != JsonTokenType.StartArray)
        {
            throw new JsonException("data is not an array");
        }

        // Flat or nested by dimension; either way the values in row-major order.
        var values = new float[64];
        var count = 0;
        var depth = 1;
        while (depth > 0)
        {
            switch (Next(ref reader))
            {
                case JsonTokenType.StartArray:
                    depth++;
                    break;
                case JsonTokenType.EndArray:
                    depth--;
                    break;
                case JsonTokenType.Number:
                    if (count == values.Length)
                    {
                        Array.Resize(ref values, values.Length * 2);
                    }
                    values[count++] = reader.GetSingle();
                    break;
                default:
                    throw new JsonException($"data holds a {reader.TokenType}, not a number");
            }
        }
        Array.Resize(ref values, count);
        return values;
    }

    private static long? ReadBinaryDataSize(ref Utf8JsonReader reader)
    {
        if (reader.TokenType != JsonTokenType.StartObject)
        {
            throw new JsonException("parameters is not an object");
        }
        long? size = null;
        while (Next(ref reader) != JsonTokenType.EndObject)
        {
            var property = reader.GetString();
            Next(ref reader);
            if (property == "binary_data_size")
            {
                size = reader.GetInt64();
            }
            else
            {
                reader.Skip();
            }
        }
        return size;
    }

    private static JsonTokenType Next(ref Utf8JsonReader reader)
    {
        if (!reader.Read())
        {
            throw new JsonException("the JSON ends early");
        }
        return reader.TokenType;
    }

    private static void Expect(ref Utf8JsonReader reader, JsonTokenType type)
    {
        if (Next(ref reader) != type)
        {
            throw new JsonException($"expected {type}, found {reader.TokenType}");
        }
    }
}
