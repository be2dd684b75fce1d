namespace Orleans.KServe.Contracts.Models;

/// <summary>KServe's model states (<c>modelStatus.states</c>).</summary>
public enum ModelState : byte
{
    /// <summary>Known, not yet loading.</summary>
    Pending = 0,
    /// <summary>Loading its artifact into a runtime.</summary>
    Loading = 1,
    /// <summary>Serving.</summary>
    Loaded = 2,
    /// <summary>Could not be loaded; the reason says why.</summary>
    FailedToLoad = 3,
    /// <summary>Unloaded on request.</summary>
    Unloaded = 4,
    /// <summary>Replaced by a newer revision and drained: it serves no more calls, which the gateway routes again.</summary>
    Retired = 5,
}

/// <summary>A model replica's state and, when it failed, why.</summary>
[GenerateSerializer, Immutable]
[Alias("Orleans.KServe.Contracts.ModelStatus")]
public sealed record ModelStatus(
    [property: Id(0)] ModelState State,
    [property: Id(1)] string? Reason = null,
    [property: Id(2)] DateTimeOffset? LoadedAt = null,
    [property: Id(3)] TimeSpan? LoadDuration = null)
{
    /// <summary>When the replica failed to load, why, as one of <see cref="FailureReasons"/> (<c>ModelLoadFailed</c> unless more is known).</summary>
    [Id(4)] public string? FailureReason { get; init; }

    /// <summary>True when the state will not change without a new request (loaded, failed or unloaded).</summary>
    public bool IsSettled => State is ModelState.Loaded or ModelState.FailedToLoad or ModelState.Unloaded or ModelState.Retired;
}
