using System.Diagnostics;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace Orleans.KServe.FunctionalTests;

/// <summary>
/// Runs the server as a separate process, as the README's first command does, runs every curl example of the
/// README against it, compares the answers with the README's, and stops it with SIGTERM.
/// </summary>
public sealed partial class ReadmeTests
{
    [Fact]
    public async Task The_readme_curl_examples_answer_what_the_readme_shows_and_SIGTERM_stops_the_server_cleanly()
    {
        var examples = ReadExamples(File.ReadAllText(Path.Combine(Repo.Root, "README.md")));
        Assert.True(examples.Count >= 4, "the README lost its curl examples");

        await using var server = await ServerProcess.StartAsync("--http-port", "0", "--grpc-port", "0", "--silo-port", "0", "--gateway-port", "0");
        foreach (var (command, expected) in examples)
        {
            var local = command.Replace("http://localhost:8080", server.BaseAddress.ToString().TrimEnd('/'), StringComparison.Ordinal);
            var output = await RunBashAsync(local);
            if (expected is null)
            {
                // An example whose answer the README does not show: it must answer JSON without an error.
                var answer = JsonNode.Parse(output);
                Assert.True(answer is not null && (answer is not JsonObject o || !o.ContainsKey("error")), $"{command}\nanswered {output}");
                continue;
            }

            Assert.True(JsonNode.DeepEquals(JsonNode.Parse(expected), JsonNode.Parse(output)), $"{command}\nanswered {output}\nthe README shows {expected}");
        }

        server.Signal(ServerProcess.SigTerm);
        await server.Process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(60));
        Assert.Equal(0, server.Process.ExitCode);
        Assert.Contains("Stopping: draining", server.Output);
    }

    [Fact]
    public async Task A_bad_setting_stops_the_server_at_start_with_exit_code_2_and_a_message()
    {
        await using var server = ServerProcess.Start("--http-port", "eighty", "--max-in-flight", "0");
        await server.Process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(60));
        Assert.Equal(2, server.Process.ExitCode);
        Assert.Contains("invalid settings", server.Output);
        Assert.Contains("eighty", server.Output);
    }

    /// <summary>Every ```bash block that is a curl command, with the ```json block right after it when there is one.</summary>
    private static List<(string Command, string? Expected)> ReadExamples(string readme)
    {
        var blocks = FencedBlock().Matches(readme).Select(m => (Lang: m.Groups[1].Value, Body: m.Groups[2].Value.Trim())).ToList();
        var examples = new List<(string, string?)>();
        for (var i = 0; i < blocks.Count; i++)
        {
            if (blocks[i].Lang == "bash" && blocks[i].Body.StartsWith("curl ", StringComparison.Ordinal))
            {
                examples.Add((blocks[i].Body, i + 1 < blocks.Count && blocks[i + 1].Lang == "json" ? blocks[i + 1].Body : null));
            }
        }

        return examples;
    }

    private static async Task<string> RunBashAsync(string command)
    {
        using var process = Process.Start(new ProcessStartInfo("bash", ["-c", command]) { RedirectStandardOutput = true, RedirectStandardError = true })!;
        var output = await process.StandardOutput.ReadToEndAsync();
        await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(60));
        Assert.True(process.ExitCode == 0, $"{command} exited {process.ExitCode}: {await process.StandardError.ReadToEndAsync()}");
        return output;
    }

    [GeneratedRegex("```(\\w+)\\n(.*?)```", RegexOptions.Singleline)]
    private static partial Regex FencedBlock();
}
