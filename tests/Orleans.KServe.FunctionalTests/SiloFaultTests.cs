using System.Globalization;
using System.Text.Json.Nodes;
using Orleans.KServe.Silo;
using Xunit.Abstractions;

namespace Orleans.KServe.FunctionalTests;

/// <summary>
/// Three silo processes on Redis under load through the front ends of two of them, while the third, the one with the
/// model's only replica, is killed (SIGKILL), frozen (SIGSTOP) or stopped (SIGTERM). Calls whose replica was lost
/// wait and are retried within their deadline; every failure is a 503 with a message; nothing outlives its deadline.
/// </summary>
public sealed class SiloFaultTests(ITestOutputHelper output)
{
    private const int Clients = 8;

    /// <summary>The server's default request timeout, which the silos run with.</summary>
    private static readonly TimeSpan RequestTimeout = TimeSpan.FromSeconds(30);

    /// <summary>
    /// docs/cluster.md's bound on how long a lost silo's models take to answer again: its death is declared within
    /// <see cref="ClusterTiming.DeathDeclarationBound"/>, then the replica activates and loads on a survivor.
    /// </summary>
    private static readonly TimeSpan RecoveryBound = ClusterTiming.DeathDeclarationBound + TimeSpan.FromSeconds(10);

    private sealed class Fixture : IAsyncDisposable
    {
        public RedisServer Redis { get; private init; } = null!;

        public SiloCluster Cluster { get; private init; } = null!;

        public static async Task<Fixture> StartAsync(params string[] extra)
        {
            var redis = await RedisServer.StartAsync();
            try
            {
                return new Fixture { Redis = redis, Cluster = await SiloCluster.StartAsync("redis", redis.Connection, 3, extra) };
            }
            catch
            {
                await redis.DisposeAsync();
                throw;
            }
        }

        public async ValueTask DisposeAsync()
        {
            if (Cluster is not null)
            {
                await Cluster.DisposeAsync();
            }

            await Redis.DisposeAsync();
        }
    }

    /// <summary>Activates the replica by a call, then finds the member whose silo hosts it.</summary>
    private static async Task<(ServerProcess Victim, ServerProcess[] Survivors, JsonObject View)> ReplicaHostAsync(SiloCluster cluster)
    {
        using (var http = new HttpClient { BaseAddress = cluster.FrontEnds[0].BaseAddress })
        {
            using var response = await http.PostAsync("/v2/models/double/infer", new StringContent(SiloCluster.DoubleBody, System.Text.Encoding.UTF8, "application/json"));
            Assert.True(response.IsSuccessStatusCode);
        }

        var view = await SiloCluster.ClusterAsync(cluster.FrontEnds[0]);
        var silo = (string)view["replicas"]!.AsArray().Single(r => (string)r!["model"]! == "double")!["silo"]!;
        var selves = new Dictionary<ServerProcess, string>();
        foreach (var member in cluster.FrontEnds)
        {
            selves[member] = (string)(await SiloCluster.ClusterAsync(member))["self"]!;
        }

        var victim = selves.Single(s => s.Value == silo).Key;
        return (victim, selves.Keys.Where(m => m != victim).ToArray(), view);
    }

    private static async Task<(int Status, string Body)> SequenceCallAsync(ServerProcess member)
    {
        using var http = new HttpClient { BaseAddress = member.BaseAddress, Timeout = RequestTimeout + TimeSpan.FromSeconds(10) };
        const string body = """{"parameters":{"sequence_id":7,"sequence_start":true},"inputs":[{"name":"input","shape":[1,2],"datatype":"FP32","data":[1,2]}]}""";
        using var response = await http.PostAsync("/v2/models/double/infer", new StringContent(body, System.Text.Encoding.UTF8, "application/json"));
        return ((int)response.StatusCode, await response.Content.ReadAsStringAsync());
    }

