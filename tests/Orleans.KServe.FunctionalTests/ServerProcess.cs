using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.RegularExpressions;

namespace Orleans.KServe.FunctionalTests;

/// <summary>
/// The server's executable in a child process, as the README's first command runs it. Signals go to its process
/// id; disposing kills that process (by its id) if it is still running.
/// </summary>
public sealed partial class ServerProcess : IAsyncDisposable
{
    /// <summary>SIGTERM: what Kubernetes and systemd send to stop a process.</summary>
    public const int SigTerm = 15;

    public const int SigKill = 9;

    public const int SigStop = 19;

    public const int SigCont = 18;

    [DllImport("libc", SetLastError = true)]
    private static extern int kill(int pid, int signal);

    private readonly StringBuilder _output = new();

    private ServerProcess(Process process)
    {
        Process = process;
    }

    public Process Process { get; }

    public Uri BaseAddress { get; private set; } = null!;

    public Uri GrpcAddress { get; private set; } = null!;

    /// <summary>Everything the process wrote to standard output and error so far.</summary>
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

    /// <summary>Starts the server with <paramref name="args"/> and returns at once.</summary>
    public static ServerProcess Start(params string[] args) => Start(args, environment: null);

    /// <summary>Starts the server with <paramref name="args"/> and these environment variables added, and returns at once.</summary>
    public static ServerProcess Start(string[] args, IReadOnlyDictionary<string, string>? environment)
    {
        var dll = Path.Combine(AppContext.BaseDirectory, "Orleans.KServe.Silo.dll");
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        info.ArgumentList.Add(dll);
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        foreach (var (name, value) in environment ?? new Dictionary<string, string>())
        {
            info.Environment[name] = value;
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

    /// <summary>Starts the server and waits until it listens and reports ready.</summary>
    public static Task<ServerProcess> StartAsync(params string[] args) => StartAsync(args, environment: null);

    /// <summary>Starts the server with these environment variables added and waits until it listens and reports ready.</summary>
    public static Task<ServerProcess> StartAsync(string[] args, IReadOnlyDictionary<string, string>? environment) =>
        StartAndWaitAsync(args, environment, Listening(), "server", "listen", async (server, match) =>
        {
            server.BaseAddress = new Uri(match.Groups[1].Value);
            server.GrpcAddress = new Uri(match.Groups[2].Value);
            using var http = new HttpClient { BaseAddress = server.BaseAddress };
            await Wait.UntilAsync(async () =>
            {
                using var response = await http.GetAsync("/v2/health/ready");
                return response.IsSuccessStatusCode;
            }, "the server to be ready", TimeSpan.FromSeconds(90));
        });

    /// <summary>Starts a silo-only process (<c>--role silo</c>, no HTTP ports) and waits until it says it has joined.</summary>
    public static Task<ServerProcess> StartSiloOnlyAsync(string[] args, IReadOnlyDictionary<string, string>? environment) =>
        StartAndWaitAsync(args, environment, Hosting(), "silo", "join", (server, match) =>
        {
            server.SiloAddress = match.Groups[1].Value;
            return Task.CompletedTask;
        });

    /// <summary>
    /// Starts the process and waits until its output matches <paramref name="started"/>, then runs
    /// <paramref name="ready"/>; a process that exits first, or does not get there in time, is stopped and reported.
    /// </summary>
    private static async Task<ServerProcess> StartAndWaitAsync(
        string[] args, IReadOnlyDictionary<string, string>? environment, Regex started, string kind, string verb,
        Func<ServerProcess, Match, Task> ready)
    {
        var server = Start(args, environment);
        try
        {
            var match = await Wait.ForAsync(
                () => Task.FromResult(server.Process.HasExited ? null : started.Match(server.Output)),
                m => m is null || m.Success, $"the {kind} to {verb}", TimeSpan.FromSeconds(90));
            if (match is null)
            {
                throw new InvalidOperationException($"the {kind} exited with {server.Process.ExitCode} before it could {verb}:\n{server.Output}");
            }

            await ready(server, match);
            return server;
        }
        catch (Exception e)
        {
            var output = server.Output;
            await server.DisposeAsync();
            throw new InvalidOperationException($"the {kind} did not start: {e.Message}\n{output}", e);
        }
    }

    /// <summary>A silo-only process's silo address, as it logged it.</summary>
    public string? SiloAddress { get; private set; }

    /// <summary>Kills the process (SIGKILL: no stop runs) and waits until it is gone.</summary>
    public async Task KillHardAsync()
    {
        Signal(SigKill);
        using var gone = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await Process.WaitForExitAsync(gone.Token);
    }

    /// <summary>Sends <paramref name="signal"/> to the server's process.</summary>
    public void Signal(int signal)
    {
        if (kill(Process.Id, signal) != 0)
        {
            throw new InvalidOperationException($"kill({Process.Id}, {signal}) failed with errno {Marshal.GetLastPInvokeError()}");
        }
    }

    /// <summary>The process's peak resident memory (VmHWM), read from /proc by this, another, process.</summary>
    public long PeakResidentBytes => ReadStatusKilobytes("VmHWM:") * 1024;

    /// <summary>The process's resident memory now (VmRSS).</summary>
    public long ResidentBytes => ReadStatusKilobytes("VmRSS:") * 1024;

    private long ReadStatusKilobytes(string field)
    {
        foreach (var line in File.ReadLines($"/proc/{Process.Id}/status"))
        {
            if (line.StartsWith(field, StringComparison.Ordinal))
            {
                return long.Parse(line[field.Length..].Trim().Split(' ')[0], CultureInfo.InvariantCulture);
            }
        }

        throw new InvalidOperationException($"/proc/{Process.Id}/status has no {field}");
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

    [GeneratedRegex(@"Serving REST \(v1, v2\) on (http://[0-9.]+:\d+)/? and gRPC \(v2, h2c\) on (http://[0-9.]+:\d+)")]
    private static partial Regex Listening();

    [GeneratedRegex(@"Hosting models as silo (\S+) \(client gateway")]
    private static partial Regex Hosting();
}
