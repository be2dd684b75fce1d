using Microsoft.Extensions.DependencyInjection;
using System.Collections.Immutable;
using System.Runtime.InteropServices;
using Orleans.KServe.Contracts.Inference;
using Orleans.KServe.Contracts.Models;
using Orleans.KServe.Contracts.Tensors;

namespace Orleans.KServe.Grains.Tests;

[Collection(ClusterCollection.Name)]
public sealed class ModelGrainTests(ClusterFixture fixture)
{
    private static InferenceRequest Floats(string input, params float[] values) =>
        new(Guid.NewGuid().ToString(), [new Tensor(input, TensorDataType.FP32, [values.Length], MemoryMarshal.AsBytes(values.AsSpan()).ToArray())], []);

    private static InferenceRequest Matrix(float[,] values)
    {
        var flat = values.Cast<float>().ToArray();
        return new(Guid.NewGuid().ToString(),
            [new Tensor("input", TensorDataType.FP32, [values.GetLength(0), values.GetLength(1)], MemoryMarshal.AsBytes(flat.AsSpan()).ToArray())], []);
    }

    private static float[] Values(Tensor tensor) => MemoryMarshal.Cast<byte, float>(tensor.Data.Span).ToArray();

    [Fact]
    public async Task Two_executions_of_one_grain_overlap()
    {
        var model = GatedRuntimeFactory.For("overlap");
        var table = await fixture.DeclareAsync(nameof(Two_executions_of_one_grain_overlap), ClusterFixture.Gated("overlap"));
        var grain = fixture.Grain(table, "overlap");
        await ClusterFixture.WaitForStateAsync(grain, ModelState.Loaded, "gated model load");

        var first = grain.InferAsync(Floats("input", 1)).AsTask();
        var second = grain.InferAsync(Floats("input", 2)).AsTask();
        await ClusterFixture.WaitUntilAsync(() => model.Running == 2, "both executions to be inside the runtime at once");
        model.RunGate.Set();

        Assert.Equal(new[] { 1f }, Values((await first).Outputs[0]));
        Assert.Equal(new[] { 2f }, Values((await second).Outputs[0]));
        Assert.Equal(2, model.MaxRunning);
    }

    [Fact]
    public async Task Another_grain_answers_while_one_execution_is_blocked()
    {
        var blocked = GatedRuntimeFactory.For("blocked");
        var table = await fixture.DeclareAsync(nameof(Another_grain_answers_while_one_execution_is_blocked),
            ClusterFixture.Gated("blocked"), fixture.Onnx("double-a", "double"));
        var gated = fixture.Grain(table, "blocked");
        var onnx = fixture.Grain(table, "double-a");
        await ClusterFixture.WaitForStateAsync(gated, ModelState.Loaded, "gated model load");
        await ClusterFixture.WaitForStateAsync(onnx, ModelState.Loaded, "double load");

        var stuck = gated.InferAsync(Floats("input", 7)).AsTask();
        await ClusterFixture.WaitUntilAsync(() => blocked.Running == 1, "the gated execution to start");

        var answer = await onnx.InferAsync(Matrix(new float[,] { { 1, 2 }, { 3, 4 } })).AsTask().WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(new[] { 2f, 4f, 6f, 8f }, Values(answer.Outputs[0]));
        Assert.False(stuck.IsCompleted);

        blocked.RunGate.Set();
        Assert.Equal(new[] { 7f }, Values((await stuck).Outputs[0]));
    }

    [Fact]
    public async Task Executions_beyond_the_executor_threads_wait_for_a_free_thread()
    {
        var model = GatedRuntimeFactory.For("bounded");
        var table = await fixture.DeclareAsync(nameof(Executions_beyond_the_executor_threads_wait_for_a_free_thread), ClusterFixture.Gated("bounded"));
        var grain = fixture.Grain(table, "bounded");
        await ClusterFixture.WaitForStateAsync(grain, ModelState.Loaded, "gated model load");

        var calls = Enumerable.Range(0, ClusterFixture.ExecutorThreads + 2).Select(i => grain.InferAsync(Floats("input", i)).AsTask()).ToList();
        await ClusterFixture.WaitUntilAsync(() => model.Running == ClusterFixture.ExecutorThreads, "every executor thread to be busy");

        // Every call has reached the executor; the extra ones are queued, not running: it bounds concurrency.
        var executor = ((Orleans.TestingHost.InProcessSiloHandle)fixture.Cluster.Silos[0]).ServiceProvider.GetRequiredService<Execution.InferenceExecutor>();
        await ClusterFixture.WaitUntilAsync(() => executor.Pending == calls.Count, "every call to reach the executor");
        Assert.Equal(ClusterFixture.ExecutorThreads, model.Running);
        Assert.Equal(ClusterFixture.ExecutorThreads, model.Started);

        model.RunGate.Set();
        var results = await Task.WhenAll(calls);
        Assert.Equal(Enumerable.Range(0, calls.Count).Select(i => (float)i), results.Select(r => Values(r.Outputs[0])[0]));
        Assert.Equal(ClusterFixture.ExecutorThreads, model.MaxRunning);
    }

