using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Grpc.Net.Client;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Orleans.KServe.Grpc;
using Xunit.Abstractions;

namespace Orleans.KServe.FunctionalTests;

/// <summary>
/// Stopping as a server behind Kubernetes endpoints or a load balancer must: readiness 503 at once, serving on for
/// the drain delay with <c>Connection: close</c> on HTTP/1.1 answers and a GOAWAY on HTTP/2 connections, then the
/// listeners close.
/// </summary>
public sealed class DrainTests(ITestOutputHelper output)
{
    private const string DoubleBody = """{"inputs":[{"name":"input","shape":[1,2],"datatype":"FP32","data":[1,2]}]}""";

    private sealed class DrainingServerFixture : ServerFixture
    {
        protected override bool WriteSamples => false;

        protected override IEnumerable<string> ExtraArguments => ["--drain-delay", "2"];

        protected override void WriteMore(string folder) => LimitsServerFixture.WriteDoubleOnly(folder);
    }

    [Fact]
    public async Task On_stop_readiness_is_503_at_once_while_requests_are_served_through_the_drain_delay()
    {
        var server = new DrainingServerFixture();
        await server.InitializeAsync();
        try
        {
            var connections = 0;
            using var handler = new SocketsHttpHandler
            {
                ConnectCallback = async (context, token) =>
                {
                    Interlocked.Increment(ref connections);
                    var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                    await socket.ConnectAsync(context.DnsEndPoint, token);
                    return new NetworkStream(socket, ownsSocket: true);
                },
            };
            using var channel = GrpcChannel.ForAddress(server.GrpcAddress, new GrpcChannelOptions { HttpHandler = handler });
            var grpc = new GRPCInferenceService.GRPCInferenceServiceClient(channel);
            Assert.True((await grpc.ServerReadyAsync(new ServerReadyRequest())).Ready);
            Assert.Equal(1, connections);

            var drain = server.App.Services.GetRequiredService<Orleans.KServe.Gateway.GatewayDrain>();
            var stopping = server.App.StopAsync();
            await Wait.UntilAsync(() => drain.Draining, "the drain to begin");

            var ready = await server.GetJsonAsync("/v2/health/ready");
            Assert.Equal(503, ready.Status);
            Assert.False(ready.Body!["ready"]!.GetValue<bool>());
            Assert.Equal(200, (await server.GetJsonAsync("/v2/health/live")).Status);

            using var response = await server.Http.PostAsync("/v2/models/double/infer", new StringContent(DoubleBody, Encoding.UTF8, "application/json"));
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.True(response.Headers.ConnectionClose, "an HTTP/1.1 answer during the drain did not say Connection: close");

            // The first connection got a GOAWAY: the client answers the next call on a new one, and the server is not ready.
            Assert.False((await grpc.ServerReadyAsync(new ServerReadyRequest())).Ready);
            Assert.Equal(2, connections);
            Assert.False(stopping.IsCompleted, "the server stopped before its drain delay was over");

            await stopping.WaitAsync(TimeSpan.FromSeconds(60));
        }
        finally
        {
            await server.DisposeAsync();
        }
    }

