using System.Collections.Immutable;
using System.Runtime.InteropServices;
using Orleans.KServe.Contracts.Grains;
using Orleans.KServe.Contracts.Inference;
using Orleans.KServe.Contracts.Models;
using Orleans.KServe.Contracts.Tensors;

namespace Orleans.KServe.Grains.Tests;

/// <summary>The pieces of a make-before-break swap: a retiring replica, publishing a staged revision, and routers.</summary>
[Collection(ClusterCollection.Name)]
public sealed class RetirementTests(ClusterFixture fixture)
{
    private static InferenceRequest One(float value) =>
        new(Guid.NewGuid().ToString(), [new Tensor("input", TensorDataType.FP32, [1], MemoryMarshal.AsBytes(new[] { value }.AsSpan()).ToArray())], []);

    private IModelRegistryGrain Registry => fixture.Client.GetGrain<IModelRegistryGrain>(IModelRegistryGrain.ClusterKey);

    [Fact]
    public async Task A_retiring_replica_finishes_its_call_in_progress_refuses_new_ones_as_retired_and_frees_its_runtime_after()
    {
        var model = GatedRuntimeFactory.For("retiring");
        var table = await fixture.DeclareAsync(nameof(A_retiring_replica_finishes_its_call_in_progress_refuses_new_ones_as_retired_and_frees_its_runtime_after),
            ClusterFixture.Gated("retiring"));
        var grain = fixture.Grain(table, "retiring");
        await ClusterFixture.WaitForStateAsync(grain, ModelState.Loaded, "gated model load");

        var inProgress = grain.InferAsync(One(5)).AsTask();
        await ClusterFixture.WaitUntilAsync(() => model.Running == 1, "the call to be executing");
        var retiring = grain.RetireAsync(TimeSpan.FromSeconds(20));
        await ClusterFixture.WaitForStateAsync(grain, ModelState.Retired, "the replica to retire");

        var refused = await Assert.ThrowsAsync<InferenceException>(() => grain.InferAsync(One(6)).AsTask());
        Assert.Equal(InferenceErrorKind.Retired, refused.Kind);
        Assert.Contains("a newer revision serves in its place", refused.Message);
        Assert.False(retiring.IsCompleted, "the retirement answered while a call was still executing");
        Assert.Equal(0, model.Disposed);

        model.RunGate.Set();
        var answer = await inProgress;
        Assert.Equal([5f], MemoryMarshal.Cast<byte, float>(answer.Outputs[0].Data.Span).ToArray());
        Assert.Equal(ModelState.Retired, (await retiring.WaitAsync(TimeSpan.FromSeconds(30))).State);
        await ClusterFixture.WaitUntilAsync(() => model.Disposed == 1, "the runtime to be freed");
    }

    [Fact]
    public async Task A_retirement_answers_after_its_drain_bound_and_frees_the_runtime_only_once_the_last_call_has_finished()
    {
        var model = GatedRuntimeFactory.For("slow-retire");
        var table = await fixture.DeclareAsync(nameof(A_retirement_answers_after_its_drain_bound_and_frees_the_runtime_only_once_the_last_call_has_finished),
            ClusterFixture.Gated("slow-retire"));
        var grain = fixture.Grain(table, "slow-retire");
        await ClusterFixture.WaitForStateAsync(grain, ModelState.Loaded, "gated model load");

        var inProgress = grain.InferAsync(One(1)).AsTask();
        await ClusterFixture.WaitUntilAsync(() => model.Running == 1, "the call to be executing");
        Assert.Equal(ModelState.Retired, (await grain.RetireAsync(TimeSpan.FromMilliseconds(200))).State);
        Assert.False(inProgress.IsCompleted);
        Assert.Equal(0, model.Disposed);

        model.RunGate.Set();
        await inProgress;
        await ClusterFixture.WaitUntilAsync(() => model.Disposed == 1, "the runtime to be freed after the last call");
    }

    [Fact]
    public async Task Publishing_an_older_staged_revision_after_a_newer_one_keeps_the_newer()
    {
        const string source = nameof(Publishing_an_older_staged_revision_after_a_newer_one_keeps_the_newer);
        var entry = fixture.Onnx("raced", "double");
        var older = await Registry.StageAsync(source, entry);
        var newer = await Registry.StageAsync(source, entry);
        Assert.Equal(older.Revision + 1, newer.Revision);

        var first = await Registry.PublishAsync("tests", "raced", newer.Revision);
        Assert.True(first.Published);
        Assert.Equal(newer.Revision, first.Current!.Revision);

        var second = await Registry.PublishAsync("tests", "raced", older.Revision);
        Assert.False(second.Published);
        Assert.Null(second.Replaced);
        Assert.Equal(newer.Revision, second.Current!.Revision);
        Assert.Equal(newer.Revision, (await Registry.GetTableAsync()).Services.Single(s => s.Name == "raced").Revision);

        var third = await Registry.StageAsync(source, entry);
        var replacing = await Registry.PublishAsync("tests", "raced", third.Revision);
        Assert.Equal(newer.Revision, replacing.Replaced!.Revision);
        Assert.True(await Registry.DiscardAsync("tests", "raced", (await Registry.StageAsync(source, entry)).Revision));
        await fixture.DeclareAsync(source);
    }

    [Fact]
    public async Task The_registry_knows_which_table_each_router_routes_by_until_it_leaves()
    {
        var router = "test-router/" + Guid.NewGuid();
        var before = await Registry.GetTableAsync();
        await Registry.WaitForChangeAsync(before.Version, TimeSpan.Zero, router);

        var table = await fixture.DeclareAsync(nameof(The_registry_knows_which_table_each_router_routes_by_until_it_leaves), fixture.Onnx("routed", "double"));
        Assert.Contains(router, await Registry.WaitForRoutersAsync(table.Version, TimeSpan.FromMilliseconds(100)));

        // Its next watch says it has the new table.
        var watching = Registry.WaitForChangeAsync(table.Version, TimeSpan.FromSeconds(10), router);
        Assert.DoesNotContain(router, await Registry.WaitForRoutersAsync(table.Version, TimeSpan.FromSeconds(5)));

        var next = await fixture.DeclareAsync(nameof(The_registry_knows_which_table_each_router_routes_by_until_it_leaves));
        Assert.Equal(next.Version, (await watching).Version);
        Assert.Contains(router, await Registry.WaitForRoutersAsync(next.Version, TimeSpan.FromMilliseconds(100)));
        await Registry.LeaveAsync(router);
        Assert.DoesNotContain(router, await Registry.WaitForRoutersAsync(next.Version, TimeSpan.FromMilliseconds(100)));
    }

    [Fact]
    public async Task Waiting_until_settled_answers_when_the_replica_has_loaded()
    {
        var model = GatedRuntimeFactory.For("settling");
        model.LoadGate.Reset();
        var table = await fixture.DeclareAsync(nameof(Waiting_until_settled_answers_when_the_replica_has_loaded), ClusterFixture.Gated("settling"));
        var grain = fixture.Grain(table, "settling");
        Assert.Equal(ModelState.Loading, (await grain.WaitUntilSettledAsync(TimeSpan.FromMilliseconds(50))).State);

        var settled = grain.WaitUntilSettledAsync(TimeSpan.FromSeconds(20));
        model.LoadGate.Set();
        Assert.Equal(ModelState.Loaded, (await settled.WaitAsync(TimeSpan.FromSeconds(30))).State);
    }
}
