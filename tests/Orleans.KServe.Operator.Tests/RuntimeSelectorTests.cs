using Orleans.KServe.Operator.Reconcile;

namespace Orleans.KServe.Operator.Tests;

/// <summary>KServe's runtime selection: which runtime serves a model format, or why none does.</summary>
public sealed class RuntimeSelectorTests
{
    private static readonly string[] V1V2 = ["v1", "v2"];

    private static ServingRuntimeInfo Runtime(
        string name, int priority, bool clusterScoped = true, bool disabled = false, bool autoSelect = true,
        string format = "onnx", string? version = "1", string[]? protocols = null) =>
        new(name, [new SupportedModelFormat(format, version, autoSelect, priority)], protocols ?? V1V2, disabled, clusterScoped);

    private static string? Pick(IReadOnlyList<ServingRuntimeInfo> runtimes, string format = "onnx", string? version = null, string? runtime = null, string protocol = "v1") =>
        RuntimeSelector.Select(runtimes, format, version, runtime, protocol).Runtime?.Name;

    [Fact]
    public void Namespace_runtime_is_chosen_before_a_cluster_runtime_even_with_lower_priority()
    {
        var runtimes = new[]
        {
            Runtime("cluster-high", priority: 10, clusterScoped: true),
            Runtime("namespace-low", priority: 1, clusterScoped: false),
        };

        Assert.Equal("namespace-low", Pick(runtimes));
    }

    [Fact]
    public void Higher_priority_wins_within_the_same_scope_whatever_the_order()
    {
        var low = Runtime("low", priority: 1);
        var high = Runtime("high", priority: 2);

        Assert.Equal("high", Pick([low, high]));
        Assert.Equal("high", Pick([high, low]));
    }

    [Fact]
    public void Disabled_runtime_is_skipped_by_auto_selection()
    {
        var runtimes = new[]
        {
            Runtime("disabled-best", priority: 100, clusterScoped: false, disabled: true),
            Runtime("enabled", priority: 1),
        };

        Assert.Equal("enabled", Pick(runtimes));
    }

    [Fact]
    public void Disabled_runtime_named_explicitly_is_RuntimeDisabled()
    {
        var (runtime, reason, message) = RuntimeSelector.Select(
            [Runtime("off", priority: 1, disabled: true)], "onnx", null, "off", "v1");

        Assert.Null(runtime);
        Assert.Equal("RuntimeDisabled", reason);
        Assert.Contains("'off'", message);
    }

    [Fact]
    public void Runtimes_without_the_requested_protocol_are_not_auto_selected()
    {
        var runtimes = new[]
        {
            Runtime("v1-only", priority: 10, protocols: ["v1"]),
            Runtime("v2-capable", priority: 1, protocols: ["v1", "v2"]),
        };

        Assert.Equal("v1-only", Pick(runtimes, protocol: "v1"));
        Assert.Equal("v2-capable", Pick(runtimes, protocol: "v2"));
    }

    [Fact]
    public void No_runtime_for_the_protocol_is_NoSupportingRuntime_naming_format_and_protocol()
    {
        var (runtime, reason, message) = RuntimeSelector.Select(
            [Runtime("v1-only", priority: 1, protocols: ["v1"])], "onnx", null, null, "grpc-v2");

        Assert.Null(runtime);
        Assert.Equal("NoSupportingRuntime", reason);
        Assert.Contains("onnx", message);
        Assert.Contains("grpc-v2", message);
    }

    [Fact]
    public void Explicit_runtime_without_the_protocol_is_ProtocolNotSupported()
    {
        var (_, reason, message) = RuntimeSelector.Select(
            [Runtime("v1-only", priority: 1, protocols: ["v1"])], "onnx", null, "v1-only", "v2");

        Assert.Equal("ProtocolNotSupported", reason);
        Assert.Contains("'v2'", message);
    }

    [Fact]
    public void Explicit_runtime_that_does_not_support_the_format_is_NoSupportingRuntime_naming_both()
    {
        var runtimes = new[]
        {
            Runtime("sklearn-server", priority: 1, format: "sklearn"),
            Runtime("onnx-server", priority: 1),
        };

        var (runtime, reason, message) = RuntimeSelector.Select(runtimes, "onnx", null, "sklearn-server", "v1");

        Assert.Null(runtime);
        Assert.Equal("NoSupportingRuntime", reason);
        Assert.Contains("sklearn-server", message);
        Assert.Contains("onnx", message);
    }

    [Fact]
    public void Explicit_runtime_is_used_even_when_it_does_not_auto_select()
    {
        Assert.Equal("kserve-tritonserver", Pick(BuiltInRuntimes.All, runtime: "kserve-tritonserver", protocol: "v2"));
    }

    [Fact]
    public void Runtime_with_autoSelect_false_is_never_picked_automatically()
    {
        var (runtime, reason, _) = RuntimeSelector.Select([Runtime("manual", priority: 100, autoSelect: false)], "onnx", null, null, "v1");

        Assert.Null(runtime);
        Assert.Equal("NoSupportingRuntime", reason);
    }

    [Fact]
    public void Unknown_explicit_runtime_is_RuntimeNotRecognized_listing_the_known_ones()
    {
        var (runtime, reason, message) = RuntimeSelector.Select(BuiltInRuntimes.All, "onnx", null, "nope", "v1");

        Assert.Null(runtime);
        Assert.Equal("RuntimeNotRecognized", reason);
        Assert.Contains("'nope'", message);
        Assert.Contains("kserve-onnxruntime", message);
    }

    [Theory]
    [InlineData(null, true)]
    [InlineData("1", true)]
    [InlineData("1.4", true)]
    [InlineData("10", false)]
    [InlineData("2", false)]
    public void Format_version_matches_the_same_major_version(string? requested, bool matches)
    {
        var picked = Pick([Runtime("onnx-v1", priority: 1, version: "1")], version: requested);

        Assert.Equal(matches ? "onnx-v1" : null, picked);
    }

    [Fact]
    public void Format_names_compare_case_insensitively()
    {
        Assert.Equal("r", Pick([Runtime("r", priority: 1, format: "ONNX")], format: "onnx"));
    }

    [Theory]
    [InlineData("v1")]
    [InlineData("v2")]
    [InlineData("grpc-v1")]
    [InlineData("grpc-v2")]
    public void Built_in_onnx_runtime_is_chosen_for_every_protocol(string protocol)
    {
        Assert.Equal("kserve-onnxruntime", Pick(BuiltInRuntimes.All, protocol: protocol));
    }

    [Fact]
    public void Reconcile_uses_custom_runtimes_passed_to_the_folder_scan()
    {
        using var repo = new TempRepository();
        repo.Touch("models/m/model.onnx");
        repo.Write("isvc.yaml", KServeShapesTests.Isvc("custom", "file://models/m"));
        ServingRuntimeInfo[] runtimes =
        [
            .. BuiltInRuntimes.All,
            Runtime("team-onnx", priority: 0, clusterScoped: false),
        ];

        var entry = Assert.Single(new Sources.LocalFolderSource(repo.Root).Scan(runtimes));

        Assert.Equal("team-onnx", entry.Served().Runtime);
    }
}
