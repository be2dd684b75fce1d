namespace Orleans.KServe.Testing;

/// <summary>
/// Waits on a condition with a deadline: the one way tests wait for something to happen. The condition is checked
/// at once and then every few milliseconds; past the deadline the wait fails with a message naming what was awaited.
/// </summary>
public static class Wait
{
    /// <summary>The deadline when a test names none.</summary>
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(30);

    private static readonly TimeSpan Interval = TimeSpan.FromMilliseconds(10);

    /// <summary>Waits until <paramref name="condition"/> holds.</summary>
    public static Task UntilAsync(Func<bool> condition, string what, TimeSpan? timeout = null) =>
        UntilAsync(() => Task.FromResult(condition()), what, timeout);

    /// <summary>Waits until <paramref name="condition"/> holds.</summary>
    public static async Task UntilAsync(Func<Task<bool>> condition, string what, TimeSpan? timeout = null)
    {
        await ForAsync(async () => await condition(), done => done, what, timeout);
    }

    /// <summary>Probes until <paramref name="done"/> accepts what <paramref name="probe"/> returned; returns that value.</summary>
    public static async Task<T> ForAsync<T>(Func<Task<T>> probe, Func<T, bool> done, string what, TimeSpan? timeout = null, Func<T, string>? describe = null)
    {
        var limit = timeout ?? DefaultTimeout;
        var deadline = DateTime.UtcNow + limit;
        while (true)
        {
            var value = await probe();
            if (done(value))
            {
                return value;
            }

            if (DateTime.UtcNow > deadline)
            {
                var last = describe is null ? "" : $" (last seen: {describe(value)})";
                throw new TimeoutException($"timed out after {limit.TotalSeconds:0.#} s waiting for {what}{last}");
            }

            await Task.Delay(Interval);
        }
    }
}
