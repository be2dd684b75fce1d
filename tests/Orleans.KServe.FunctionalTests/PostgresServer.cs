using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;
using Npgsql;

namespace Orleans.KServe.FunctionalTests;

/// <summary>
/// Debian's PostgreSQL 15 in a folder of its own: a cluster made by initdb, served on a free port of 127.0.0.1 with
/// trust authentication for 127.0.0.1 only, its socket in that folder and no fsync, and one database created for the
/// caller. initdb and postgres refuse to run as root, so under root they run as the <c>postgres</c> user through
/// runuser. Stopped by the postmaster's process id (from postmaster.pid, since runuser runs it as a child); the
/// folder is deleted. Needs Debian's postgresql-15 package.
/// </summary>
public sealed class PostgresServer : IAsyncDisposable
{
    /// <summary>Where Debian's postgresql-15 package puts the server's programs.</summary>
    public const string BinDirectory = "/usr/lib/postgresql/15/bin";

    private const int SigInt = 2;
    private const int SigKill = 9;
    private static readonly TimeSpan StopDeadline = TimeSpan.FromSeconds(20);

    [DllImport("libc", SetLastError = true)]
    private static extern int kill(int pid, int signal);

    [DllImport("libc")]
    private static extern uint geteuid();

    private readonly Process _process;
    private readonly string _folder;
    private readonly OutputLog _output = new();
    private int _postmaster;

    private PostgresServer(Process process, string folder, int port)
    {
        _process = process;
        _folder = folder;
        Port = port;
    }

    /// <summary>The TCP port the server listens on, at 127.0.0.1.</summary>
    public int Port { get; }

    /// <summary>The database created for the caller.</summary>
    public string Database { get; private set; } = "";

    /// <summary>The Npgsql connection string of <see cref="Database"/>, as the superuser <c>postgres</c>.</summary>
    public string ConnectionString => ConnectionStringFor(Database);

    /// <summary>Everything the server wrote to standard output and error so far.</summary>
    public string Output => _output.ToString();

    private static bool IsRoot => geteuid() == 0;

    private string DataDirectory => Path.Combine(_folder, "data");

