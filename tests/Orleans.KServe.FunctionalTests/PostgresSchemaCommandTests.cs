using System.Diagnostics;
using System.Text.RegularExpressions;
using Npgsql;

namespace Orleans.KServe.FunctionalTests;

/// <summary>
/// docs/cluster.md's psql command applies the schema by hand (twice: it is idempotent), and a server started without
/// <c>--clustering-init</c> joins on the tables it made.
/// </summary>
public sealed partial class PostgresSchemaCommandTests
{
    [Fact]
    public async Task The_documented_psql_command_makes_the_tables_a_server_without_init_joins_on()
    {
        var docs = File.ReadAllText(Path.Combine(Repo.Root, "docs", "cluster.md"));
        var command = PsqlBlock().Match(docs) is { Success: true } m ? m.Groups[1].Value.Trim() : throw new InvalidOperationException("docs/cluster.md lost its psql command");

        await using var postgres = await PostgresServer.StartAsync();
        var connection = await postgres.CreateDatabaseAsync();
        var database = new NpgsqlConnectionStringBuilder(connection).Database;
        for (var run = 0; run < 2; run++)
        {
            var info = new ProcessStartInfo("bash", ["-c", command]) { WorkingDirectory = Repo.Root, RedirectStandardOutput = true, RedirectStandardError = true };
            info.Environment["DATABASE_URL"] = $"postgresql://postgres@127.0.0.1:{postgres.Port}/{database}";
            using var psql = Process.Start(info)!;
            var output = psql.StandardOutput.ReadToEndAsync();
            var error = psql.StandardError.ReadToEndAsync();
            await psql.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(60));
            Assert.True(psql.ExitCode == 0, $"{command} exited {psql.ExitCode}: {await output}{await error}");
        }

        var args = new[]
        {
            "--clustering", "postgres", "--cluster-id", "doc-" + Guid.NewGuid().ToString("N")[..8], "--advertised-address", "127.0.0.1",
            "--http-port", "0", "--grpc-port", "0", "--silo-port", "0", "--gateway-port", "0", "--drain-delay", "0",
        };
        var repository = Directory.CreateTempSubdirectory("kserve-psql-models-").FullName;
        try
        {
            LimitsServerFixture.WriteDoubleOnly(repository);
            await using var server = await ServerProcess.StartAsync([.. args, "--model-repository", repository], new Dictionary<string, string> { ["KServe__ClusteringConnection"] = connection });
            var view = await SiloCluster.ClusterAsync(server);
            Assert.Single(view["silos"]!.AsArray(), s => (string)s!["status"]! == "Active");
        }
        finally
        {
            Directory.Delete(repository, recursive: true);
        }
    }

    [GeneratedRegex("```bash\\n(psql [^`]*)```")]
    private static partial Regex PsqlBlock();
}
