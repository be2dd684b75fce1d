using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace Orleans.KServe.FunctionalTests;

/// <summary>
/// Runs the server as a separate process, as the README's first command does, runs every curl example of the
/// README against it, compares the answers with the README's, and stops it with SIGTERM.
/// </summary>
public sealed partial class ReadmeTests
{
    [DllImport("libc", SetLastError = true)]
    private static extern int kill(int pid, int signal);

    private const int SigTerm = 15;

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

        Assert.Equal(0, kill(server.Process.Id, SigTerm));
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

/// <summary>The server's executable in a child process; disposed by killing that process (by its id) if still running.</summary>
public sealed partial class ServerProcess : IAsyncDisposable
{
    private readonly StringBuilder _output = new();

    private ServerProcess(Process process)
    {
        Process = process;
    }

    public Process Process { get; }

    public Uri BaseAddress { get; private set; } = null!;

    public string Output
    {
        get
        {
            lock (_output)
            {
                return _output.ToString();
            }
        }
    }

    public static ServerProcess Start(params string[] args)
    {
        var dll = Path.Combine(AppContext.BaseDirectory, "Orleans.KServe.Silo.dll");
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        info.ArgumentList.Add(dll);
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        var process = new Process { StartInfo = info };
        var server = new ServerProcess(process);
        process.OutputDataReceived += (_, e) => server.Append(e.Data);
        process.ErrorDataReceived += (_, e) => server.Append(e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return server;
    }

    public static async Task<ServerProcess> StartAsync(params string[] args)
    {
        var server = Start(args);
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(90);
        while (true)
        {
            var match = Listening().Match(server.Output);
            if (match.Success)
            {
                server.BaseAddress = new Uri(match.Groups[1].Value);
                break;
            }

            if (server.Process.HasExited || DateTime.UtcNow > deadline)
            {
                var output = server.Output;
                await server.DisposeAsync();
                throw new InvalidOperationException($"the server did not start listening:\n{output}");
            }

            await Task.Delay(50);
        }

        using var http = new HttpClient { BaseAddress = server.BaseAddress };
        while (!(await http.GetAsync("/v2/health/ready")).IsSuccessStatusCode)
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"the server never became ready:\n{server.Output}");
            }

            await Task.Delay(50);
        }

        return server;
    }

    private void Append(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_output)
        {
            _output.AppendLine(line);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (!Process.HasExited)
        {
            Process.Kill();
            await Process.WaitForExitAsync();
        }

        Process.Dispose();
    }

    [GeneratedRegex(@"Serving REST \(v1, v2\) on (http://[0-9.]+:\d+)")]
    private static partial Regex Listening();
}
