using System.Text.Json.Nodes;
using Grpc.Net.Client;
using Orleans.KServe.Grpc;
using Orleans.KServe.ModelTools;
using Orleans.KServe.ModelTools.Onnx;

namespace Orleans.KServe.FunctionalTests;

/// <summary>Batched models over the real server, with settings chosen to make each behaviour observable.</summary>
public sealed class BatchingServerFixture : ServerFixture
{
    protected override void WriteMore(string folder)
    {
        var fixedModel = new OnnxModel("fixed");
        fixedModel.Graph.AddInput("input", OnnxDataType.Float, 1, 2);
        fixedModel.Graph.Apply("Identity", "output", ["input"]);
        fixedModel.Graph.AddOutput("output", OnnxDataType.Float, 1, 2);
        fixedModel.Save(Path.Combine(folder, "fixed", "model.onnx"));

        string Service(string name, string storage, int max, int latencyMs, string annotations = "{}") => $$"""
            apiVersion: serving.kserve.io/v1beta1
            kind: InferenceService
            metadata:
              name: {{name}}
              annotations: {{annotations}}
            spec:
              predictor:
                batcher:
                  maxBatchSize: {{max}}
                  maxLatency: {{latencyMs}}
                model:
                  modelFormat:
                    name: onnx
                  storageUri: file://{{storage}}
            ---

            """;

        var models = Repo.SampleModels;
        File.WriteAllText(Path.Combine(folder, "batching.yaml"),
            Service("mlp-batched", $"{models}/mlp", 32, 50)
            + Service("identity-batched", $"{models}/identity-fp32", 16, 50)
            + Service("fixed-batched", "fixed", 8, 10)
            + Service("tiny-queue", $"{models}/double", 8, 3000, "{orleans.kserve.io/max-queue-size: \"1\"}")
            + Service("short-timeout", $"{models}/double", 8, 3000, "{orleans.kserve.io/default-queue-timeout-us: \"50000\"}")
            + Service("slow-batch", $"{models}/double", 8, 1500));
    }
}

public sealed class BatchingTests(BatchingServerFixture server) : IClassFixture<BatchingServerFixture>
{
    private static float[] Row(int seed) => Enumerable.Range(0, MlpModel.InputSize).Select(i => (float)Math.Sin((seed + 1) * 0.11 * (i + 1))).ToArray();

    private async Task<JsonNode> StatsAsync(string model) =>
        (await server.GetJsonAsync($"/v2/models/{model}/stats")).Body!["model_stats"]![0]!;

    [Fact]
    public async Task Concurrent_requests_form_batches_and_each_caller_gets_its_own_answer()
    {
        const int callers = 24;
        var calls = Enumerable.Range(0, callers).Select(i => server.PostJsonAsync("/v2/models/mlp-batched/infer",
            $$"""{"id":"c{{i}}","inputs":[{"name":"input","shape":[1,64],"datatype":"FP32","data":{{Json.Array(Row(i))}}}]}""")).ToList();
        var answers = await Task.WhenAll(calls);

        for (var i = 0; i < callers; i++)
        {
            var (status, body) = answers[i];
            Assert.Equal(200, status);
            Assert.Equal($"c{i}", body!["id"]!.GetValue<string>());
            var outputs = body["outputs"]!.AsArray().ToDictionary(o => o!["name"]!.GetValue<string>(), o => o!);
            Assert.Equal("[1,10]", outputs["probabilities"]["shape"]!.ToJsonString());
            var expected = MlpReference.Forward(Row(i));
            var actual = Json.Floats(outputs["probabilities"]["data"]);
            for (var c = 0; c < MlpModel.Classes; c++)
            {
                Assert.InRange(actual[c], expected[c] - 1e-4, expected[c] + 1e-4);
            }
        }

        var stats = await StatsAsync("mlp-batched");
        var inferences = stats["inference_count"]!.GetValue<long>();
        var executions = stats["execution_count"]!.GetValue<long>();
        Assert.Equal(callers, inferences);
        Assert.True(executions < inferences, $"{executions} executions for {inferences} inferences: no batch formed");
        Assert.Contains(stats["batch_stats"]!.AsArray(), b => b!["batch_size"]!.GetValue<long>() > 1);
    }

    [Fact]
    public async Task Requests_with_different_shapes_are_never_mixed()
    {
        var calls = Enumerable.Range(0, 12).Select(i =>
        {
            var width = 2 + (i % 3);
            var data = Enumerable.Range(0, width).Select(v => (float)(i * 10 + v)).ToArray();
            return (data, task: server.PostJsonAsync("/v2/models/identity-batched/infer",
                $$"""{"inputs":[{"name":"input","shape":[1,{{width}}],"datatype":"FP32","data":{{Json.Array(data)}}}]}"""));
        }).ToList();

        foreach (var (data, task) in calls)
        {
            var (status, body) = await task;
            Assert.Equal(200, status);
            Assert.Equal($"[1,{data.Length}]", body!["outputs"]![0]!["shape"]!.ToJsonString());
            Assert.Equal(data, Json.Floats(body["outputs"]![0]!["data"]));
        }
    }