    private void AssertFailuresAreClear503s(LoadRun load, int allowed)
    {
        var failures = load.Outcomes.Where(o => !o.Succeeded).ToList();
        Assert.True(failures.Count <= allowed, load.Describe());
        Assert.All(failures, f =>
        {
            Assert.Equal(503, f.Status);
            Assert.Contains("\"error\"", f.Failure);
        });

        // No call outlived its deadline (a second of slack for a loaded machine's scheduling).
        Assert.True(load.Outcomes.All(o => o.Took <= RequestTimeout + TimeSpan.FromSeconds(1)), load.Describe());
    }

    private static TimeSpan RecoveredAfter(LoadRun load, TimeSpan lost) =>
        load.Outcomes.Where(o => o.Succeeded && o.Sent >= lost).Select(o => o.Answered).DefaultIfEmpty(TimeSpan.MaxValue).Min() - lost;

    private static async Task<double> MetricSumAsync(IEnumerable<ServerProcess> members, string name)
    {
        var sum = 0.0;
        foreach (var member in members)
        {
            sum += await SiloCluster.MetricSumAsync(member, name);
        }

        return sum;
    }

    [Fact]
    public async Task SIGKILL_of_the_silo_with_the_only_replica_under_load_recovers_on_the_survivors_and_so_does_the_registry_on_losing_its_silo()
    {
        await using var fixture = await Fixture.StartAsync();
        var cluster = fixture.Cluster;
        var (victim, survivors, before) = await ReplicaHostAsync(cluster);
        var revision = (int)before["replicas"]!.AsArray().Single(r => (string)r!["model"]! == "double")!["revision"]!;
        var registrySilo = (string?)before["registry"];
        output.WriteLine($"replica and victim: {(string)(await SiloCluster.ClusterAsync(victim))["self"]!}; registry on {registrySilo}");

        var load = LoadRun.Start(survivors.Select(s => s.BaseAddress).ToList(), Clients, RequestTimeout + TimeSpan.FromSeconds(10));
        await using (load)
        {
            await load.WaitForSuccessesAsync(50, TimeSpan.Zero, TimeSpan.FromSeconds(30));
            var killed = load.Now;
            await victim.KillHardAsync();

            // A call in a sequence is never sent twice: with its replica's silo gone it fails, a 503 that says why.
            var sequence = SequenceCallAsync(survivors[0]);
            await load.WaitForSuccessesAsync(50, killed + TimeSpan.FromMilliseconds(100), RecoveryBound + TimeSpan.FromSeconds(10));
            var (sequenceStatus, sequenceBody) = await sequence;
            Assert.True(sequenceStatus == 503 && sequenceBody.Contains("sequence_id", StringComparison.Ordinal), $"{sequenceStatus} {sequenceBody}");
            var recovered = RecoveredAfter(load, killed);
            output.WriteLine($"killed at {killed.TotalSeconds:0.00} s; calls sent after it answered again {recovered.TotalSeconds:0.00} s later");
            await load.DisposeAsync();
            output.WriteLine(load.Describe());

            // At most the calls that were in flight on the killed silo may fail: one per client.
            AssertFailuresAreClear503s(load, allowed: Clients);
            Assert.True(recovered <= RecoveryBound, $"recovered after {recovered}, bound {RecoveryBound}");
        }

        await cluster.WaitForActiveAsync(2);
        var after = await SiloCluster.ClusterAsync(survivors[0]);
        var moved = after["replicas"]!.AsArray().Single(r => (string)r!["model"]! == "double")!;
        Assert.Equal(revision, (int)moved["revision"]!);
        Assert.True(await MetricSumAsync(survivors, "kserve_replica_reactivations_total") >= 1);
        output.WriteLine($"retries on the survivors: {await MetricSumAsync(survivors, "kserve_inference_retries_total")}");

        // The registry's silo is lost too (when it was not the first victim, a third silo joins first so that two
        // remain): the registry re-activates from the store with its table, the same revision serving.
        registrySilo = (string?)after["registry"];
        ServerProcess? registryHost = null;
        foreach (var survivor in survivors)
        {
            if ((string?)(await SiloCluster.ClusterAsync(survivor))["self"] == registrySilo)
            {
                registryHost = survivor;
            }
        }

        output.WriteLine($"registry after the first kill: {registrySilo ?? "not active"}");
        if (registryHost is not null)
        {
            var joined = await cluster.AddAsync();
            output.WriteLine($"a silo joined; killing the registry's silo {registrySilo}");
            await registryHost.KillHardAsync();
            var last = survivors.Single(s => s != registryHost);
            await cluster.WaitForActiveAsync(2, TimeSpan.FromSeconds(60));
            foreach (var member in new[] { last, joined })
            {
                using var http = new HttpClient { BaseAddress = member.BaseAddress, Timeout = RequestTimeout + TimeSpan.FromSeconds(10) };
                using var response = await http.PostAsync("/v2/models/double/infer", new StringContent(SiloCluster.DoubleBody, System.Text.Encoding.UTF8, "application/json"));
                Assert.True(response.IsSuccessStatusCode, await response.Content.ReadAsStringAsync());
            }

            survivors = [last, joined];
        }

        // The routers' watches re-activate the registry within a second of losing it.
        var final = await Wait.ForAsync(
            () => SiloCluster.ClusterAsync(survivors[0]), view => view["registry"] is not null, "the registry to be active again", TimeSpan.FromSeconds(30));
        Assert.NotEqual(registrySilo, (string?)final["registry"]);
        Assert.Equal(revision, (int)final["replicas"]!.AsArray().Single(r => (string)r!["model"]! == "double")!["revision"]!);
        using var index = new HttpClient { BaseAddress = survivors[0].BaseAddress };
        var models = JsonNode.Parse(await index.GetStringAsync("/v2/repository/index"))!.AsArray();
        Assert.Contains(models, m => (string?)m!["name"] == "double" && (string?)m["state"] == "READY");
    }

