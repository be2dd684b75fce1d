using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Orleans.KServe.Bench.Client;

/// <summary>
/// The load of bench/cluster.sh's kill and freeze runs: clients inferring on <c>double</c> in a loop through several
/// front ends, every call recorded with when it was sent, how long it took and its status, so that the script can
/// say what happened around the moment a silo was lost.
/// </summary>
internal static class Timeline
{
    private const string Body = """{"id":"bench","inputs":[{"name":"input","shape":[2,2],"datatype":"FP32","data":[1,2,3,4]}]}""";

    public static async Task<int> RunAsync(Options options)
    {
        var urls = options.Required("urls").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(u => Uri.TryCreate(u, UriKind.Absolute, out var url) ? url : throw new UsageException($"--urls: '{u}' is not a URL")).ToArray();
        var concurrency = options.Int("concurrency", 32);
        var seconds = options.Int("seconds", 60);
        var timeout = TimeSpan.FromSeconds(options.Int("timeout", 60));
        var output = options.Required("out");
        var clients = urls.Select(u => new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = concurrency }) { BaseAddress = u, Timeout = timeout }).ToArray();
        var calls = new ConcurrentQueue<(long Sent, long Took, int Status)>();
        var startedUnixMs = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        var clock = Stopwatch.StartNew();
        var end = TimeSpan.FromSeconds(seconds);
        var workers = Enumerable.Range(0, concurrency).Select(i => Task.Run(async () =>
        {
            var http = clients[i % clients.Length];
            using var content = new ByteArrayContent(Encoding.UTF8.GetBytes(Body));
            content.Headers.ContentType = new("application/json");
            while (clock.Elapsed < end)
            {
                var sent = clock.Elapsed;
                int status;
                try
                {
                    using var response = await http.PostAsync("/v2/models/double/infer", content);
                    var answer = await response.Content.ReadAsStringAsync();
                    status = response.IsSuccessStatusCode && !answer.Contains("[2,4,6,8]", StringComparison.Ordinal) ? 1 : (int)response.StatusCode;
                }
                catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
                {
                    status = 0;
                }

                calls.Enqueue(((long)sent.TotalMicroseconds, (long)(clock.Elapsed - sent).TotalMicroseconds, status));
            }
        })).ToArray();
        await Task.WhenAll(workers);
        foreach (var client in clients)
        {
            client.Dispose();
        }

        await using (var file = new StreamWriter(output))
        {
            await file.WriteLineAsync("sent_ms,latency_ms,status");
            foreach (var (sent, took, status) in calls.OrderBy(c => c.Sent))
            {
                await file.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"{sent / 1000.0:0.###},{took / 1000.0:0.###},{status}"));
            }
        }

        var failed = calls.Count(c => c.Status is < 200 or > 299);
        Console.WriteLine("timeline-result: " + JsonSerializer.Serialize(new Dictionary<string, object> { ["calls"] = calls.Count, ["failed"] = failed, ["started_unix_ms"] = startedUnixMs }));
        return 0;
    }
}
