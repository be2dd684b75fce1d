using Microsoft.Extensions.Configuration;
using System.Net.Sockets;
using System.Text;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.DependencyInjection;
using Orleans.KServe.Gateway;
using Microsoft.Extensions.Hosting;
using Orleans.KServe.Silo;

namespace Orleans.KServe.FunctionalTests;

/// <summary>A server that admits one inference request at a time.</summary>
public sealed class SingleSlotServerFixture : ServerFixture
{
    protected override IEnumerable<string> ExtraArguments => ["--max-in-flight", "1"];
}

/// <summary>
/// Holds a request in flight by sending its headers and only part of its body over a raw socket: the server has
/// admitted it and waits for the rest, as it would for a slow client.
/// </summary>
public sealed class HalfSentRequest : IAsyncDisposable
{
    private const string Body = """{"inputs":[{"name":"input","shape":[1,2],"datatype":"FP32","data":[3,4]}]}""";
    private readonly TcpClient _client = new();
    private NetworkStream _stream = null!;

    public static async Task<HalfSentRequest> StartAsync(Uri server)
    {
        var request = new HalfSentRequest();
        await request._client.ConnectAsync(server.Host, server.Port);
        request._stream = request._client.GetStream();
        var head = $"POST /v2/models/double/infer HTTP/1.1\r\nHost: {server.Authority}\r\nContent-Type: application/json\r\nContent-Length: {Body.Length}\r\n\r\n";
        await request._stream.WriteAsync(Encoding.ASCII.GetBytes(head + Body[..10]));
        await request._stream.FlushAsync();
        return request;
    }

    /// <summary>Sends the rest of the body and reads the status line and body of the answer.</summary>
    public async Task<(int Status, string Body)> FinishAsync()
    {
        await _stream.WriteAsync(Encoding.ASCII.GetBytes(Body[10..]));
        var buffer = new byte[4096];
        var text = new StringBuilder();
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (!text.ToString().Contains("\"outputs\"") && !text.ToString().Contains("\"error\"") && DateTime.UtcNow < deadline)
        {
            var read = await _stream.ReadAsync(buffer).AsTask().WaitAsync(TimeSpan.FromSeconds(30));
            if (read == 0)
            {
                break;
            }

            text.Append(Encoding.ASCII.GetString(buffer, 0, read));
        }

        var response = text.ToString();
        var status = int.Parse(response.Split(' ')[1]);
        return (status, response[(response.IndexOf("\r\n\r\n", StringComparison.Ordinal) + 4)..]);
    }

    public ValueTask DisposeAsync()
    {
        _client.Dispose();
        return ValueTask.CompletedTask;
    }
}

public sealed class InFlightLimitTests(SingleSlotServerFixture server) : IClassFixture<SingleSlotServerFixture>
{
    [Fact]
    public async Task Requests_over_the_in_flight_limit_get_503_with_a_message_instead_of_queueing()
    {
        await using var slow = await HalfSentRequest.StartAsync(server.BaseAddress);
        // The half-sent request occupies the only slot once the server has admitted it. Probing for that with
        // requests would race it for the slot (a probe holding it would get the half-sent request refused), so the
        // test watches the server's count.
        var serving = server.App.Services.GetRequiredService<Orleans.KServe.Gateway.Serving.ServingLayer>();
        await Wait.UntilAsync(() => serving.InFlight == 1, "the half-sent request to take the only slot");
        var rejected = await server.PostJsonAsync("/v2/models/double/infer", """{"inputs":[{"name":"input","shape":[1,2],"datatype":"FP32","data":[1,2]}]}""");

        Assert.Equal(503, rejected.Status);
        Assert.Contains("limit of 1 inference requests in flight", Json.Error(rejected.Body));

        var (status, body) = await slow.FinishAsync();
        Assert.Equal(200, status);
        Assert.Contains("[6,8]", body);

        // Health and metadata are not inference requests and stay available; the slot is free again once the
        // half-sent request's handler is done (just after its answer went out).
        Assert.Equal(200, (await server.GetJsonAsync("/v2/health/live")).Status);
        await Wait.UntilAsync(() => serving.InFlight == 0, "the half-sent request to leave its slot");
        Assert.Equal(200, (await server.PostJsonAsync("/v2/models/double/infer",
            """{"inputs":[{"name":"input","shape":[1,2],"datatype":"FP32","data":[1,2]}]}""")).Status);
    }
}

