using Orleans.Configuration;

namespace Orleans.KServe.Silo;

/// <summary>
/// How fast the cluster gives up on a silo, chosen for loaded small machines (2 cores shared by several silos and
/// their load): a healthy silo that answers its probes late under load must not be declared dead, and a killed or
/// frozen one must be, well within the default request timeout, so that calls waiting on its replicas are retried
/// on the survivors before their deadline. docs/cluster.md derives the bounds from these numbers.
/// </summary>
public static class ClusterTiming
{
    /// <summary>
    /// How long a probe (a ping to a peer) may take before it counts as missed, to begin with: Orleans adapts each
    /// peer's timeout to its observed answers, between half this and <see cref="MaxProbeTimeout"/>.
    /// </summary>
    public static readonly TimeSpan ProbeTimeout = TimeSpan.FromSeconds(4);

    /// <summary>The longest a probe may be given (Orleans' default is four times <see cref="ProbeTimeout"/>).</summary>
    public static readonly TimeSpan MaxProbeTimeout = TimeSpan.FromSeconds(5);

    /// <summary>Probes in a row a silo must miss before its prober suspects it.</summary>
    public const int MissedProbesLimit = 3;

    /// <summary>Silos that must suspect a silo before it is declared dead (fewer when only few are left).</summary>
    public const int VotesForDeath = 2;

    /// <summary>The peers each silo probes.</summary>
    public const int ProbedSilos = 3;

    /// <summary>
    /// Orleans suppresses every vote against a silo from which any message arrived within this window
    /// (<see cref="MaxProbeTimeout"/> × <see cref="MissedProbesLimit"/>): a healthy silo that answers probes late under
    /// load but still sends anything is never voted out, and a frozen one is voted out once it has been silent this long.
    /// </summary>
    public static TimeSpan SilenceWindow => MaxProbeTimeout * MissedProbesLimit;

    /// <summary>
    /// The longest from a silo's loss until it is declared dead: the silence window, then the probe that misses
    /// after it, and the second prober's vote within one more probe.
    /// </summary>
    public static TimeSpan DeathDeclarationBound => SilenceWindow + MaxProbeTimeout * 2;

    /// <summary>Applies these numbers to Orleans' membership.</summary>
    public static void Configure(ClusterMembershipOptions options)
    {
        options.ProbeTimeout = ProbeTimeout;
        options.MaxProbeTimeout = MaxProbeTimeout;
        options.NumMissedProbesLimit = MissedProbesLimit;
        options.NumVotesForDeathDeclaration = VotesForDeath;
        options.NumProbedSilos = ProbedSilos;

        // Under CPU starvation a silo's own probes run late: Orleans then gives its peers more time, not less.
        options.ExtendProbeTimeoutDuringDegradation = true;
    }
}
