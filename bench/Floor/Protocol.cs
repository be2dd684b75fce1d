using System.Text.Json;
using System.Text.Json.Serialization;

namespace Orleans.KServe.Bench.Floor;

/// <summary>Open Inference Protocol v2 infer request; only the members the floor reads.</summary>
public sealed class InferRequest
{
    public string? Id { get; set; }

    public List<InferInputTensor>? Inputs { get; set; }

    /// <summary>Outputs asked for; absent or empty means every output.</summary>
    public List<InferRequestedOutput>? Outputs { get; set; }

    public RequestParameters? Parameters { get; set; }
}

/// <summary>Request-level parameters: <c>binary_data_output</c> asks for every output in binary.</summary>
public sealed class RequestParameters
{
    public bool? BinaryDataOutput { get; set; }
}

/// <summary>One requested output.</summary>
public sealed class InferRequestedOutput
{
    public string? Name { get; set; }

    public TensorParameters? Parameters { get; set; }
}

/// <summary>
/// Tensor parameters of the binary tensor data extension: <c>binary_data_size</c> on an input (its bytes follow
/// the JSON header), <c>binary_data</c> on a requested output (answer it in binary).
/// </summary>
public sealed class TensorParameters
{
    public long? BinaryDataSize { get; set; }

    public bool? BinaryData { get; set; }
}

/// <summary>One input tensor of an infer request.</summary>
public sealed class InferInputTensor
{
    public string? Name { get; set; }

    public long[]? Shape { get; set; }

    public string? Datatype { get; set; }

    public TensorParameters? Parameters { get; set; }

    /// <summary>Row-major tensor contents; nested arrays are flattened while parsing.</summary>
    [JsonConverter(typeof(FlatFloatArrayConverter))]
    public float[]? Data { get; set; }
}

/// <summary>Open Inference Protocol v2 infer response.</summary>
public sealed record InferResponse(string ModelName, string Id, InferOutputTensor[] Outputs);

/// <summary>One output tensor of an infer response.</summary>
public sealed record InferOutputTensor(string Name, string Datatype, long[] Shape, float[] Data);

/// <summary>The JSON header of an infer response whose outputs follow it in binary.</summary>
public sealed record BinaryInferResponse(string ModelName, string Id, BinaryOutputTensor[] Outputs);

/// <summary>An output whose <c>binary_data_size</c> bytes follow the JSON header.</summary>
public sealed record BinaryOutputTensor(string Name, string Datatype, long[] Shape, BinaryOutputParameters Parameters);

/// <summary>The parameters of a binary output.</summary>
public sealed record BinaryOutputParameters(long BinaryDataSize);

/// <summary>Open Inference Protocol v2 error body.</summary>
public sealed record ErrorResponse(string Error);

/// <summary>Body of the readiness and liveness probes.</summary>
public sealed record ReadyResponse(bool Ready);

/// <summary>Body of the liveness probe.</summary>
public sealed record LiveResponse(bool Live);

/// <summary>
/// Reads the <c>data</c> member of a tensor, which the protocol allows either flat
/// (<c>[1,2,3,4]</c>) or nested by dimension (<c>[[1,2],[3,4]]</c>), into one row-major array.
/// </summary>
public sealed class FlatFloatArrayConverter : JsonConverter<float[]>
{
    private const int MaxDepth = 32;

    public override float[] Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        if (reader.TokenType != JsonTokenType.StartArray)
        {
            throw new JsonException("tensor data must be a JSON array");
        }

        // Small tensors are the common case; grow only when needed.
        var buffer = new float[16];
        var count = 0;
        var depth = 0;
        do
        {
            switch (reader.TokenType)
            {
                case JsonTokenType.StartArray:
                    if (++depth > MaxDepth)
                    {
                        throw new JsonException("tensor data is nested too deeply");
                    }
                    break;
                case JsonTokenType.EndArray:
                    depth--;
                    break;
                case JsonTokenType.Number:
                    if (count == buffer.Length)
                    {
                        Array.Resize(ref buffer, buffer.Length * 2);
                    }
                    buffer[count++] = reader.GetSingle();
                    break;
                default:
                    throw new JsonException("FP32 tensor data must hold only numbers");
            }
        }
        while (depth > 0 && reader.Read());

        if (depth != 0)
        {
            throw new JsonException("tensor data array is not closed");
        }

        if (count != buffer.Length)
        {
            Array.Resize(ref buffer, count);
        }
        return buffer;
    }

    public override void Write(Utf8JsonWriter writer, float[] value, JsonSerializerOptions options)
    {
        writer.WriteStartArray();
        foreach (var element in value)
        {
            writer.WriteNumberValue(element);
        }
        writer.WriteEndArray();
    }
}

/// <summary>Source-generated serializers for every type the floor reads or writes.</summary>
[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    PropertyNameCaseInsensitive = false)]
[JsonSerializable(typeof(InferRequest))]
[JsonSerializable(typeof(InferResponse))]
[JsonSerializable(typeof(BinaryInferResponse))]
[JsonSerializable(typeof(ErrorResponse))]
[JsonSerializable(typeof(ReadyResponse))]
[JsonSerializable(typeof(LiveResponse))]
public sealed partial class FloorJsonContext : JsonSerializerContext;
