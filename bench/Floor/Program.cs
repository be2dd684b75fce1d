using System.IO.Pipelines;
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

/// <summary>The `double` model: FP32 input <c>input</c> of shape [batch, 2], output <c>output</c> = 2 × input.</summary>
internal static class DoubleModel
{
    private const string ModelName = "double";
    private const string InputName = "input";
    private const string OutputName = "output";
    private const string Fp32 = "FP32";
    private const int Width = 2;

    public static async Task InferAsync(HttpContext context)
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

        var error = Validate(request, out var input);
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

        var response = new InferResponse(
            ModelName,
            request!.Id ?? Guid.NewGuid().ToString(),
            [new InferOutputTensor(OutputName, Fp32, input.Shape!, doubled)]);
        await context.Response.WriteAsJsonAsync(response, FloorJsonContext.Default.InferResponse, cancellationToken: context.RequestAborted);
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
        if (input.Shape is not { Length: 2 } shape || shape[0] < 0 || shape[1] != Width)
        {
            return $"input '{InputName}' must have shape [batch, {Width}]";
        }
        if (input.Data is null)
        {
            return $"input '{InputName}' has no data";
        }
        if (shape[0] * Width != input.Data.Length)
        {
            return $"input '{InputName}' has {input.Data.Length} elements, shape [{shape[0]}, {shape[1]}] needs {shape[0] * Width}";
        }
        return null;
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
