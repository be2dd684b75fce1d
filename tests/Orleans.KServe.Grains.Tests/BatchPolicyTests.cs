using System.Collections.Immutable;
using Microsoft.Extensions.Time.Testing;
using Orleans.KServe.Contracts.Inference;
using Orleans.KServe.Contracts.Models;
using Orleans.KServe.Grains.Batching;

namespace Orleans.KServe.Grains.Tests;

public sealed class BatchPolicyTests
{
    private readonly FakeTimeProvider _time = new(DateTimeOffset.Parse("2026-11-27T12:00:00Z"));

    private BatchPolicy<string> Policy(int max = 8, long delayUs = 5000, int[]? preferred = null, int queue = 0, int levels = 0, long timeoutUs = 0) =>
        new(new BatchingSettings
        {
            MaxBatchSize = max,
            MaxQueueDelayMicroseconds = delayUs,
            PreferredBatchSizes = (preferred ?? []).ToImmutableArray(),
            MaxQueueSize = queue,
            PriorityLevels = levels,
            DefaultPriorityLevel = levels > 0 ? levels : 0,
            DefaultQueueTimeoutMicroseconds = timeoutUs,
        }, _time);

    private static IEnumerable<string> Names(List<QueuedRequest<string>> batch) => batch.Select(b => b.Payload);

    [Fact]
    public void A_lone_request_waits_exactly_the_max_queue_delay()
    {
        var policy = Policy(delayUs: 5000);
        policy.Enqueue("a", 1, "k", null, null);
        Assert.False(policy.TryTakeBatch(out _));
        Assert.Equal(TimeSpan.FromMilliseconds(5), policy.NextWakeUp());

        _time.Advance(TimeSpan.FromMicroseconds(4999));
        Assert.False(policy.TryTakeBatch(out _));
        Assert.Equal(TimeSpan.FromMicroseconds(1), policy.NextWakeUp());

        _time.Advance(TimeSpan.FromMicroseconds(1));
        Assert.True(policy.TryTakeBatch(out var batch));
        Assert.Equal(["a"], Names(batch));
        Assert.Null(policy.NextWakeUp());
    }

    [Fact]
    public void A_full_batch_goes_at_once_and_the_rest_waits()
    {
        var policy = Policy(max: 4);
        policy.Enqueue("a", 1, "k", null, null);
        policy.Enqueue("b", 2, "k", null, null);
        Assert.False(policy.TryTakeBatch(out _));
        policy.Enqueue("c", 1, "k", null, null);
        policy.Enqueue("d", 1, "k", null, null);
        Assert.True(policy.TryTakeBatch(out var batch));
        Assert.Equal(["a", "b", "c"], Names(batch));
        Assert.Equal(1, policy.Count);
        Assert.False(policy.TryTakeBatch(out _));
    }

    [Fact]
    public void A_request_larger_than_the_maximum_runs_alone()
    {
        var policy = Policy(max: 4);
        policy.Enqueue("big", 9, "k", null, null);
        policy.Enqueue("small", 1, "k", null, null);
        Assert.True(policy.TryTakeBatch(out var batch));
        Assert.Equal(["big"], Names(batch));
    }

    [Fact]
    public void Different_shapes_never_share_a_batch()
    {
        var policy = Policy(max: 4, delayUs: 0);
        policy.Enqueue("a", 1, "[2]", null, null);
        policy.Enqueue("b", 1, "[3]", null, null);
        policy.Enqueue("c", 1, "[2]", null, null);
        Assert.True(policy.TryTakeBatch(out var first));
        Assert.Equal(["a", "c"], Names(first));
        Assert.True(policy.TryTakeBatch(out var second));
        Assert.Equal(["b"], Names(second));
    }

    [Fact]
    public void A_preferred_size_goes_before_the_delay()
    {
        var policy = Policy(max: 16, preferred: [2, 4]);
        policy.Enqueue("a", 1, "k", null, null);
        Assert.False(policy.TryTakeBatch(out _));
        policy.Enqueue("b", 1, "k", null, null);
        policy.Enqueue("c", 1, "k", null, null);
        Assert.True(policy.TryTakeBatch(out var batch));
        Assert.Equal(["a", "b"], Names(batch));
        Assert.False(policy.TryTakeBatch(out _));
    }

    [Fact]
    public void Higher_priority_requests_are_batched_first()
    {
        var policy = Policy(max: 2, levels: 3);
        policy.Enqueue("low", 1, "k", 3, null);
        policy.Enqueue("default", 1, "k", null, null);
        policy.Enqueue("high", 1, "k", 1, null);
        policy.Enqueue("mid", 1, "k", 2, null);
        Assert.True(policy.TryTakeBatch(out var batch));
        Assert.Equal(["high", "mid"], Names(batch));
        var e = Assert.Throws<InferenceException>(() => policy.Enqueue("x", 1, "k", 4, null));
        Assert.Equal(InferenceErrorKind.InvalidInput, e.Kind);
    }

    [Fact]
    public void A_full_queue_rejects_with_resource_exhausted()
    {
        var policy = Policy(queue: 2);
        policy.Enqueue("a", 1, "k", null, null);
        policy.Enqueue("b", 1, "k", null, null);
        var e = Assert.Throws<InferenceException>(() => policy.Enqueue("c", 1, "k", null, null));
        Assert.Equal(InferenceErrorKind.ResourceExhausted, e.Kind);
        Assert.Contains("queue is full", e.Message);
    }

    [Fact]
    public void Requests_time_out_in_the_queue_by_default_or_by_their_own_timeout()
    {
        var policy = Policy(delayUs: 100_000, timeoutUs: 2000);
        policy.Enqueue("default", 1, "k", null, null);
        policy.Enqueue("own", 1, "k", null, 1000);
        Assert.Equal(TimeSpan.FromMilliseconds(1), policy.NextWakeUp());

        _time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.Equal(["own"], policy.TakeExpired().Select(e => e.Payload));
        _time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.Equal(["default"], policy.TakeExpired().Select(e => e.Payload));
        Assert.Equal(0, policy.Count);
    }

    [Fact]
    public void A_removed_request_is_not_batched()
    {
        var policy = Policy(max: 2, delayUs: 0);
        var a = policy.Enqueue("a", 1, "k", null, null);
        policy.Enqueue("b", 1, "k", null, null);
        Assert.True(policy.Remove(a));
        Assert.False(policy.Remove(a));
        Assert.True(policy.TryTakeBatch(out var batch));
        Assert.Equal(["b"], Names(batch));
    }
}
