using Microsoft.Extensions.Options;

namespace Orleans.KServe.Gateway;

/// <summary>Limits and behaviour of the inference gateway.</summary>
public sealed class GatewayOptions
{
    /// <summary>Largest request body accepted; larger ones get 413. Default 64 MiB.</summary>
    public long MaxRequestBodyBytes { get; set; } = 64L * 1024 * 1024;

    /// <summary>Inference requests in progress at once; more get 503 instead of queueing without bound. Default 1024.</summary>
    public int MaxInFlightRequests { get; set; } = 1024;

    /// <summary>Hand requests to a replica active on this silo without an Orleans message. Default on.</summary>
    public bool LocalFastPath { get; set; } = true;

    /// <summary>How long the server keeps serving after SIGTERM, readiness 503, before its listeners close. Default 5 s.</summary>
    public TimeSpan DrainDelay { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Largest gRPC message received, bytes, as its frame declares it (compressed or not). Default 256 MiB.</summary>
    public long GrpcMaxMessageBytes { get; set; } = 256L * 1024 * 1024;

    /// <summary>Most bytes one compressed gRPC message may inflate to; at most <see cref="GrpcMaxMessageBytes"/>. Default 64 MiB.</summary>
    public long GrpcMaxDecompressedBytes { get; set; } = 64L * 1024 * 1024;

    /// <summary>
    /// Request bytes held at once across every call, REST and gRPC, inflated or not; more are refused with 413 /
    /// RESOURCE_EXHAUSTED. Default: a quarter of the memory the process may use, at least 64 MiB.
    /// </summary>
    public long MaxBufferedRequestBytes { get; set; } = Serving.RequestBytesBudget.DefaultLimit();
}

/// <summary>Reports every invalid gateway setting at once.</summary>
public sealed class GatewayOptionsValidator : IValidateOptions<GatewayOptions>
{
    /// <inheritdoc />
    public ValidateOptionsResult Validate(string? name, GatewayOptions options)
    {
        var failures = new List<string>();
        if (options.MaxRequestBodyBytes is < 1024 or > int.MaxValue)
        {
            failures.Add($"max request body bytes must be between 1024 and {int.MaxValue}, not {options.MaxRequestBodyBytes}");
        }

        if (options.MaxInFlightRequests < 1)
        {
            failures.Add($"max in-flight requests must be at least 1, not {options.MaxInFlightRequests}");
        }

        if (options.DrainDelay < TimeSpan.Zero)
        {
            failures.Add($"the drain delay must not be negative, not {options.DrainDelay}");
        }

        if (options.GrpcMaxMessageBytes is < 1024 or > int.MaxValue)
        {
            failures.Add($"the gRPC message limit must be between 1024 and {int.MaxValue} bytes, not {options.GrpcMaxMessageBytes}");
        }

        if (options.GrpcMaxDecompressedBytes < 1024 || options.GrpcMaxDecompressedBytes > options.GrpcMaxMessageBytes)
        {
            failures.Add($"the gRPC decompressed message limit must be between 1024 and the gRPC message limit ({options.GrpcMaxMessageBytes}), not {options.GrpcMaxDecompressedBytes}");
        }

        if (options.MaxBufferedRequestBytes < 1024 * 1024)
        {
            failures.Add($"the request bytes budget must be at least 1 MiB, not {options.MaxBufferedRequestBytes}");
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
