using System.Net;
using Microsoft.Extensions.Options;

namespace Orleans.KServe.Gateway;

/// <summary>
/// The inference gateway's settings: where it listens and the limits it holds every request to. Bound from the
/// <c>KServe</c> configuration section (<c>--http-port 9000</c>, <c>KServe__HttpPort=9000</c> or
/// <c>"KServe": {"HttpPort": 9000}</c>); <see cref="Switches"/> names each setting's command-line switch.
/// </summary>
public sealed class GatewayOptions
{
    /// <summary>The configuration section every Orleans.KServe setting lives in.</summary>
    public const string Section = "KServe";

    /// <summary>Address the REST and gRPC ports bind to. Default 127.0.0.1; container images use 0.0.0.0.</summary>
    public string Host { get; set; } = "127.0.0.1";

    /// <summary>REST (HTTP/1.1) port. Default 8080; 0 = any free port.</summary>
    public int HttpPort { get; set; } = 8080;

    /// <summary>v2 gRPC port (HTTP/2 without TLS, so it needs its own port). Default 8081; 0 = any free port.</summary>
    public int GrpcPort { get; set; } = 8081;

    /// <summary>Largest request body accepted; larger ones get 413. Default 64 MiB.</summary>
    public long MaxRequestBodyBytes { get; set; } = 64L * 1024 * 1024;

    /// <summary>Inference requests in progress at once; more get 503 instead of queueing without bound. Default 1024.</summary>
    public int MaxInFlightRequests { get; set; } = 1024;

    /// <summary>Hand requests to a replica active on this silo without an Orleans message. Default on.</summary>
    public bool LocalFastPath { get; set; } = true;

    /// <summary>How long the server keeps serving after SIGTERM, readiness 503, before its listeners close, seconds. Default 5.</summary>
    public double DrainDelaySeconds { get; set; } = 5;

    /// <summary>
    /// The longest an inference call may take, seconds, retries included: a call whose replica's silo is lost waits
    /// and is sent again within it, and past it is answered 503 naming the cause. A gRPC client's shorter deadline
    /// wins. Default 30.
    /// </summary>
    public double RequestTimeoutSeconds { get; set; } = 30;

    /// <summary>Largest gRPC message received or sent, bytes, as its frame declares it (compressed or not). Default 256 MiB (KServe's is 8 MiB).</summary>
    public long GrpcMaxMessageBytes { get; set; } = 256L * 1024 * 1024;

    /// <summary>Most bytes one compressed gRPC message may inflate to; at most <see cref="GrpcMaxMessageBytes"/>. Default 64 MiB, or the message limit when that is smaller.</summary>
    public long? GrpcMaxDecompressedBytes { get; set; }

    /// <summary>
    /// Request bytes held at once across every call, REST and gRPC, inflated or not; more are refused with 413 /
    /// RESOURCE_EXHAUSTED. Default: a quarter of the memory the process may use, at least 64 MiB.
    /// </summary>
    public long? MaxBufferedRequestBytes { get; set; }

    /// <summary>Bytes per block of the connections' memory pool (caps each socket read); 0 = Kestrel's own 4 KiB pool. Default 32 KiB.</summary>
    public int TransportBlockBytes { get; set; } = 32 * 1024;

    /// <summary>
    /// How a Host header names a model of a namespace: KServe's <c>domainTemplate</c> with <c>{name}</c>,
    /// <c>{namespace}</c> and, last, <c>{domain}</c>. Default KServe's <c>{name}-{namespace}.{domain}</c>; Knative's
    /// <c>{name}.{namespace}.{domain}</c> is always understood too.
    /// </summary>
    public string DomainTemplate { get; set; } = "{name}-{namespace}.{domain}";

    /// <summary>
    /// How a path prefix names a model of a namespace: KServe's <c>pathTemplate</c>, stripped before the v1/v2 route.
    /// Default <c>/serving/{namespace}/{name}</c>.
    /// </summary>
    public string PathTemplate { get; set; } = "/serving/{namespace}/{name}";

    /// <summary>The request timeout in effect.</summary>
    public TimeSpan RequestTimeout => TimeSpan.FromSeconds(RequestTimeoutSeconds);

    /// <summary>
    /// Orleans' response timeout for grain calls, which the host sets: the request timeout, but never under Orleans'
    /// default 30 s, which control-plane calls (loads, rollouts) rely on. An inference call under a shorter request
    /// timeout is bounded by the gateway itself.
    /// </summary>
    public TimeSpan GrainResponseTimeout => RequestTimeout > TimeSpan.FromSeconds(30) ? RequestTimeout : TimeSpan.FromSeconds(30);

    /// <summary>The drain delay in effect.</summary>
    public TimeSpan DrainDelay => TimeSpan.FromSeconds(DrainDelaySeconds);

    /// <summary>The inflate limit in effect.</summary>
    public long EffectiveGrpcMaxDecompressedBytes => GrpcMaxDecompressedBytes ?? Math.Min(64L * 1024 * 1024, GrpcMaxMessageBytes);

    /// <summary>The request bytes budget in effect.</summary>
    public long EffectiveMaxBufferedRequestBytes => MaxBufferedRequestBytes ?? Serving.RequestBytesBudget.DefaultLimit();

