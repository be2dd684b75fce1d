namespace Orleans.KServe.FunctionalTests;

[Collection(ServerCollection.Name)]
public sealed class MetricsTests(ServerFixture server)
{
    [Fact]
    public async Task Prometheus_metrics_carry_the_names_kserve_and_triton_users_search_for()
    {
        for (var i = 0; i < 3; i++)
        {
            Assert.Equal(200, (await server.PostJsonAsync("/v2/models/double/infer",
                """{"inputs":[{"name":"input","shape":[2,2],"datatype":"FP32","data":[1,2,3,4]}]}""")).Status);
        }

        Assert.Equal(400, (await server.PostJsonAsync("/v2/models/double/infer",
            """{"inputs":[{"name":"input","shape":[1,3],"datatype":"FP32","data":[1,2,3]}]}""")).Status);

        // The exporter collects on scrape; counters are cumulative, so compare against at least what this test did.
        var text = await server.Http.GetStringAsync("/metrics");
        Assert.True(Value(text, "nv_inference_request_success_total", "model=\"double\"") >= 3, text);
        Assert.True(Value(text, "nv_inference_request_failure_total", "model=\"double\"") >= 1, text);
        Assert.True(Value(text, "nv_inference_count_total", "model=\"double\"") >= 6, text);
        Assert.True(Value(text, "nv_inference_exec_count_total", "model=\"double\"") >= 3, text);
        Assert.True(Value(text, "request_predict_seconds_count", "model_name=\"double\"") >= 4, text);
        Assert.Contains("request_predict_seconds_bucket{", text);
    }

    private static double Value(string exposition, string metric, string label)
    {
        foreach (var line in exposition.Split('\n'))
        {
            if (line.StartsWith(metric + "{", StringComparison.Ordinal) && line.Contains(label, StringComparison.Ordinal))
            {
                return double.Parse(line[(line.LastIndexOf(' ') + 1)..], System.Globalization.CultureInfo.InvariantCulture);
            }
        }

        return -1;
    }
}
