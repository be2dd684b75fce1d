using System.Text.RegularExpressions;

namespace Orleans.KServe.FunctionalTests;

/// <summary>
/// Two servers in one process keep their metrics apart: OpenTelemetry listens to meters by name across the whole
/// process, so without a filter each server's /metrics showed the other's series too.
/// </summary>
public sealed partial class MetricsIsolationTests
{
    private sealed class DoubleServerFixture : ServerFixture
    {
        protected override bool WriteSamples => false;

        protected override void WriteMore(string folder) => LimitsServerFixture.WriteDoubleOnly(folder);
    }

    private const string Body = """{"inputs":[{"name":"input","shape":[1,2],"datatype":"FP32","data":[1,2]}]}""";

    [Fact]
    public async Task Two_servers_in_one_process_each_export_only_their_own_series_and_their_own_identity()
    {
        var a = new DoubleServerFixture();
        var b = new DoubleServerFixture();
        await Task.WhenAll(a.InitializeAsync(), b.InitializeAsync());
        try
        {
            for (var i = 0; i < 3; i++)
            {
                Assert.Equal(200, (await a.PostJsonAsync("/v2/models/double/infer", Body)).Status);
            }

            for (var i = 0; i < 5; i++)
            {
                Assert.Equal(200, (await b.PostJsonAsync("/v2/models/double/infer", Body)).Status);
            }

            var textA = await a.Http.GetStringAsync("/metrics");
            var textB = await b.Http.GetStringAsync("/metrics");
            Assert.Equal(3, Value(textA, "nv_inference_request_success_total", "model=\"double\""));
            Assert.Equal(5, Value(textB, "nv_inference_request_success_total", "model=\"double\""));
            Assert.Equal(3, Value(textA, "request_predict_seconds_count", "model_name=\"double\""));
            Assert.Equal(5, Value(textB, "request_predict_seconds_count", "model_name=\"double\""));

            var identityA = TargetInfo().Match(textA);
            var identityB = TargetInfo().Match(textB);
            Assert.True(identityA.Success, textA);
            Assert.True(identityB.Success, textB);
            Assert.Equal("orleans-kserve", identityA.Groups["service"].Value);
            Assert.NotEqual(identityA.Groups["instance"].Value, identityB.Groups["instance"].Value);
            Assert.DoesNotContain("unknown_service", textA);
        }
        finally
        {
            await Task.WhenAll(a.DisposeAsync(), b.DisposeAsync());
        }
    }

    /// <summary>The sum of every series of <paramref name="metric"/> carrying <paramref name="label"/>.</summary>
    private static double Value(string exposition, string metric, string label) =>
        exposition.Split('\n')
            .Where(line => line.StartsWith(metric + "{", StringComparison.Ordinal) && line.Contains(label, StringComparison.Ordinal))
            .Sum(line => double.Parse(line[(line.LastIndexOf(' ') + 1)..], System.Globalization.CultureInfo.InvariantCulture));

    [GeneratedRegex("""target_info\{(?=[^}]*service_name="(?<service>[^"]+)")(?=[^}]*service_instance_id="(?<instance>[^"]+)")[^}]*\}""")]
    private static partial Regex TargetInfo();
}