    /// <summary>Makes a cluster in a new temporary folder, starts the server and creates a database.</summary>
    public static async Task<PostgresServer> StartAsync()
    {
        if (!File.Exists(Path.Combine(BinDirectory, "postgres")))
        {
            throw new InvalidOperationException($"PostgreSQL 15 is not installed in {BinDirectory}: install Debian's postgresql-15 package");
        }

        var folder = Directory.CreateTempSubdirectory("kserve-postgres-").FullName;
        var initOutput = new StringBuilder();
        try
        {
            if (IsRoot)
            {
                await RunAsync("chown", ["postgres:postgres", folder], initOutput);
            }

            await RunAsync(
                ServerCommand("initdb"),
                [.. ServerArguments("initdb"), "-D", Path.Combine(folder, "data"), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions"],
                initOutput);

            // Only TCP connections from 127.0.0.1 are let in (without a password); the socket in the folder is not used.
            await File.WriteAllTextAsync(Path.Combine(folder, "data", "pg_hba.conf"), "host all all 127.0.0.1/32 trust\n");
        }
        catch
        {
            await DeleteFolderAsync(folder);
            throw;
        }

        for (var attempt = 0; ; attempt++)
        {
            var server = Launch(folder, OutputLog.FreePort());
            try
            {
                await Wait.UntilAsync(async () => server._process.HasExited || await server.AnswersAsync(), "postgres to accept connections", TimeSpan.FromSeconds(60));
                if (!server._process.HasExited)
                {
                    server._postmaster = server.ReadPostmasterPid();
                    server.Database = await server.CreateNamedDatabaseAsync();
                    return server;
                }
            }
            catch
            {
                await server.StopAsync();
                await DeleteFolderAsync(folder);
                throw;
            }

            // Most likely another process took the port between the probe and the bind: try another.
            var output = server.Output;
            await server.StopAsync();
            if (attempt == 3)
            {
                await DeleteFolderAsync(folder);
                throw new InvalidOperationException($"postgres did not start:\n{initOutput}{output}");
            }
        }
    }

    /// <summary>Creates another empty database on this server and returns its connection string.</summary>
    public async Task<string> CreateDatabaseAsync() => ConnectionStringFor(await CreateNamedDatabaseAsync());

    /// <summary>The connection string of the database <paramref name="database"/> on this server.</summary>
    public string ConnectionStringFor(string database) =>
        new NpgsqlConnectionStringBuilder { Host = "127.0.0.1", Port = Port, Username = "postgres", Database = database }.ConnectionString;

    private async Task<string> CreateNamedDatabaseAsync()
    {
        var name = "kserve_" + Guid.NewGuid().ToString("N")[..12];
        await using var connection = new NpgsqlConnection(Admin(ConnectionStringFor("postgres")));
        await connection.OpenAsync();
        await using var create = new NpgsqlCommand($"CREATE DATABASE \"{name}\"", connection);
        await create.ExecuteNonQueryAsync();
        return name;
    }

    // A connection of the fixture's own that leaves nothing in Npgsql's pools.
    private static string Admin(string connectionString) =>
        new NpgsqlConnectionStringBuilder(connectionString) { Pooling = false, Timeout = 5 }.ConnectionString;

    private static PostgresServer Launch(string folder, int port)
    {
        string[] settings =
        [
            "-D", Path.Combine(folder, "data"), "-p", port.ToString(),
            "-c", "listen_addresses=127.0.0.1",
            "-c", $"unix_socket_directories={folder}",
            "-c", "fsync=off",
            "-c", "synchronous_commit=off",
            "-c", "full_page_writes=off",
            "-c", "shared_buffers=16MB",
            "-c", "max_connections=100",
            "-c", "log_min_messages=warning",
        ];
        var info = new ProcessStartInfo(ServerCommand("postgres")) { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = folder };
        foreach (var arg in ServerArguments("postgres").Concat(settings))
        {
            info.ArgumentList.Add(arg);
        }

        var process = new Process { StartInfo = info };
        var server = new PostgresServer(process, folder, port);
        process.OutputDataReceived += (_, e) => server.Append(e.Data);
        process.ErrorDataReceived += (_, e) => server.Append(e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return server;
    }

    // Under root a server program runs as postgres through runuser; otherwise directly.
    private static string ServerCommand(string program) => IsRoot ? "runuser" : Path.Combine(BinDirectory, program);

    private static string[] ServerArguments(string program) => IsRoot ? ["-u", "postgres", "--", Path.Combine(BinDirectory, program)] : [];

    private static async Task RunAsync(string command, string[] arguments, StringBuilder output)
    {
        var info = new ProcessStartInfo(command) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in arguments)
        {
            info.ArgumentList.Add(arg);
        }

        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        try
        {
            await process.WaitForExitAsync(deadline.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{command} did not finish within 120 s");
        }

        output.Append(await stdout).Append(await stderr);
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{command} {string.Join(' ', arguments)} exited with {process.ExitCode}:\n{output}");
        }
    }

    private async Task<bool> AnswersAsync()
    {
        try
        {
            await using var connection = new NpgsqlConnection(Admin(ConnectionStringFor("postgres")));
            await connection.OpenAsync();
            return true;
        }
        catch (Exception e) when (e is NpgsqlException or SocketException or TimeoutException)
        {
            return false;
        }
    }

    // The first line of postmaster.pid is the postmaster's process id; runuser's own id is not it.
    private int ReadPostmasterPid()
    {
        var lines = File.ReadAllLines(Path.Combine(DataDirectory, "postmaster.pid"));
        return int.Parse(lines[0].Trim());
    }

    private void Append(string? line) => _output.Append(line);

    // Fast shutdown (SIGINT) ends the sessions that clients' pools keep open, where SIGTERM's smart shutdown would wait
    // for them; SIGKILL after the deadline. Then runuser, which waits for its child, is gone too.
    private async Task StopAsync()
    {
        if (_postmaster > 0 && IsRunning(_postmaster))
        {
            kill(_postmaster, SigInt);
            var deadline = DateTime.UtcNow + StopDeadline;
            while (IsRunning(_postmaster) && DateTime.UtcNow < deadline)
            {
                await Task.Delay(20);
            }

            if (IsRunning(_postmaster))
            {
                kill(_postmaster, SigKill);
            }
        }

        if (!_process.HasExited)
        {
            using var exited = new CancellationTokenSource(StopDeadline);
            try
            {
                if (_postmaster == 0)
                {
                    // Not started far enough to have written its id: stop runuser and whatever it started.
                    _process.Kill(entireProcessTree: true);
                }

                await _process.WaitForExitAsync(exited.Token);
            }
            catch (OperationCanceledException)
            {
                _process.Kill(entireProcessTree: true);
                await _process.WaitForExitAsync();
            }
        }

        _process.Dispose();
    }

    // The postmaster's parent (runuser, or this process) reaps it, so a gone postmaster has no entry left.
    private static bool IsRunning(int pid)
    {
        if (kill(pid, 0) != 0)
        {
            return false;
        }

        // A zombie still answers kill(pid, 0) until its parent reaps it.
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            return stat[(stat.LastIndexOf(')') + 2)..].FirstOrDefault() != 'Z';
        }
        catch (IOException)
        {
            return false;
        }
    }

    // Files the stopping server still held can make a delete fail once: try again until it is gone, with a deadline.
    private static Task DeleteFolderAsync(string folder) => Wait.UntilAsync(() =>
    {
        try
        {
            Directory.Delete(folder, recursive: true);
        }
        catch (IOException)
        {
            // Checked again on the next try.
        }

        return !Directory.Exists(folder);
    }, $"{folder} to be deleted", TimeSpan.FromSeconds(5));

    /// <summary>Stops the server (fast shutdown, then SIGKILL past a deadline) and deletes its folder.</summary>
    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        await DeleteFolderAsync(_folder);
    }
}
