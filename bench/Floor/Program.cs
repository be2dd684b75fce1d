using System.Buffers;
using System.Globalization;
using System.IO.Pipelines;
using System.Runtime.InteropServices;
using System.Text.Json;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Orleans.KServe.Bench.Floor;

// The floor: the least work a correct Open Inference Protocol v2 REST server must do for the
// `double` model. No logging, no middleware beyond routing, source-generated JSON.
// Usage: dotnet Orleans.KServe.Bench.Floor.dll --urls http://127.0.0.1:0
var builder = WebApplication.CreateSlimBuilder(args);
builder.Logging.ClearProviders();
builder.WebHost.ConfigureKestrel(options => options.AddServerHeader = false);

var app = builder.Build();

app.MapPost("/v2/models/double/infer", DoubleModel.InferAsync);
app.MapGet("/v2/models/double/ready", Probes.ReadyAsync);
app.MapGet("/v2/health/ready", Probes.ReadyAsync);
app.MapGet("/v2/health/live", Probes.LiveAsync);

await app.StartAsync();

// Logging is off, so Kestrel's own "Now listening on" line is not written: print the bound
// addresses (the real port when the port asked for was 0) for whoever started us.
var addresses = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses ?? [];
foreach (var address in addresses)
{
    Console.Out.WriteLine($"Now listening on: {address}");
}
Console.Out.Flush();

await app.WaitForShutdownAsync();

/// <summary>
/// The `double` model: FP32 input <c>input</c> of shape [batch, 2], output <c>output</c> = 2 × input. The body is
/// JSON, or (with the <c>Inference-Header-Content-Length</c> header) a JSON header followed by binary tensor data;
/// the output is answered in binary when the request asks (<c>binary_data</c> on the output, or
/// <c>binary_data_output</c> on the request).
/// </summary>
internal static class DoubleModel
{
    private const string ModelName = "double";
    private const string InputName = "input";
    private const string OutputName = "output";
    private const string Fp32 = "FP32";
    private const string HeaderLengthHeader = "Inference-Header-Content-Length";
    private const int Width = 2;

    public static Task InferAsync(HttpContext context)
    {
        var headerLength = context.Request.Headers[HeaderLengthHeader];
        return headerLength.Count == 0 ? InferJsonAsync(context) : InferBinaryAsync(context, headerLength.ToString());
    }

    private static async Task InferJsonAsync(HttpContext context)
    {
        InferRequest? request;
        try
        {
            request = await JsonSerializer.DeserializeAsync(
                context.Request.BodyReader, FloorJsonContext.Default.InferRequest, cancellationToken: context.RequestAborted);
        }
        catch (JsonException exception)
        {
            await WriteErrorAsync(context, StatusCodes.Status400BadRequest, $"invalid JSON body: {exception.Message}");
            return;
        }

        var error = Validate(request, out var input) ?? ValidateJsonData(input!);
        if (error is not null)
        {
            await WriteErrorAsync(context, StatusCodes.Status400BadRequest, error);
            return;
        }

        var data = input!.Data!;
        var doubled = new float[data.Length];
        for (var i = 0; i < data.Length; i++)
        {
            doubled[i] = data[i] * 2f;
        }

        await RespondAsync(context, request!, input.Shape!, doubled);
    }

    private static async Task InferBinaryAsync(HttpContext context, string headerLengthValue)
    {
        if (!int.TryParse(headerLengthValue, NumberStyles.None, CultureInfo.InvariantCulture, out var headerLength))
        {
            await WriteErrorAsync(context, StatusCodes.Status400BadRequest, $"{HeaderLengthHeader} '{headerLengthValue}' is not a length");
            return;
        }

        // The JSON header says how the bytes after it are laid out, so the whole body is needed first.
        var reader = context.Request.BodyReader;
        ReadResult read;
        while (true)
        {
            read = await reader.ReadAsync(context.RequestAborted);
            if (read.IsCompleted)
            {
                break;
            }
            reader.AdvanceTo(read.Buffer.Start, read.Buffer.End);
        }

        string? error;
        InferRequest? request;
        InferInputTensor? input;
        float[]? doubled;
        try
        {
            error = DecodeBinary(read.Buffer, headerLength, out request, out input, out doubled);
        }
        finally
        {
            reader.AdvanceTo(read.Buffer.End);
        }

        if (error is not null)
        {
            await WriteErrorAsync(context, StatusCodes.Status400BadRequest, error);
            return;
        }

        await RespondAsync(context, request!, input!.Shape!, doubled!);
    }

    /// <summary>Parses and validates a binary body; on success <paramref name="doubled"/> holds 2 × input.</summary>
    private static string? DecodeBinary(
        ReadOnlySequence<byte> body, int headerLength, out InferRequest? request, out InferInputTensor? input, out float[]? doubled)
    {
        request = null;
        input = null;
        doubled = null;
        if (headerLength > body.Length)
        {
            return $"{HeaderLengthHeader} {headerLength} is larger than the request body of {body.Length} bytes";
        }

        try
        {
            var json = new Utf8JsonReader(body.Slice(0, headerLength));
            request = JsonSerializer.Deserialize(ref json, FloorJsonContext.Default.InferRequest);
        }
        catch (JsonException exception)
        {
            return $"invalid JSON header: {exception.Message}";
        }

        var error = Validate(request, out input);
        if (error is not null)
        {
            return error;
        }

        var binary = body.Slice(headerLength);
        if (input!.Parameters?.BinaryDataSize is not { } size)
        {
            // The input itself may still be JSON; then nothing may follow the header.
            error = ValidateJsonData(input);
            if (error is not null)
            {
                return error;
            }
            if (binary.Length != 0)
            {
                return $"{binary.Length} bytes follow the JSON header and no input has binary_data_size";
            }

            doubled = new float[input.Data!.Length];
            for (var i = 0; i < doubled.Length; i++)
            {
                doubled[i] = input.Data[i] * 2f;
            }
            return null;
        }

        if (input.Data is not null)
        {
            return $"input '{InputName}' has both data and binary_data_size";
        }
        var expected = input.Shape![0] * Width * sizeof(float);
        if (size != expected)
        {
            return $"input '{InputName}' has binary_data_size {size}, shape [{input.Shape[0]}, {Width}] needs {expected}";
        }
        if (binary.Length != size)
        {
            return $"binary_data_size {size} does not match the {binary.Length} bytes after the JSON header";
        }
        if (!BitConverter.IsLittleEndian)
        {
            return "the floor reads binary tensor data in place and needs a little-endian machine";
        }

        doubled = new float[size / sizeof(float)];
        binary.CopyTo(MemoryMarshal.AsBytes(doubled.AsSpan()));
        for (var i = 0; i < doubled.Length; i++)
        {
            doubled[i] *= 2f;
        }
        return null;
    }

