using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Orleans.KServe.FunctionalTests;

/// <summary>
/// Debian's redis-server on a free port of 127.0.0.1, with no persistence, in a folder of its own; stopped by its
/// process id. test.sh installs it when missing.
/// </summary>
public sealed class RedisServer : IAsyncDisposable
{
    private readonly Process _process;
    private readonly string _folder;
    private readonly OutputLog _output = new();

    private RedisServer(Process process, string folder, int port)
    {
        _process = process;
        _folder = folder;
        Port = port;
    }

    public int Port { get; }

    /// <summary>The StackExchange.Redis configuration string the silos are given.</summary>
    public string Connection => $"127.0.0.1:{Port}";

    public static async Task<RedisServer> StartAsync()
    {
        var executable = new[] { "/usr/bin/redis-server", "/usr/local/bin/redis-server" }.FirstOrDefault(File.Exists)
            ?? throw new InvalidOperationException("redis-server is not installed; ./test.sh installs Debian's redis-server");
        var folder = Directory.CreateTempSubdirectory("kserve-redis-").FullName;
        for (var attempt = 0; ; attempt++)
        {
            var port = OutputLog.FreePort();
            var info = new ProcessStartInfo(executable) { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = folder };
            foreach (var arg in new[] { "--port", port.ToString(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", folder })
            {
                info.ArgumentList.Add(arg);
            }

            var process = new Process { StartInfo = info };
            var server = new RedisServer(process, folder, port);
            process.OutputDataReceived += (_, e) => server.Append(e.Data);
            process.ErrorDataReceived += (_, e) => server.Append(e.Data);
            process.Start();
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
            try
            {
                await Wait.UntilAsync(() => process.HasExited || server.Answers(), "redis-server to answer PING", TimeSpan.FromSeconds(30));
            }
            catch
            {
                await server.DisposeAsync();
                throw;
            }

            if (!process.HasExited)
            {
                return server;
            }

            // Another process took the port between the probe and the bind: try another.
            var output = server.Output;
            process.Dispose();
            if (attempt == 3)
            {
                Directory.Delete(folder, recursive: true);
                throw new InvalidOperationException($"redis-server did not start:\n{output}");
            }
        }
    }

    public string Output => _output.ToString();

    private bool Answers()
    {
        try
        {
            using var client = new TcpClient();
            client.Connect(IPAddress.Loopback, Port);
            var stream = client.GetStream();
            stream.Write("PING\r\n"u8);
            var buffer = new byte[16];
            var read = stream.Read(buffer);
            return Encoding.ASCII.GetString(buffer, 0, read).StartsWith("+PONG", StringComparison.Ordinal);
        }
        catch (SocketException)
        {
            return false;
        }
    }

    private void Append(string? line) => _output.Append(line);

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill();
            await _process.WaitForExitAsync();
        }

        _process.Dispose();
        if (Directory.Exists(_folder))
        {
            Directory.Delete(_folder, recursive: true);
        }
    }
}
