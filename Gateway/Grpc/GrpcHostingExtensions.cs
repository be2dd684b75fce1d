using Grpc.AspNetCore.Server;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace Orleans.KServe.Gateway.Grpc;

/// <summary>Registers and maps the v2 gRPC service.</summary>
public static class GrpcHostingExtensions
{
    /// <summary>Adds gRPC with the given limits (message sizes).</summary>
    public static IServiceCollection AddInferenceGrpc(this IServiceCollection services, Action<GrpcServiceOptions>? configure = null)
    {
        services.AddGrpc(options =>
        {
            options.EnableDetailedErrors = false;
            configure?.Invoke(options);
        });
        return services;
    }

    /// <summary>
    /// Checks every gRPC request's frames as they arrive (<see cref="GrpcRequestGuard"/>): frame lengths against the
    /// message limit and the server's request bytes budget. Add it before the gRPC endpoints run.
    /// </summary>
    public static IApplicationBuilder UseGrpcRequestGuard(this IApplicationBuilder app) => GrpcRequestGuard.Use(app);

    /// <summary>Maps <c>inference.GRPCInferenceService</c>.</summary>
    public static IEndpointRouteBuilder MapInferenceGrpc(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapGrpcService<InferenceGrpcService>();
        return endpoints;
    }
}