public sealed class ShutdownTests
{
    [Fact]
    public async Task Stopping_drains_the_requests_in_flight_before_exit()
    {
        var server = new ServerFixture();
        await server.InitializeAsync();
        try
        {
            await using var slow = await HalfSentRequest.StartAsync(server.BaseAddress);

            // The request must be in the handler (admitted, reading its body) before the stop begins.
            var serving = server.App.Services.GetRequiredService<Orleans.KServe.Gateway.Serving.ServingLayer>();
            await Wait.UntilAsync(() => serving.InFlight == 1, "the half-sent request to be admitted");
            var lifetime = server.App.Services.GetRequiredService<IHostApplicationLifetime>();
            var stopping = server.App.StopAsync();
            await Wait.UntilAsync(() => lifetime.ApplicationStopping.IsCancellationRequested, "the stop to begin");
            Assert.False(stopping.IsCompleted, "the server stopped with a request in flight");

            var (status, body) = await slow.FinishAsync();
            Assert.Equal(200, status);
            Assert.Contains("[6,8]", body);
            await stopping.WaitAsync(TimeSpan.FromSeconds(60));
        }
        finally
        {
            await server.DisposeAsync();
        }
    }
}

public sealed class OptionsTests
{
    [Fact]
    public void Bad_settings_are_all_reported_at_start_with_clear_messages()
    {
        var e = Assert.Throws<InvalidServerOptionsException>(() => SiloHost.Build(
            ["--http-port", "70000", "--host", "not-an-ip", "--model-repository", "/no/such/folder", "--max-in-flight", "0"]));
        Assert.Contains(e.Errors, m => m.Contains("--http-port must be between 0 and 65535"));
        Assert.Contains(e.Errors, m => m.Contains("--host 'not-an-ip' is not an IP address"));
        Assert.Contains(e.Errors, m => m.Contains("'/no/such/folder' is not a folder"));
        Assert.Contains(e.Errors, m => m.Contains("--max-in-flight must be at least 1"));
    }

    [Fact]
    public void Every_part_reports_its_bad_settings_and_all_are_reported_at_once()
    {
        var e = Assert.Throws<InvalidServerOptionsException>(() => SiloHost.Build(
        [
            "--http-port", "70000", "--executor-threads", "-1", "--model-repository", "/no/such/folder", "--silo-port", "99999",
            "--clustering", "zookeeper", "--role", "gpu", "--http-prot", "9000",
        ]));
        Assert.Contains(e.Errors, m => m.Contains("--http-port must be between 0 and 65535, not 70000"));
        Assert.Contains(e.Errors, m => m.Contains("--executor-threads must be between 0 (one per core) and 1024, not -1"));
        Assert.Contains(e.Errors, m => m.Contains("--model-repository '/no/such/folder' is not a folder"));
        Assert.Contains(e.Errors, m => m.Contains("--silo-port must be between 0 and 65535, not 99999"));
        Assert.Contains(e.Errors, m => m.Contains("--clustering 'zookeeper' is not available; this server offers localhost, redis, postgres"));
        Assert.Contains(e.Errors, m => m.Contains("--role 'gpu' is not a role of this server; it takes all, silo, frontend, comma-separated"));
        Assert.Contains(e.Errors, m => m.Contains("unknown switch --http-prot; did you mean --http-port?"));
        Assert.Equal(7, e.Errors.Count);
    }

    [Theory]
    [InlineData("--http-prot", "--http-port")]
    [InlineData("--grpc-max-mesage-bytes", "--grpc-max-message-bytes")]
    [InlineData("--model-repo", "--model-repository")]
    [InlineData("--drain", "--drain-delay")]
    public void An_unknown_switch_is_refused_naming_the_closest_known_one(string typed, string closest)
    {
        var e = Assert.Throws<InvalidServerOptionsException>(() => SiloHost.Build([typed, "1"]));
        Assert.Equal($"unknown switch {typed}; did you mean {closest}?", Assert.Single(e.Errors));
    }

    [Fact]
    public void A_word_that_is_no_switch_is_refused_and_a_switch_value_that_looks_like_one_is_not()
    {
        var e = Assert.Throws<InvalidServerOptionsException>(() => SiloHost.Build(["serve", "--http-port", "-1"]));
        Assert.Contains(e.Errors, m => m == "'serve' is not a switch; settings are given as --name value");
        Assert.Contains(e.Errors, m => m.Contains("--http-port must be between 0 and 65535, not -1"));
        Assert.Equal(2, e.Errors.Count);
    }