    [Fact]
    public async Task SIGSTOP_of_the_silo_with_the_only_replica_under_load_recovers_within_the_documented_bound()
    {
        await using var fixture = await Fixture.StartAsync();
        var cluster = fixture.Cluster;
        var (victim, survivors, _) = await ReplicaHostAsync(cluster);
        var load = LoadRun.Start(survivors.Select(s => s.BaseAddress).ToList(), Clients, RequestTimeout + TimeSpan.FromSeconds(10));
        try
        {
            await load.WaitForSuccessesAsync(50, TimeSpan.Zero, TimeSpan.FromSeconds(30));
            var frozen = load.Now;
            victim.Signal(ServerProcess.SigStop);
            try
            {
                await load.WaitForSuccessesAsync(50, frozen + TimeSpan.FromMilliseconds(100), RecoveryBound + TimeSpan.FromSeconds(10));
            }
            catch (TimeoutException)
            {
                output.WriteLine(load.Describe());
                output.WriteLine((await SiloCluster.ClusterAsync(survivors[0])).ToJsonString());
                output.WriteLine(survivors[0].Output[^Math.Min(6000, survivors[0].Output.Length)..]);
                throw;
            }

            var recovered = RecoveredAfter(load, frozen);
            output.WriteLine($"frozen at {frozen.TotalSeconds:0.00} s; calls sent after it answered again {recovered.TotalSeconds:0.00} s later");
            await load.DisposeAsync();
            output.WriteLine(load.Describe());
            AssertFailuresAreClear503s(load, allowed: Clients);
            Assert.True(recovered <= RecoveryBound, $"recovered after {recovered}, bound {RecoveryBound}");
            await cluster.WaitForActiveAsync(2, on: survivors);
        }
        finally
        {
            await load.DisposeAsync();

            // Thawed, the silo finds itself declared dead and stops; the fixture kills it if it has not.
            victim.Signal(ServerProcess.SigCont);
        }
    }