    [Fact]
    public async Task Grpc_requests_are_batched_too()
    {
        using var channel = GrpcChannel.ForAddress(server.GrpcAddress);
        var client = new GRPCInferenceService.GRPCInferenceServiceClient(channel);
        var calls = Enumerable.Range(0, 8).Select(i =>
        {
            var request = new ModelInferRequest { ModelName = "identity-batched", Id = $"g{i}" };
            var input = new ModelInferRequest.Types.InferInputTensor { Name = "input", Datatype = "FP32", Contents = new InferTensorContents() };
            input.Shape.Add([1, 2]);
            input.Contents.Fp32Contents.Add([i, -i]);
            request.Inputs.Add(input);
            return client.ModelInferAsync(request).ResponseAsync;
        }).ToList();
        var responses = await Task.WhenAll(calls);
        for (var i = 0; i < responses.Length; i++)
        {
            Assert.Equal($"g{i}", responses[i].Id);
            Assert.Equal(new float[] { i, -i }, responses[i].Outputs[0].Contents.Fp32Contents);
        }
    }

    [Fact]
    public async Task A_model_whose_batch_dimension_is_fixed_runs_unbatched_and_says_why()
    {
        var (status, body) = await server.PostJsonAsync("/v2/models/fixed-batched/infer",
            """{"inputs":[{"name":"input","shape":[1,2],"datatype":"FP32","data":[3,4]}]}""");
        Assert.Equal(200, status);
        Assert.Equal([3f, 4f], Json.Floats(body!["outputs"]![0]!["data"]));
        var config = (await server.GetJsonAsync("/v2/models/fixed-batched/config")).Body!;
        Assert.Equal(0, config["max_batch_size"]!.GetValue<int>());
        Assert.Contains("not variable", config["batching_note"]!.GetValue<string>());
        Assert.Null(config["dynamic_batching"]);
    }

    [Fact]
    public async Task The_config_endpoint_shows_the_batching_in_effect()
    {
        var config = (await server.GetJsonAsync("/v2/models/mlp-batched/config")).Body!;
        Assert.Equal(32, config["max_batch_size"]!.GetValue<int>());
        Assert.Equal(50_000, config["dynamic_batching"]!["max_queue_delay_microseconds"]!.GetValue<long>());
        Assert.Equal("[64]", config["input"]![0]!["dims"]!.ToJsonString());
    }

    [Fact]
    public async Task A_full_queue_answers_503_with_a_message()
    {
        const string body = """{"inputs":[{"name":"input","shape":[1,2],"datatype":"FP32","data":[1,2]}]}""";
        // Two callers at once: whichever reaches the queue first waits out the 3 s delay (the queue holds one), the
        // other is turned away. Which one arrives first is up to the connections, so neither is assumed.
        var answers = await Task.WhenAll(
            server.PostJsonAsync("/v2/models/tiny-queue/infer", body),
            server.PostJsonAsync("/v2/models/tiny-queue/infer", body));

        var rejected = Assert.Single(answers, a => a.Status != 200);
        Assert.Equal(503, rejected.Status);
        Assert.Contains("queue is full", Json.Error(rejected.Body));
        Assert.Single(answers, a => a.Status == 200);
    }

    [Fact]
    public async Task A_request_that_waits_past_its_queue_timeout_is_rejected()
    {
        var (status, body) = await server.PostJsonAsync("/v2/models/short-timeout/infer",
            """{"inputs":[{"name":"input","shape":[1,2],"datatype":"FP32","data":[1,2]}]}""");
        Assert.Equal(503, status);
        Assert.Contains("timed out in the model's queue", Json.Error(body));

        // Its own timeout parameter (µs) overrides the default: long enough to reach the 3 s batch delay.
        var (ok, _) = await server.PostJsonAsync("/v2/models/short-timeout/infer",
            """{"parameters":{"timeout":10000000},"inputs":[{"name":"input","shape":[1,2],"datatype":"FP32","data":[1,2]}]}""");
        Assert.Equal(200, ok);
    }

    [Fact]
    public async Task A_caller_that_leaves_the_queue_is_not_executed()
    {
        using (var leaving = new CancellationTokenSource(TimeSpan.FromMilliseconds(300)))
        {
            var content = new StringContent("""{"inputs":[{"name":"input","shape":[1,2],"datatype":"FP32","data":[1,2]}]}""", System.Text.Encoding.UTF8, "application/json");
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => server.Http.PostAsync("/v2/models/slow-batch/infer", content, leaving.Token));
        }

        // The caller's departure is recorded as a failure once the server sees it.
        var stats = await Wait.ForAsync(() => StatsAsync("slow-batch"), s => s["inference_stats"]!["fail"]!["count"]!.GetValue<long>() > 0,
            "the departed caller to be counted as a failure", TimeSpan.FromSeconds(10), s => s.ToJsonString());

        Assert.Equal(1, stats["inference_stats"]!["fail"]!["count"]!.GetValue<long>());

        // A later request waits out the batch delay alone: had the departed caller stayed queued, both would share it.
        var (status, body) = await server.PostJsonAsync("/v2/models/slow-batch/infer",
            """{"inputs":[{"name":"input","shape":[1,2],"datatype":"FP32","data":[5,6]}]}""");
        Assert.Equal(200, status);
        Assert.Equal([10f, 12f], Json.Floats(body!["outputs"]![0]!["data"]));
        stats = await StatsAsync("slow-batch");
        Assert.Equal(1, stats["inference_count"]!.GetValue<long>());
        Assert.Equal("[1]", new JsonArray(stats["batch_stats"]!.AsArray().Select(b => (JsonNode?)JsonValue.Create(b!["batch_size"]!.GetValue<long>())).ToArray()).ToJsonString());
        Assert.Equal(1, (await StatsAsync("slow-batch"))["execution_count"]!.GetValue<long>());
    }
}