    private static string? Validate(InferRequest? request, out InferInputTensor? input)
    {
        input = null;
        if (request?.Inputs is not { Count: 1 } inputs)
        {
            return $"model '{ModelName}' expects exactly one input tensor '{InputName}'";
        }

        input = inputs[0];
        if (input is null || input.Name != InputName)
        {
            return $"unexpected input '{input?.Name}', model '{ModelName}' expects '{InputName}'";
        }
        if (input.Datatype != Fp32)
        {
            return $"input '{InputName}' has datatype '{input.Datatype}', expected '{Fp32}'";
        }
        if (input.Shape is not { Length: 2 } shape || shape[0] < 0 || shape[1] != Width || shape[0] > int.MaxValue / (Width * sizeof(float)))
        {
            return $"input '{InputName}' must have shape [batch, {Width}]";
        }
        if (request.Outputs is { } outputs)
        {
            if (outputs.Count > 1)
            {
                return $"model '{ModelName}' has one output, {outputs.Count} were requested";
            }
            if (outputs.Count == 1 && outputs[0]?.Name != OutputName)
            {
                return $"unknown output '{outputs[0]?.Name}', model '{ModelName}' has '{OutputName}'";
            }
        }
        return null;
    }

    /// <summary>Checks an input that carries its values as JSON <c>data</c>.</summary>
    private static string? ValidateJsonData(InferInputTensor input)
    {
        if (input.Parameters?.BinaryDataSize is not null)
        {
            return $"input '{InputName}' has binary_data_size but the request has no {HeaderLengthHeader} header";
        }
        if (input.Data is null)
        {
            return $"input '{InputName}' has no data";
        }
        if (input.Shape![0] * Width != input.Data.Length)
        {
            return $"input '{InputName}' has {input.Data.Length} elements, shape [{input.Shape[0]}, {input.Shape[1]}] needs {input.Shape[0] * Width}";
        }
        return null;
    }

    /// <summary>A requested output's own <c>binary_data</c> wins over the request's <c>binary_data_output</c>.</summary>
    private static bool WantsBinary(InferRequest request) =>
        (request.Outputs is { Count: 1 } outputs ? outputs[0].Parameters?.BinaryData : null)
        ?? request.Parameters?.BinaryDataOutput
        ?? false;

    private static Task RespondAsync(HttpContext context, InferRequest request, long[] shape, float[] doubled)
    {
        var id = request.Id ?? Guid.NewGuid().ToString();
        if (!WantsBinary(request))
        {
            var response = new InferResponse(ModelName, id, [new InferOutputTensor(OutputName, Fp32, shape, doubled)]);
            return context.Response.WriteAsJsonAsync(response, FloorJsonContext.Default.InferResponse, cancellationToken: context.RequestAborted);
        }

        var bytes = (long)doubled.Length * sizeof(float);
        var header = JsonSerializer.SerializeToUtf8Bytes(
            new BinaryInferResponse(ModelName, id, [new BinaryOutputTensor(OutputName, Fp32, shape, new BinaryOutputParameters(bytes))]),
            FloorJsonContext.Default.BinaryInferResponse);
        var httpResponse = context.Response;
        httpResponse.ContentType = "application/octet-stream";
        httpResponse.ContentLength = header.Length + bytes;
        httpResponse.Headers[HeaderLengthHeader] = header.Length.ToString(CultureInfo.InvariantCulture);
        WriteBinary(httpResponse.BodyWriter, header, doubled);
        return httpResponse.BodyWriter.FlushAsync(context.RequestAborted).AsTask();
    }

    private static void WriteBinary(PipeWriter writer, byte[] header, float[] values)
    {
        writer.Write(header);
        writer.Write(MemoryMarshal.AsBytes(values.AsSpan()));
    }

    private static Task WriteErrorAsync(HttpContext context, int statusCode, string message)
    {
        context.Response.StatusCode = statusCode;
        return context.Response.WriteAsJsonAsync(new ErrorResponse(message), FloorJsonContext.Default.ErrorResponse, cancellationToken: context.RequestAborted);
    }
}

/// <summary>Readiness and liveness: the floor is ready as soon as it listens.</summary>
internal static class Probes
{
    private static readonly ReadyResponse Ready = new(true);
    private static readonly LiveResponse Live = new(true);

    public static Task ReadyAsync(HttpContext context) =>
        context.Response.WriteAsJsonAsync(Ready, FloorJsonContext.Default.ReadyResponse, cancellationToken: context.RequestAborted);

    public static Task LiveAsync(HttpContext context) =>
        context.Response.WriteAsJsonAsync(Live, FloorJsonContext.Default.LiveResponse, cancellationToken: context.RequestAborted);
}