    [Fact]
    public async Task Sigterm_on_one_of_two_servers_behind_haproxy_leaves_no_request_unanswered()
    {
        var repository = Directory.CreateTempSubdirectory("kserve-drain-").FullName;
        string[] args = ["--http-port", "0", "--grpc-port", "0", "--silo-port", "0", "--gateway-port", "0", "--model-repository", repository, "--drain-delay", "3"];
        LimitsServerFixture.WriteDoubleOnly(repository);
        try
        {
            var starting = new[] { ServerProcess.StartAsync(args), ServerProcess.StartAsync(args) };
            await using var first = await starting[0];
            await using var second = await starting[1];
            await using var proxy = await HaProxy.StartAsync(first.BaseAddress, second.BaseAddress);

            using var http = new HttpClient { BaseAddress = proxy.Address, Timeout = TimeSpan.FromSeconds(30) };
            var stop = new CancellationTokenSource();
            var sent = 0;
            var answered = 0;
            var failures = new System.Collections.Concurrent.ConcurrentQueue<string>();
            var clients = Enumerable.Range(0, 8).Select(_ => Task.Run(async () =>
            {
                while (!stop.IsCancellationRequested)
                {
                    Interlocked.Increment(ref sent);
                    try
                    {
                        using var response = await http.PostAsync("/v2/models/double/infer", new StringContent(DoubleBody, Encoding.UTF8, "application/json"));
                        var body = await response.Content.ReadAsStringAsync();
                        if (response.IsSuccessStatusCode && body.Contains("[2,4]", StringComparison.Ordinal))
                        {
                            Interlocked.Increment(ref answered);
                        }
                        else
                        {
                            failures.Enqueue($"{(int)response.StatusCode} {body}");
                        }
                    }
                    catch (Exception e)
                    {
                        failures.Enqueue($"{e.GetType().Name}: {e.Message}");
                    }
                }
            })).ToList();

            await Wait.UntilAsync(() => Volatile.Read(ref answered) >= 300, "traffic through haproxy to both servers");
            var beforeStop = Volatile.Read(ref sent);
            var watch = Stopwatch.StartNew();
            first.Signal(ServerProcess.SigTerm);
            await first.Process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(60));
            var stopped = watch.Elapsed;
            var duringStop = Volatile.Read(ref sent) - beforeStop;
            await Wait.UntilAsync(() => Volatile.Read(ref answered) >= beforeStop + 600, "traffic to go on through the other server");
            stop.Cancel();
            await Task.WhenAll(clients);

            output.WriteLine($"haproxy drain: {sent} requests sent ({duringStop} between SIGTERM and the stopped server's exit), {answered} answered, " +
                $"{failures.Count} unanswered or failed; the stopped server exited {first.Process.ExitCode} after {stopped.TotalSeconds:F1} s");
            Assert.True(failures.IsEmpty, $"{failures.Count} of {sent} requests were not answered: {string.Join("; ", failures.Take(5))}");
            Assert.Equal(sent, answered);
            Assert.True(duringStop >= 200, $"only {duringStop} requests were sent while the server stopped");
            Assert.Equal(0, first.Process.ExitCode);
            Assert.Contains("Draining: readiness answers 503", first.Output);
        }
        finally
        {
            Directory.Delete(repository, recursive: true);
        }
    }

    /// <summary>Debian's haproxy in front of two servers, health-checking readiness every 200 ms, stopped by its process id.</summary>
    private sealed class HaProxy : IAsyncDisposable
    {
        private readonly Process _process;
        private readonly string _config;
        private readonly StringBuilder _output = new();

        private HaProxy(Process process, string config, Uri address)
        {
            _process = process;
            _config = config;
            Address = address;
        }

        public Uri Address { get; }

        public static async Task<HaProxy> StartAsync(Uri a, Uri b)
        {
            var port = FreePort();
            var config = Path.GetTempFileName();

            // No retries and no redispatch: every request haproxy forwards is answered by the server it chose, or counts as lost.
            File.WriteAllText(config, $"""
                global
                    maxconn 512
                defaults
                    mode http
                    retries 0
                    timeout connect 2s
                    timeout client 30s
                    timeout server 30s
                frontend inference
                    bind 127.0.0.1:{port}
                    default_backend servers
                backend servers
                    balance roundrobin
                    option httpchk GET /v2/health/ready
                    http-check expect status 200
                    default-server inter 200ms fall 1 rise 2
                    server a {a.Host}:{a.Port} check
                    server b {b.Host}:{b.Port} check

                """);
            var process = new Process { StartInfo = new ProcessStartInfo("haproxy", ["-f", config, "-db"]) { RedirectStandardOutput = true, RedirectStandardError = true } };
            var proxy = new HaProxy(process, config, new Uri($"http://127.0.0.1:{port}"));
            process.OutputDataReceived += (_, e) => proxy.Append(e.Data);
            process.ErrorDataReceived += (_, e) => proxy.Append(e.Data);
            process.Start();
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
            using var http = new HttpClient { BaseAddress = proxy.Address };
            try
            {
                await Wait.UntilAsync(async () =>
                {
                    if (process.HasExited)
                    {
                        throw new TimeoutException($"haproxy exited with {process.ExitCode}");
                    }

                    try
                    {
                        using var response = await http.GetAsync("/v2/health/ready");
                        return response.IsSuccessStatusCode;
                    }
                    catch (HttpRequestException)
                    {
                        return false;
                    }
                }, "haproxy to forward to a ready server");
            }
            catch (TimeoutException e)
            {
                var output = proxy.Output;
                await proxy.DisposeAsync();
                throw new TimeoutException($"{e.Message}; haproxy said:\n{output}", e);
            }

            return proxy;
        }

        private void Append(string? line)
        {
            if (line is not null)
            {
                lock (_output)
                {
                    _output.AppendLine(line);
                }
            }
        }

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

        private static int FreePort()
        {
            using var listener = new TcpListener(IPAddress.Loopback, 0);
            listener.Start();
            return ((IPEndPoint)listener.LocalEndpoint).Port;
        }

        public async ValueTask DisposeAsync()
        {
            if (!_process.HasExited)
            {
                _process.Kill();
                await _process.WaitForExitAsync();
            }

            _process.Dispose();
            File.Delete(_config);
        }
    }
}
