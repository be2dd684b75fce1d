using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text;

namespace Orleans.KServe.FunctionalTests;

/// <summary>
/// Clients inferring on <c>double</c> in a loop through the given front ends, round robin, each call with its own
/// deadline; records every answer's time and outcome, and every failure's status and message.
/// </summary>
public sealed class LoadRun : IAsyncDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private readonly Task[] _clients;
    private readonly HttpClient[] _http;
    private readonly ConcurrentQueue<Outcome> _outcomes = new();
    private readonly Stopwatch _clock = Stopwatch.StartNew();

    /// <summary>One answered (or failed) call: when it was sent and answered (since the run began), its status and message.</summary>
    public sealed record Outcome(TimeSpan Sent, TimeSpan Answered, int Status, string? Failure)
    {
        public bool Succeeded => Status == 200;

        public TimeSpan Took => Answered - Sent;
    }

    private LoadRun(IReadOnlyList<Uri> frontEnds, int clients, TimeSpan clientTimeout)
    {
        _http = frontEnds.Select(f => new HttpClient { BaseAddress = f, Timeout = clientTimeout }).ToArray();
        _clients = Enumerable.Range(0, clients).Select(i => Task.Run(() => ClientAsync(i))).ToArray();
    }

    /// <summary>Starts <paramref name="clients"/> clients; a call that takes longer than <paramref name="clientTimeout"/> counts as failed with status 0.</summary>
    public static LoadRun Start(IReadOnlyList<Uri> frontEnds, int clients, TimeSpan clientTimeout) => new(frontEnds, clients, clientTimeout);

    /// <summary>Time since the run began.</summary>
    public TimeSpan Now => _clock.Elapsed;

    public IReadOnlyList<Outcome> Outcomes => _outcomes.ToArray();

    public int Succeeded => _outcomes.Count(o => o.Succeeded);

    /// <summary>Waits until <paramref name="count"/> more calls have succeeded after <paramref name="since"/>.</summary>
    public Task WaitForSuccessesAsync(int count, TimeSpan since, TimeSpan timeout) =>
        Wait.UntilAsync(() => _outcomes.Count(o => o.Succeeded && o.Sent >= since) >= count, $"{count} successful calls sent after {since.TotalSeconds:0.0} s", timeout);

    private async Task ClientAsync(int index)
    {
        var http = _http[index % _http.Length];
        while (!_stop.IsCancellationRequested)
        {
            var sent = _clock.Elapsed;
            try
            {
                using var response = await http.PostAsync("/v2/models/double/infer", new StringContent(SiloCluster.DoubleBody, Encoding.UTF8, "application/json"), _stop.Token);
                var body = await response.Content.ReadAsStringAsync(_stop.Token);
                var ok = response.IsSuccessStatusCode && body.Contains("[2,4]", StringComparison.Ordinal);
                _outcomes.Enqueue(new Outcome(sent, _clock.Elapsed, ok ? 200 : (int)response.StatusCode, ok ? null : body));
            }
            catch (OperationCanceledException) when (_stop.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
            {
                _outcomes.Enqueue(new Outcome(sent, _clock.Elapsed, 0, $"{e.GetType().Name}: {e.Message}"));
            }
        }
    }

    /// <summary>A summary for the test's output: calls, failures by status, the slowest call, and the first few failures.</summary>
    public string Describe()
    {
        var outcomes = Outcomes;
        var failures = outcomes.Where(o => !o.Succeeded).ToList();
        var slowest = outcomes.Count == 0 ? TimeSpan.Zero : outcomes.Max(o => o.Took);
        return $"{outcomes.Count} calls, {failures.Count} failed ({string.Join(", ", failures.GroupBy(f => f.Status).Select(g => $"{g.Key}: {g.Count()}"))}), " +
            $"slowest {slowest.TotalSeconds:0.00} s\n" + string.Join("\n", failures.Take(5).Select(f => $"  at {f.Sent.TotalSeconds:0.00} s: {f.Status} {f.Failure}"));
    }

    private int _disposed;

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1)
        {
            return;
        }

        await _stop.CancelAsync();
        await Task.WhenAll(_clients);
        foreach (var http in _http)
        {
            http.Dispose();
        }

        _stop.Dispose();
    }
}
