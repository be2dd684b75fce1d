using System.Net;
using Orleans.KServe.Gateway;

namespace Orleans.KServe.Silo;

/// <summary>
/// Settings of the single-process server, from the command line (<c>--http-port 8080</c>), environment
/// (<c>KServe__HttpPort=8080</c>) or appsettings (<c>"KServe": {"HttpPort": 8080}</c>).
/// </summary>
public sealed class ServerOptions
{
    /// <summary>The configuration section.</summary>
    public const string Section = "KServe";

    /// <summary>Address the REST and gRPC ports bind to. Default 127.0.0.1; container images use 0.0.0.0.</summary>
    public string Host { get; set; } = "127.0.0.1";

    /// <summary>REST (HTTP/1.1) port. Default 8080; 0 = any free port.</summary>
    public int HttpPort { get; set; } = 8080;

    /// <summary>v2 gRPC port (HTTP/2 without TLS, so it needs its own port). Default 8081; 0 = any free port.</summary>
    public int GrpcPort { get; set; } = 8081;

    /// <summary>Orleans silo-to-silo port. Default 11111; 0 = any free port.</summary>
    public int SiloPort { get; set; } = 11111;

    /// <summary>Orleans client gateway port. Default 30000; 0 = any free port.</summary>
    public int GatewayPort { get; set; } = 30000;

    /// <summary>Folder of KServe YAML to serve. Default: the repository's <c>samples/</c>.</summary>
    public string? ModelRepository { get; set; }

    /// <summary>Largest request body, bytes. Default 64 MiB.</summary>
    public long MaxRequestBodyBytes { get; set; } = 64L * 1024 * 1024;

    /// <summary>Largest gRPC message received or sent, bytes. Default 256 MiB (KServe's is 8 MiB).</summary>
    public long GrpcMaxMessageBytes { get; set; } = 256L * 1024 * 1024;

    /// <summary>Most bytes one compressed gRPC message may inflate to. Default 64 MiB, or the message limit when that is smaller.</summary>
    public long? GrpcMaxDecompressedBytes { get; set; }

    /// <summary>Request bytes held at once across all calls, REST and gRPC, inflated or not. Default: a quarter of the process's memory, at least 64 MiB.</summary>
    public long? MaxBufferedRequestBytes { get; set; }

    /// <summary>The inflate limit in effect.</summary>
    public long EffectiveGrpcMaxDecompressedBytes => GrpcMaxDecompressedBytes ?? Math.Min(64L * 1024 * 1024, GrpcMaxMessageBytes);

    /// <summary>The request bytes budget in effect.</summary>
    public long EffectiveMaxBufferedRequestBytes => MaxBufferedRequestBytes ?? Orleans.KServe.Gateway.Serving.RequestBytesBudget.DefaultLimit();

    /// <summary>Inference requests in flight before new ones get 503. Default 1024.</summary>
    public int MaxInFlightRequests { get; set; } = 1024;

    /// <summary>Dedicated model-execution threads; 0 = one per core.</summary>
    public int ExecutorThreads { get; set; }

    /// <summary>
    /// How long the server waits for requests in flight once its listeners have closed, seconds. Default 20: with the
    /// default drain delay the whole stop fits in Kubernetes' default grace period of 30 s.
    /// </summary>
    public int ShutdownTimeoutSeconds { get; set; } = 20;

    /// <summary>How long the server keeps serving after SIGTERM with readiness answering 503, seconds, before its listeners close. Default 5.</summary>
    public double DrainDelaySeconds { get; set; } = 5;

    /// <summary>Hand requests to local replicas without an Orleans message. Default on.</summary>
    public bool LocalFastPath { get; set; } = true;

    /// <summary>Bytes per block of the connections' memory pool (caps each socket read); 0 = Kestrel's own 4 KiB pool. Default 32 KiB.</summary>
    public int TransportBlockBytes { get; set; } = 32 * 1024;

