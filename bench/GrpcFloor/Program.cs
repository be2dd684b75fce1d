using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Orleans.KServe.Bench.GrpcFloor;

// The gRPC floor: the least work a correct Open Inference Protocol v2 gRPC server must do for the
// `double` model. h2c only (HTTP/2 without TLS, like the server's gRPC port), no logging, no
// interceptors.
// Usage: dotnet Orleans.KServe.Bench.GrpcFloor.dll --urls http://127.0.0.1:0
var builder = WebApplication.CreateSlimBuilder(args);
builder.Logging.ClearProviders();
builder.WebHost.ConfigureKestrel(options =>
{
    options.AddServerHeader = false;
    options.ConfigureEndpointDefaults(listen => listen.Protocols = HttpProtocols.Http2);
});
builder.Services.AddGrpc(options => options.EnableDetailedErrors = false);

var app = builder.Build();
app.MapGrpcService<FloorInferenceService>();

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