    [Fact]
    public async Task Under_a_request_timeout_shorter_than_the_death_bound_calls_on_a_frozen_silo_end_at_their_deadline_with_a_503_naming_it()
    {
        var timeout = TimeSpan.FromSeconds(3);
        await using var fixture = await Fixture.StartAsync("--request-timeout", "3");
        var (victim, survivors, _) = await ReplicaHostAsync(fixture.Cluster);
        var load = LoadRun.Start(survivors.Select(s => s.BaseAddress).ToList(), 4, TimeSpan.FromSeconds(30));
        try
        {
            await load.WaitForSuccessesAsync(20, TimeSpan.Zero, TimeSpan.FromSeconds(30));
            victim.Signal(ServerProcess.SigStop);
            await Wait.UntilAsync(() => load.Outcomes.Count(o => !o.Succeeded) >= 4, "four calls to fail at their deadline", TimeSpan.FromSeconds(30));
            await load.DisposeAsync();
            output.WriteLine(load.Describe());
            var failures = load.Outcomes.Where(o => !o.Succeeded).ToList();
            Assert.All(failures, f =>
            {
                Assert.Equal(503, f.Status);
                Assert.Contains("within the request timeout of 3 s (--request-timeout)", f.Failure);
            });
            Assert.True(load.Outcomes.All(o => o.Took <= timeout + TimeSpan.FromSeconds(1)), load.Describe());
        }
        finally
        {
            await load.DisposeAsync();
            victim.Signal(ServerProcess.SigCont);
        }
    }

    [Fact]
    public async Task Sixty_loaded_seconds_declare_no_healthy_silo_dead_and_SIGTERM_of_the_replica_silo_fails_no_call()
    {
        await using var fixture = await Fixture.StartAsync();
        var cluster = fixture.Cluster;
        var (victim, survivors, _) = await ReplicaHostAsync(cluster);
        var victimAddress = (string)(await SiloCluster.ClusterAsync(victim))["self"]!;
        var load = LoadRun.Start(survivors.Select(s => s.BaseAddress).ToList(), 2 * Clients, RequestTimeout + TimeSpan.FromSeconds(10));
        await using (load)
        {
            await Wait.UntilAsync(() => load.Now >= TimeSpan.FromSeconds(50), "50 s of load", TimeSpan.FromSeconds(60));
            var statuses = (await SiloCluster.ClusterAsync(survivors[0]))["silos"]!.AsArray().Select(s => (string)s!["status"]!).ToList();
            Assert.True(statuses.Count == 3 && statuses.All(s => s == "Active"), string.Join(", ", statuses));

            var stopped = load.Now;
            victim.Signal(ServerProcess.SigTerm);
            using (var exited = new CancellationTokenSource(TimeSpan.FromSeconds(60)))
            {
                await victim.Process.WaitForExitAsync(exited.Token);
            }

            await load.WaitForSuccessesAsync(50, load.Now, TimeSpan.FromSeconds(30));
            output.WriteLine($"stopped at {stopped.TotalSeconds:0.00} s; ran {load.Now.TotalSeconds:0.00} s in all");
            await load.DisposeAsync();
            output.WriteLine(load.Describe());
            Assert.True(victim.Process.ExitCode == 0, victim.Output);
            Assert.True(load.Outcomes.All(o => o.Succeeded), load.Describe());
        }

        // Only the stopped silo left the cluster; the others were never suspected out of it.
        var view = await SiloCluster.ClusterAsync(survivors[0]);
        var dead = view["silos"]!.AsArray().Where(s => (string)s!["status"]! != "Active").Select(s => (string)s!["address"]!).ToList();
        Assert.Equal([victimAddress], dead);
        Assert.Single(view["replicas"]!.AsArray(), r => (string)r!["model"]! == "double" && (string)r["silo"]! != victimAddress);
    }
}
