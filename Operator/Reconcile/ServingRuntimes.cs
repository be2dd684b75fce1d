using Orleans.KServe.Contracts.Models;

namespace Orleans.KServe.Operator.Reconcile;

/// <summary>A model format a runtime serves (KServe's <c>supportedModelFormats</c> entry).</summary>
public sealed record SupportedModelFormat(string Name, string? Version, bool AutoSelect, int Priority);

/// <summary>A serving runtime as the reconcile core sees it (ServingRuntime / ClusterServingRuntime, or built in).</summary>
public sealed record ServingRuntimeInfo(
    string Name,
    IReadOnlyList<SupportedModelFormat> Formats,
    IReadOnlyList<string> ProtocolVersions,
    bool Disabled = false,
    bool IsClusterScoped = true);

/// <summary>The runtimes this server ships, named as KServe names its own.</summary>
public static class BuiltInRuntimes
{
    private static readonly string[] AllProtocols = ["v1", "v2", "grpc-v1", "grpc-v2"];

    /// <summary>ONNX Runtime (CPU) under KServe's name for it, plus the Triton name KServe also maps ONNX to.</summary>
    public static IReadOnlyList<ServingRuntimeInfo> All { get; } =
    [
        new("kserve-onnxruntime", [new SupportedModelFormat("onnx", "1", AutoSelect: true, Priority: 1)], AllProtocols),
        new("kserve-tritonserver", [new SupportedModelFormat("onnx", "1", AutoSelect: false, Priority: 0)], AllProtocols),
    ];
}

/// <summary>KServe's runtime selection rules.</summary>
public static class RuntimeSelector
{
    /// <summary>
    /// Picks the runtime for <paramref name="format"/>: an explicit name must exist, be enabled and support the format
    /// and protocol; otherwise enabled auto-selectable runtimes that match, namespace ones before cluster ones, higher
    /// priority first. Returns the failure reason and message when none fits.
    /// </summary>
    public static (ServingRuntimeInfo? Runtime, string? Reason, string? Message) Select(
        IReadOnlyList<ServingRuntimeInfo> runtimes, string format, string? formatVersion, string? explicitRuntime, string protocol)
    {
        if (explicitRuntime is not null)
        {
            var named = runtimes.FirstOrDefault(r => r.Name == explicitRuntime);
            if (named is null)
            {
                return (null, FailureReasons.RuntimeNotRecognized, $"runtime '{explicitRuntime}' does not exist; known runtimes: {string.Join(", ", runtimes.Select(r => r.Name))}");
            }

            if (named.Disabled)
            {
                return (null, FailureReasons.RuntimeDisabled, $"runtime '{explicitRuntime}' is disabled");
            }

            if (!named.ProtocolVersions.Contains(protocol))
            {
                return (null, "ProtocolNotSupported", $"runtime '{explicitRuntime}' does not support protocol '{protocol}'");
            }

            if (!named.Formats.Any(f => Matches(f, format, formatVersion)))
            {
                return (null, FailureReasons.NoSupportingRuntime, $"runtime '{explicitRuntime}' does not support model format '{Describe(format, formatVersion)}'");
            }

            return (named, null, null);
        }

        var candidates = runtimes
            .Where(r => !r.Disabled && r.ProtocolVersions.Contains(protocol))
            .Select(r => (Runtime: r, Format: r.Formats.FirstOrDefault(f => f.AutoSelect && Matches(f, format, formatVersion))))
            .Where(c => c.Format is not null)
            .OrderBy(c => c.Runtime.IsClusterScoped)
            .ThenByDescending(c => c.Format!.Priority)
            .ToList();
        return candidates.Count > 0
            ? (candidates[0].Runtime, null, null)
            : (null, FailureReasons.NoSupportingRuntime, $"no runtime supports model format '{Describe(format, formatVersion)}' with protocol '{protocol}' (this server serves: {string.Join(", ", runtimes.SelectMany(r => r.Formats).Select(f => f.Name).Distinct())})");
    }

    private static bool Matches(SupportedModelFormat supported, string format, string? version) =>
        string.Equals(supported.Name, format, StringComparison.OrdinalIgnoreCase)
        && (version is null || supported.Version is null || version == supported.Version || version.StartsWith(supported.Version + ".", StringComparison.Ordinal));

    private static string Describe(string format, string? version) => version is null ? format : $"{format}:{version}";
}
