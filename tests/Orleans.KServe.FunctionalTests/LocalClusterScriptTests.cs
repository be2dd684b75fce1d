using System.Diagnostics;
using System.Text;
using System.Text.Json.Nodes;

namespace Orleans.KServe.FunctionalTests;

/// <summary>
/// The README's three-silo cluster on one machine: <c>deploy/local-cluster.sh start</c> starts redis-server and three
/// silos on free ports, each front end serves the model, and <c>stop</c> stops every process by the id it wrote.
/// </summary>
public sealed class LocalClusterScriptTests
{
    private static readonly string Script = Path.Combine(Repo.Root, "deploy", "local-cluster.sh");

    [Fact]
    public void The_readme_shows_the_script_next_to_the_single_process_command()
    {
        var readme = File.ReadAllText(Path.Combine(Repo.Root, "README.md"));
        Assert.Contains("dotnet run -c Release --project Silo\n", readme);
        Assert.Contains("deploy/local-cluster.sh start\n", readme);
        Assert.Contains("deploy/local-cluster.sh stop\n", readme);
    }

    [Fact]
    public async Task Start_forms_a_three_silo_cluster_whose_front_ends_all_serve_and_stop_leaves_no_process()
    {
        var state = Directory.CreateTempSubdirectory("kserve-local-cluster-").FullName;
        var repository = Directory.CreateTempSubdirectory("kserve-local-cluster-models-").FullName;
        LimitsServerFixture.WriteDoubleOnly(repository);
        var pids = new List<int>();
        try
        {
            var started = await RunAsync("start", state, repository);
            Assert.True(started.ExitCode == 0, started.Output);
            pids.AddRange(Directory.GetFiles(state, "*.pid").Select(f => int.Parse(File.ReadAllText(f).Trim())));
            Assert.Equal(4, pids.Count);

            var endpoints = File.ReadAllLines(Path.Combine(state, "endpoints")).Select(l => l.Split(' ')).ToList();
            Assert.Equal(3, endpoints.Count);
            foreach (var endpoint in endpoints)
            {
                using var http = new HttpClient { BaseAddress = new Uri(endpoint[1]), Timeout = TimeSpan.FromSeconds(30) };
                await Wait.UntilAsync(async () =>
                {
                    var view = JsonNode.Parse(await http.GetStringAsync("/cluster"))!;
                    return view["silos"]!.AsArray().Count(s => (string)s!["status"]! == "Active") == 3;
                }, $"{endpoint[1]} to list three active silos", TimeSpan.FromSeconds(60));
                using var response = await http.PostAsync("/v2/models/double/infer", new StringContent(SiloCluster.DoubleBody, Encoding.UTF8, "application/json"));
                var body = await response.Content.ReadAsStringAsync();
                Assert.True(response.IsSuccessStatusCode, body);
                Assert.Contains("[2,4]", body);
            }

            var stopped = await RunAsync("stop", state, repository);
            Assert.True(stopped.ExitCode == 0, stopped.Output);
            Assert.All(pids, pid => Assert.False(Alive(pid), $"process {pid} still runs"));
            Assert.Empty(Directory.GetFiles(state, "*.pid"));
        }
        finally
        {
            foreach (var pid in pids.Where(Alive))
            {
                Process.GetProcessById(pid).Kill();
            }

            Directory.Delete(state, recursive: true);
            Directory.Delete(repository, recursive: true);
        }
    }

    private static bool Alive(int pid)
    {
        try
        {
            using var process = Process.GetProcessById(pid);
            return !process.HasExited;
        }
        catch (ArgumentException)
        {
            return false;
        }
    }

    private static async Task<(int ExitCode, string Output)> RunAsync(string command, string state, string repository)
    {
        var info = new ProcessStartInfo("bash", [Script, command, state]) { RedirectStandardOutput = true, RedirectStandardError = true };
        info.Environment["KSERVE_SILO_DLL"] = Path.Combine(AppContext.BaseDirectory, "Orleans.KServe.Silo.dll");
        info.Environment["KSERVE_MODEL_REPOSITORY"] = repository;
        using var process = Process.Start(info)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(180));
        return (process.ExitCode, await output + await error);
    }
}