    [Fact]
    public async Task A_loading_model_answers_unavailable_then_serves()
    {
        var model = GatedRuntimeFactory.For("slow-load");
        model.LoadGate.Reset();
        model.RunGate.Set();
        var table = await fixture.DeclareAsync(nameof(A_loading_model_answers_unavailable_then_serves), ClusterFixture.Gated("slow-load"));
        var grain = fixture.Grain(table, "slow-load");

        Assert.Equal(ModelState.Loading, (await grain.GetStatusAsync()).State);
        var error = await Assert.ThrowsAsync<InferenceException>(() => grain.InferAsync(Floats("input", 1)).AsTask());
        Assert.Equal(InferenceErrorKind.Unavailable, error.Kind);
        Assert.Contains("loading", error.Message);
        var metadataError = await Assert.ThrowsAsync<InferenceException>(() => grain.GetMetadataAsync().AsTask());
        Assert.Equal(InferenceErrorKind.Unavailable, metadataError.Kind);

        model.LoadGate.Set();
        await ClusterFixture.WaitForStateAsync(grain, ModelState.Loaded, "load after the gate opened");
        Assert.Equal(new[] { 1f }, Values((await grain.InferAsync(Floats("input", 1))).Outputs[0]));
    }

    [Fact]
    public async Task A_runtime_failure_is_an_internal_error_with_the_runtime_message_and_the_grain_keeps_serving()
    {
        var model = GatedRuntimeFactory.For("failing");
        model.RunGate.Set();
        model.ExecutionFailure = "kernel exploded";
        var table = await fixture.DeclareAsync(nameof(A_runtime_failure_is_an_internal_error_with_the_runtime_message_and_the_grain_keeps_serving), ClusterFixture.Gated("failing"));
        var grain = fixture.Grain(table, "failing");
        await ClusterFixture.WaitForStateAsync(grain, ModelState.Loaded, "gated model load");

        var error = await Assert.ThrowsAsync<InferenceException>(() => grain.InferAsync(Floats("input", 1)).AsTask());
        Assert.Equal(InferenceErrorKind.Internal, error.Kind);
        Assert.Equal(InferenceErrorKind.Internal, error.Kind);
        Assert.Contains("kernel exploded", error.Message);

        model.ExecutionFailure = null;
        Assert.Equal(new[] { 3f }, Values((await grain.InferAsync(Floats("input", 3))).Outputs[0]));
    }

    [Theory]
    [InlineData("zipmap", "not a tensor")]
    [InlineData("external-data", "weights.bin")]
    public async Task An_onnx_file_runtime_cannot_serve_fails_to_load_with_its_reason(string folder, string reasonPart)
    {
        var name = "bad-" + folder;
        var table = await fixture.DeclareAsync(nameof(An_onnx_file_runtime_cannot_serve_fails_to_load_with_its_reason) + folder, fixture.Onnx(name, folder));
        var grain = fixture.Grain(table, name);
        var status = await ClusterFixture.WaitForStateAsync(grain, ModelState.FailedToLoad, name);
        Assert.Contains(reasonPart, status.Reason);

        var error = await Assert.ThrowsAsync<InferenceException>(() => grain.InferAsync(Floats("input", 1)).AsTask());
        Assert.Equal(InferenceErrorKind.Unavailable, error.Kind);
        Assert.Contains(reasonPart, error.Message);
    }