    /// <summary>The command-line switch of each setting, and the property it sets.</summary>
    public static IReadOnlyDictionary<string, string> Switches { get; } = new Dictionary<string, string>
    {
        ["--host"] = nameof(Host),
        ["--http-port"] = nameof(HttpPort),
        ["--grpc-port"] = nameof(GrpcPort),
        ["--max-request-body-bytes"] = nameof(MaxRequestBodyBytes),
        ["--max-in-flight"] = nameof(MaxInFlightRequests),
        ["--local-fast-path"] = nameof(LocalFastPath),
        ["--drain-delay"] = nameof(DrainDelaySeconds),
        ["--request-timeout"] = nameof(RequestTimeoutSeconds),
        ["--grpc-max-message-bytes"] = nameof(GrpcMaxMessageBytes),
        ["--grpc-max-decompressed-bytes"] = nameof(GrpcMaxDecompressedBytes),
        ["--max-buffered-request-bytes"] = nameof(MaxBufferedRequestBytes),
        ["--transport-block-bytes"] = nameof(TransportBlockBytes),
        ["--domain-template"] = nameof(DomainTemplate),
        ["--path-template"] = nameof(PathTemplate),
    };
}

/// <summary>Reports every invalid gateway setting at once, each by its switch.</summary>
public sealed class GatewayOptionsValidator : IValidateOptions<GatewayOptions>
{
    /// <inheritdoc />
    public ValidateOptionsResult Validate(string? name, GatewayOptions options)
    {
        var failures = new List<string>();
        if (options.Host != "localhost" && !IPAddress.TryParse(options.Host, out _))
        {
            failures.Add($"--host '{options.Host}' is not an IP address (use 127.0.0.1, 0.0.0.0, ::1 or localhost)");
        }

        Ports.Check(failures, "--http-port", options.HttpPort);
        Ports.Check(failures, "--grpc-port", options.GrpcPort);
        if (options.HttpPort != 0 && options.HttpPort == options.GrpcPort)
        {
            failures.Add($"--http-port and --grpc-port are both {options.HttpPort}; gRPC (h2c) needs its own port");
        }

        if (options.MaxRequestBodyBytes is < 1024 or > int.MaxValue)
        {
            failures.Add($"--max-request-body-bytes must be between 1024 and {int.MaxValue}, not {options.MaxRequestBodyBytes}");
        }

        if (options.MaxInFlightRequests < 1)
        {
            failures.Add($"--max-in-flight must be at least 1, not {options.MaxInFlightRequests}");
        }

        if (options.RequestTimeoutSeconds is < 0.1 or > 3600 || double.IsNaN(options.RequestTimeoutSeconds))
        {
            failures.Add($"--request-timeout must be between 0.1 and 3600 seconds, not {options.RequestTimeoutSeconds}");
        }

        if (options.DrainDelaySeconds is < 0 or > 3600 || double.IsNaN(options.DrainDelaySeconds))
        {
            failures.Add($"--drain-delay must be between 0 and 3600 seconds, not {options.DrainDelaySeconds}");
        }

        if (options.GrpcMaxMessageBytes is < 1024 or > int.MaxValue)
        {
            failures.Add($"--grpc-max-message-bytes must be between 1024 and {int.MaxValue}, not {options.GrpcMaxMessageBytes}");
        }

        var inflate = options.EffectiveGrpcMaxDecompressedBytes;
        if (inflate < 1024 || inflate > options.GrpcMaxMessageBytes)
        {
            failures.Add($"--grpc-max-decompressed-bytes must be between 1024 and --grpc-max-message-bytes ({options.GrpcMaxMessageBytes}), not {inflate}");
        }

        if (options.EffectiveMaxBufferedRequestBytes < 1024 * 1024)
        {
            failures.Add($"--max-buffered-request-bytes must be at least 1048576 (1 MiB), not {options.EffectiveMaxBufferedRequestBytes}");
        }

        if (options.TransportBlockBytes != 0 && options.TransportBlockBytes is < TransportMemoryPool.MinBlockSize or > TransportMemoryPool.MaxBlockSize)
        {
            failures.Add($"--transport-block-bytes must be 0 (Kestrel's pool) or between {TransportMemoryPool.MinBlockSize} and {TransportMemoryPool.MaxBlockSize}, not {options.TransportBlockBytes}");
        }

        if (!options.DomainTemplate.Contains("{name}", StringComparison.Ordinal) || !options.DomainTemplate.Contains("{namespace}", StringComparison.Ordinal)
            || !options.DomainTemplate.EndsWith(".{domain}", StringComparison.Ordinal))
        {
            failures.Add($"--domain-template '{options.DomainTemplate}' must hold {{name}} and {{namespace}} and end with .{{domain}}, as {{name}}-{{namespace}}.{{domain}} does");
        }

        if (!options.PathTemplate.StartsWith('/') || !options.PathTemplate.Contains("{name}", StringComparison.Ordinal)
            || !options.PathTemplate.Contains("{namespace}", StringComparison.Ordinal))
        {
            failures.Add($"--path-template '{options.PathTemplate}' must start with / and hold {{namespace}} and {{name}}, as /serving/{{namespace}}/{{name}} does");
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}

/// <summary>The one check of a port setting.</summary>
public static class Ports
{
    /// <summary>Adds a failure when <paramref name="port"/> is not 0 to 65535.</summary>
    public static void Check(List<string> failures, string name, int port)
    {
        if (port is < 0 or > 65535)
        {
            failures.Add($"{name} must be between 0 and 65535, not {port}");
        }
    }
}