    /// <summary>Every problem with these settings, as sentences.</summary>
    public IReadOnlyList<string> Validate()
    {
        var errors = new List<string>();
        if (Host != "localhost" && !IPAddress.TryParse(Host, out _))
        {
            errors.Add($"--host '{Host}' is not an IP address (use 127.0.0.1, 0.0.0.0, ::1 or localhost)");
        }

        CheckPort(errors, "--http-port", HttpPort);
        CheckPort(errors, "--grpc-port", GrpcPort);
        CheckPort(errors, "--silo-port", SiloPort);
        CheckPort(errors, "--gateway-port", GatewayPort);
        if (HttpPort != 0 && HttpPort == GrpcPort)
        {
            errors.Add($"--http-port and --grpc-port are both {HttpPort}; gRPC (h2c) needs its own port");
        }

        if (ModelRepository is null)
        {
            errors.Add("--model-repository was not given and no samples/ folder was found next to the server or above it");
        }
        else if (!Directory.Exists(ModelRepository))
        {
            errors.Add($"--model-repository '{ModelRepository}' is not a folder");
        }

        if (MaxRequestBodyBytes is < 1024 or > int.MaxValue)
        {
            errors.Add($"--max-request-body-bytes must be between 1024 and {int.MaxValue}, not {MaxRequestBodyBytes}");
        }

        if (GrpcMaxMessageBytes is < 1024 or > int.MaxValue)
        {
            errors.Add($"--grpc-max-message-bytes must be between 1024 and {int.MaxValue}, not {GrpcMaxMessageBytes}");
        }

        if (EffectiveGrpcMaxDecompressedBytes < 1024 || EffectiveGrpcMaxDecompressedBytes > GrpcMaxMessageBytes)
        {
            errors.Add($"--grpc-max-decompressed-bytes must be between 1024 and --grpc-max-message-bytes ({GrpcMaxMessageBytes}), not {EffectiveGrpcMaxDecompressedBytes}");
        }

        if (EffectiveMaxBufferedRequestBytes < 1024 * 1024)
        {
            errors.Add($"--max-buffered-request-bytes must be at least 1048576 (1 MiB), not {EffectiveMaxBufferedRequestBytes}");
        }

        if (MaxInFlightRequests < 1)
        {
            errors.Add($"--max-in-flight must be at least 1, not {MaxInFlightRequests}");
        }

        if (ExecutorThreads is < 0 or > 1024)
        {
            errors.Add($"--executor-threads must be between 0 (one per core) and 1024, not {ExecutorThreads}");
        }

        if (TransportBlockBytes != 0 && TransportBlockBytes is < TransportMemoryPool.MinBlockSize or > TransportMemoryPool.MaxBlockSize)
        {
            errors.Add($"--transport-block-bytes must be 0 (Kestrel's pool) or between {TransportMemoryPool.MinBlockSize} and {TransportMemoryPool.MaxBlockSize}, not {TransportBlockBytes}");
        }

        if (ShutdownTimeoutSeconds is < 0 or > 3600)
        {
            errors.Add($"--shutdown-timeout must be between 0 and 3600 seconds, not {ShutdownTimeoutSeconds}");
        }

        if (DrainDelaySeconds is < 0 or > 3600 || double.IsNaN(DrainDelaySeconds))
        {
            errors.Add($"--drain-delay must be between 0 and 3600 seconds, not {DrainDelaySeconds}");
        }

        return errors;
    }

    private static void CheckPort(List<string> errors, string name, int port)
    {
        if (port is < 0 or > 65535)
        {
            errors.Add($"{name} must be between 0 and 65535, not {port}");
        }
    }

    /// <summary>The command-line switches and the settings they set.</summary>
    public static IDictionary<string, string> SwitchMappings { get; } = new Dictionary<string, string>
    {
        ["--host"] = $"{Section}:Host",
        ["--http-port"] = $"{Section}:HttpPort",
        ["--grpc-port"] = $"{Section}:GrpcPort",
        ["--silo-port"] = $"{Section}:SiloPort",
        ["--gateway-port"] = $"{Section}:GatewayPort",
        ["--model-repository"] = $"{Section}:ModelRepository",
        ["--max-request-body-bytes"] = $"{Section}:MaxRequestBodyBytes",
        ["--max-in-flight"] = $"{Section}:MaxInFlightRequests",
        ["--grpc-max-message-bytes"] = $"{Section}:GrpcMaxMessageBytes",
        ["--grpc-max-decompressed-bytes"] = $"{Section}:GrpcMaxDecompressedBytes",
        ["--max-buffered-request-bytes"] = $"{Section}:MaxBufferedRequestBytes",
        ["--executor-threads"] = $"{Section}:ExecutorThreads",
        ["--shutdown-timeout"] = $"{Section}:ShutdownTimeoutSeconds",
        ["--drain-delay"] = $"{Section}:DrainDelaySeconds",
        ["--local-fast-path"] = $"{Section}:LocalFastPath",
        ["--transport-block-bytes"] = $"{Section}:TransportBlockBytes",
    };

    /// <summary>
    /// The default model repository: <c>samples/</c> beside the app (a published image), else the nearest
    /// <c>samples/</c> in a folder above it that holds the solution (a build output inside the repository).
    /// </summary>
    public static string? FindDefaultRepository(string baseDirectory)
    {
        var beside = Path.Combine(baseDirectory, "samples");
        if (Directory.Exists(beside))
        {
            return beside;
        }

        for (var dir = new DirectoryInfo(baseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Orleans.KServe.sln")) && Directory.Exists(Path.Combine(dir.FullName, "samples")))
            {
                return Path.Combine(dir.FullName, "samples");
            }
        }

        return null;
    }
}