    [Fact]
    public async Task Onnx_metadata_reports_dynamic_dimensions_as_minus_one()
    {
        var table = await fixture.DeclareAsync(nameof(Onnx_metadata_reports_dynamic_dimensions_as_minus_one), fixture.Onnx("double-meta", "double"));
        var grain = fixture.Grain(table, "double-meta");
        await ClusterFixture.WaitForStateAsync(grain, ModelState.Loaded, "double load");
        var metadata = await grain.GetMetadataAsync();
        Assert.Equal("onnxruntime_onnx", metadata.Platform);
        var input = Assert.Single(metadata.Inputs);
        Assert.Equal(("input", TensorDataType.FP32), (input.Name, input.DataType));
        Assert.Equal(new[] { -1L, 2L }, input.Shape.ToArray());
        Assert.Equal(new[] { -1L, 2L }, Assert.Single(metadata.Outputs).Shape.ToArray());
    }

    [Fact]
    public async Task Invalid_requests_are_rejected_by_the_grain_with_what_is_wrong()
    {
        var table = await fixture.DeclareAsync(nameof(Invalid_requests_are_rejected_by_the_grain_with_what_is_wrong), fixture.Onnx("double-v", "double"));
        var grain = fixture.Grain(table, "double-v");
        await ClusterFixture.WaitForStateAsync(grain, ModelState.Loaded, "double load");

        async Task<string> Rejected(InferenceRequest request)
        {
            var e = await Assert.ThrowsAsync<InferenceException>(() => grain.InferAsync(request).AsTask());
            Assert.Equal(InferenceErrorKind.InvalidInput, e.Kind);
            return e.Message;
        }

        Assert.Contains("unknown input 'x'", await Rejected(Floats("x", 1, 2)));
        Assert.Contains("shape [3] but the model expects [-1,2]", await Rejected(Floats("input", 1, 2, 3)));
        Assert.Contains("datatype FP64", await Rejected(new InferenceRequest("i", [new Tensor("input", TensorDataType.FP64, [1, 2], new byte[16])], [])));
        Assert.Contains("needs 8", await Rejected(new InferenceRequest("i", [new Tensor("input", TensorDataType.FP32, [1, 2], new byte[4])], [])));
        Assert.Contains("unknown requested output 'nope'", await Rejected(Matrix(new float[,] { { 1, 2 } }) with { Outputs = [new RequestedOutput("nope")] }));
        Assert.Contains("no inputs", await Rejected(new InferenceRequest("i", [], [])));
    }

    [Fact]
    public async Task The_registry_keeps_the_revision_of_an_unchanged_spec_and_bumps_it_on_change()
    {
        const string source = nameof(The_registry_keeps_the_revision_of_an_unchanged_spec_and_bumps_it_on_change);
        var entry = fixture.Onnx("revisions", "double");
        var first = (await fixture.DeclareAsync(source, entry)).Services.Single(s => s.Name == "revisions");
        var again = await fixture.DeclareAsync(source, entry);
        Assert.Equal(first.Revision, again.Services.Single(s => s.Name == "revisions").Revision);

        var registry = fixture.Client.GetGrain<Contracts.Grains.IModelRegistryGrain>(Contracts.Grains.IModelRegistryGrain.ClusterKey);
        var watch = registry.WaitForChangeAsync(again.Version, TimeSpan.FromSeconds(15));
        var changed = entry with { Spec = entry.Spec! with { Settings = new ModelRuntimeSettings { IntraOpThreads = 1 } } };
        var third = await fixture.DeclareAsync(source, changed);
        Assert.Equal(first.Revision + 1, third.Services.Single(s => s.Name == "revisions").Revision);
        Assert.Equal(third.Version, (await watch.WaitAsync(TimeSpan.FromSeconds(10))).Version);

        var removed = await fixture.DeclareAsync(source);
        Assert.DoesNotContain(removed.Services, s => s.Name == "revisions");
        Assert.Null(await registry.GetSpecAsync(new ModelKey("tests", "revisions", first.Revision + 1, 0).ToString()));
    }

    [Fact]
    public async Task A_model_key_that_is_not_declared_serves_nothing_and_answers_retired_so_that_gateways_route_again()
    {
        var grain = fixture.Client.GetGrain<Contracts.Grains.IModelGrain>(new ModelKey("tests", "never-declared", 1, 0).ToString());
        var status = await grain.GetStatusAsync();
        Assert.Equal(ModelState.Retired, status.State);
        Assert.Contains("no model is declared as 'never-declared' revision 1", status.Reason);
        var error = await Assert.ThrowsAsync<InferenceException>(() => grain.InferAsync(Floats("input", 1)).AsTask());
        Assert.Equal(InferenceErrorKind.Retired, error.Kind);
        Assert.Contains("never-declared", error.Message);
    }
}