    [Fact]
    public void Settings_keep_their_names_in_the_environment_and_appsettings_form()
    {
        var e = Assert.Throws<InvalidServerOptionsException>(() => SiloHost.Build([], builder =>
            builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
            {
                ["KServe:MaxInFlightRequests"] = "0",
                ["KServe:ExecutorThreads"] = "5000",
                ["KServe:Clustering"] = "consul",
            })));
        Assert.Contains(e.Errors, m => m.Contains("--max-in-flight must be at least 1, not 0"));
        Assert.Contains(e.Errors, m => m.Contains("--executor-threads must be between 0 (one per core) and 1024, not 5000"));
        Assert.Contains(e.Errors, m => m.Contains("--clustering 'consul' is not available"));
    }

    [Fact]
    public void A_transport_block_size_outside_its_range_is_reported()
    {
        var e = Assert.Throws<InvalidServerOptionsException>(() => SiloHost.Build(["--transport-block-bytes", "100"]));
        Assert.Contains(e.Errors, m => m.Contains("--transport-block-bytes must be 0 (Kestrel's pool) or between 4096 and 1048576, not 100"));
    }

    [Theory]
    [InlineData(null, 32 * 1024)]
    [InlineData("65536", 65536)]
    [InlineData("0", 0)]
    public async Task Kestrel_gets_the_transport_pool_of_the_configured_block_size(string? setting, int expected)
    {
        string[] args = setting is null ? [] : ["--transport-block-bytes", setting];
        await using var app = SiloHost.Build(args);

        var factory = app.Services.GetRequiredService<IMemoryPoolFactory<byte>>();
        if (expected == 0)
        {
            // Kestrel's own pool factory: 4 KiB blocks.
            Assert.IsNotType<TransportMemoryPoolFactory>(factory);
            using var pool = factory.Create();
            Assert.Equal(4096, pool.MaxBufferSize);
        }
        else
        {
            var ours = Assert.IsType<TransportMemoryPoolFactory>(factory);
            Assert.Equal(expected, ours.BlockSize);
            Assert.Equal(TimeSpan.FromSeconds(10), ours.TrimPeriod);
            using var pool = factory.Create();
            Assert.Equal(expected, pool.MaxBufferSize);
        }
    }

    [Fact]
    public void A_value_of_the_wrong_type_is_reported()
    {
        var e = Assert.Throws<InvalidServerOptionsException>(() => SiloHost.Build(["--http-port", "eighty"]));
        Assert.Contains("eighty", e.Message);
    }

    [Fact]
    public void The_default_repository_is_the_samples_folder_of_the_repository()
    {
        Assert.Equal(Path.Combine(Repo.Root, "samples"), Orleans.KServe.Operator.Hosting.ModelRepositoryOptions.FindDefaultRepository(AppContext.BaseDirectory));
    }
}

/// <summary>A server whose gateway always goes through the model grain (Orleans messages), never the local fast path.</summary>
public sealed class GrainPathServerFixture : ServerFixture
{
    protected override IEnumerable<string> ExtraArguments => ["--local-fast-path", "false"];
}

public sealed class GrainPathTests(GrainPathServerFixture server) : IClassFixture<GrainPathServerFixture>
{
    [Fact]
    public async Task The_grain_call_path_answers_like_the_fast_path()
    {
        var (status, body) = await server.PostJsonAsync("/v2/models/double/infer",
            """{"id":"via-grain","inputs":[{"name":"input","shape":[2,2],"datatype":"FP32","data":[1,2,3,4]}]}""");
        Assert.Equal(200, status);
        Assert.Equal("via-grain", body!["id"]!.GetValue<string>());
        Assert.Equal([2f, 4f, 6f, 8f], Json.Floats(body["outputs"]![0]!["data"]));

        var invalid = await server.PostJsonAsync("/v2/models/double/infer",
            """{"inputs":[{"name":"input","shape":[1,3],"datatype":"FP32","data":[1,2,3]}]}""");
        Assert.Equal(400, invalid.Status);
        Assert.Contains("expects [-1,2]", Json.Error(invalid.Body));

        var failed = await server.PostJsonAsync("/v2/models/zipmap/infer",
            """{"inputs":[{"name":"input","shape":[1,2],"datatype":"FP32","data":[1,2]}]}""");
        Assert.Equal(503, failed.Status);
        Assert.Contains("not a tensor", Json.Error(failed.Body));
    }
}
