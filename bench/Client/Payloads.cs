using System.Runtime.InteropServices;
using System.Text.Json;
using Google.Protobuf;
using Orleans.KServe.Grpc;

namespace Orleans.KServe.Bench.Client;

/// <summary>One FP32 input tensor the benchmark sends, with the model it goes to and the output it asks for.</summary>
internal sealed record Payload(string Name, string Model, string InputName, string OutputName, long[] Shape, float[] Values)
{
    /// <summary>The request id every benchmark request carries (and every answer must echo).</summary>
    public const string RequestId = "bench";

    /// <summary>`double` with the 2×2 tensor [[1,2],[3,4]], the request of bench/rest.sh.</summary>
    public static Payload Small() => new("small", "double", "input", "output", [2, 2], [1, 2, 3, 4]);

    /// <summary>`double` with 64 KiB of FP32: shape [8192, 2].</summary>
    public static Payload Large() => new("64k", "double", "input", "output", [8192, 2], Seeded(64, 8192 * 2));

    /// <summary>One 224×224 RGB image for `resnet18`: 588 KiB of FP32.</summary>
    public static Payload ResNet18() => new("resnet18", "resnet18", "Input247", "Pooling395_Output_0", [1, 3, 224, 224], Seeded(18, 3 * 224 * 224));

    /// <summary>`double` with 1 MiB of FP32: shape [131072, 2].</summary>
    public static Payload OneMiB() => new("1mib", "double", "input", "output", [131072, 2], Seeded(1, 131072 * 2));

    /// <summary>
    /// One row for `mlp`: FP32 [1, 64], asking for `probabilities` only (FP32 [1, 10]; the model's other output,
    /// `label`, is INT64, which the checks do not read). Used by bench/batching.sh, where the batcher puts the rows of
    /// many callers into one execution.
    /// </summary>
    public static Payload Mlp() => new("mlp", "mlp", "input", "probabilities", [1, 64], Seeded(64_064, 64)) { RequestOutput = true };

    /// <summary>The payloads <c>bodies</c> writes, by name.</summary>
    public static IReadOnlyList<Payload> ForLoad() => [Small(), Large(), ResNet18()];

    /// <summary>A payload by its name (what <c>body --payload</c> takes).</summary>
    public static Payload Named(string name) => name switch
    {
        "small" => Small(),
        "64k" => Large(),
        "resnet18" => ResNet18(),
        "1mib" => OneMiB(),
        "mlp" => Mlp(),
        _ => throw new UsageException($"unknown payload '{name}' (small, 64k, resnet18, 1mib, mlp)"),
    };

    /// <summary>Whether gRPC requests name <see cref="OutputName"/> as the one output wanted (REST binary bodies always do).</summary>
    public bool RequestOutput { get; init; }

    /// <summary>
    /// Values in [0, 1) from a seeded generator: deterministic from run to run, and with as many significant digits
    /// as real data, so that their JSON text is as long as real data's.
    /// </summary>
    public static float[] Seeded(int seed, int count)
    {
        var random = new Random(seed);
        var values = new float[count];
        for (var i = 0; i < values.Length; i++)
        {
            values[i] = random.NextSingle();
        }
        return values;
    }

    /// <summary>The tensor's bytes, little-endian.</summary>
    public byte[] Bytes() => LittleEndian.Bytes(Values);

    /// <summary>A gRPC ModelInferRequest with typed contents (<c>fp32_contents</c>) or <c>raw_input_contents</c>.</summary>
    public ModelInferRequest GrpcRequest(bool raw)
    {
        var input = new ModelInferRequest.Types.InferInputTensor { Name = InputName, Datatype = "FP32" };
        input.Shape.Add(Shape);
        var request = new ModelInferRequest { ModelName = Model, Id = RequestId };
        request.Inputs.Add(input);
        if (RequestOutput)
        {
            request.Outputs.Add(new ModelInferRequest.Types.InferRequestedOutputTensor { Name = OutputName });
        }
        if (raw)
        {
            request.RawInputContents.Add(ByteString.CopyFrom(Bytes()));
        }
        else
        {
            input.Contents = new InferTensorContents();
            input.Contents.Fp32Contents.AddRange(Values);
        }
        return request;
    }

    /// <summary>
    /// A REST v2 infer body with the binary tensor data extension: the JSON header (input with
    /// <c>binary_data_size</c>, output asked for with <c>binary_data: true</c>) followed by the tensor's bytes.
    /// </summary>
    public (byte[] Body, int HeaderLength) RestBinaryBody()
    {
        var data = Bytes();
        using var header = new MemoryStream();
        using (var json = new Utf8JsonWriter(header))
        {
            json.WriteStartObject();
            json.WriteString("id", RequestId);
            json.WriteStartArray("inputs");
            json.WriteStartObject();
            json.WriteString("name", InputName);
            WriteShape(json);
            json.WriteString("datatype", "FP32");
            json.WriteStartObject("parameters");
            json.WriteNumber("binary_data_size", data.Length);
            json.WriteEndObject();
            json.WriteEndObject();
            json.WriteEndArray();
            json.WriteStartArray("outputs");
            json.WriteStartObject();
            json.WriteString("name", OutputName);
            json.WriteStartObject("parameters");
            json.WriteBoolean("binary_data", true);
            json.WriteEndObject();
            json.WriteEndObject();
            json.WriteEndArray();
            json.WriteEndObject();
        }

        var headerLength = (int)header.Length;
        header.Write(data);
        return (header.ToArray(), headerLength);
    }

    /// <summary>A REST v2 infer body in plain JSON (flat <c>data</c>).</summary>
    public byte[] RestJsonBody()
    {
        using var body = new MemoryStream();
        using (var json = new Utf8JsonWriter(body))
        {
            json.WriteStartObject();
            json.WriteString("id", RequestId);
            json.WriteStartArray("inputs");
            json.WriteStartObject();
            json.WriteString("name", InputName);
            WriteShape(json);
            json.WriteString("datatype", "FP32");
            json.WriteStartArray("data");
            foreach (var value in Values)
            {
                json.WriteNumberValue(value);
            }
            json.WriteEndArray();
            json.WriteEndObject();
            json.WriteEndArray();
            json.WriteEndObject();
        }
        return body.ToArray();
    }

    private void WriteShape(Utf8JsonWriter json)
    {
        json.WriteStartArray("shape");
        foreach (var dimension in Shape)
        {
            json.WriteNumberValue(dimension);
        }
        json.WriteEndArray();
    }
}

/// <summary>FP32 tensors as little-endian bytes, the layout of raw gRPC contents and REST binary data.</summary>
internal static class LittleEndian
{
    public static byte[] Bytes(float[] values)
    {
        Require();
        return MemoryMarshal.AsBytes(values.AsSpan()).ToArray();
    }

    public static float[] Floats(ReadOnlySpan<byte> bytes)
    {
        Require();
        if (bytes.Length % sizeof(float) != 0)
        {
            throw new CheckException($"{bytes.Length} bytes are not a whole number of FP32 values");
        }
        return MemoryMarshal.Cast<byte, float>(bytes).ToArray();
    }

    private static void Require()
    {
        if (!BitConverter.IsLittleEndian)
        {
            throw new PlatformNotSupportedException("the benchmark client reads and writes tensors in place and needs a little-endian machine");
        }
    }
}
