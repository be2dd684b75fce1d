using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;

namespace Orleans.KServe.FunctionalTests;

/// <summary>
/// Three silo processes of the built server on PostgreSQL membership (Orleans' ADO.NET provider over our schema,
/// which the processes create at once with <c>--clustering-init true</c>) in a fresh database, with the registry
/// in the same database.
/// </summary>
public sealed class PostgresClusterTests : IAsyncLifetime
{
    private PostgresServer? _postgres;
    private SiloCluster? _cluster;

    public async Task InitializeAsync()
    {
        _postgres = await PostgresServer.StartAsync();
        _cluster = await SiloCluster.StartAsync("postgres", await _postgres.CreateDatabaseAsync(), 3, "--clustering-init", "true");
    }

    public async Task DisposeAsync()
    {
        if (_cluster is not null)
        {
            await _cluster.DisposeAsync();
        }

        if (_postgres is not null)
        {
            await _postgres.DisposeAsync();
        }
    }

    [Fact]
    public async Task Three_silos_form_a_cluster_serve_the_model_from_one_replica_and_a_front_end_only_process_joins_as_a_client()
    {
        var cluster = _cluster!;
        foreach (var member in cluster.FrontEnds)
        {
            using var http = new HttpClient { BaseAddress = member.BaseAddress, Timeout = TimeSpan.FromSeconds(30) };
            using var response = await http.PostAsync("/v2/models/double/infer", new StringContent(SiloCluster.DoubleBody, Encoding.UTF8, "application/json"));
            var body = await response.Content.ReadAsStringAsync();
            Assert.True(response.IsSuccessStatusCode, body);
            Assert.Equal([2f, 4f], JsonNode.Parse(body)!["outputs"]![0]!["data"]!.AsArray().Select(v => (float)v!));
        }

        var view = await SiloCluster.ClusterAsync(cluster.FrontEnds[0]);
        Assert.Equal(3, view["silos"]!.AsArray().Count(s => (string)s!["status"]! == "Active"));
        Assert.Single(view["replicas"]!.AsArray(), r => (string)r!["model"]! == "double");

        var frontEnd = await cluster.AddFrontEndAsync();
        using var client = new HttpClient { BaseAddress = frontEnd.BaseAddress, Timeout = TimeSpan.FromSeconds(30) };
        using var answer = await client.PostAsync("/v2/models/double/infer", new StringContent(SiloCluster.DoubleBody, Encoding.UTF8, "application/json"));
        Assert.True(answer.IsSuccessStatusCode, await answer.Content.ReadAsStringAsync());
        Assert.Equal("frontend", (string?)(await client.GetFromJsonAsync<JsonObject>("/cluster"))!["self"]);
    }
}
