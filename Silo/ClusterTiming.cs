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
    /// <summary>How long a probe (a ping to a peer) may take before it counts as missed.</summary>
    public static readonly TimeSpan ProbeTimeout = TimeSpan.FromSeconds(5);

    /// <summary>Probes in a row a silo must miss before its prober suspects it.</summary>
    public const int MissedProbesLimit = 3;

    /// <summary>Silos that must suspect a silo before it is declared dead (one when only two are left).</summary>
    public const int VotesForDeath = 2;

    /// <summary>The peers each silo probes.</summary>
    public const int ProbedSilos = 3;

    /// <summary>
    /// The longest from a silo's loss until it is declared dead: its probers miss <see cref="MissedProbesLimit"/>
    /// probes, one <see cref="ProbeTimeout"/> apart, and the second vote lands within one more probe period.
    /// </summary>
    public static TimeSpan DeathDeclarationBound => ProbeTimeout * (MissedProbesLimit + 1);

    /// <summary>Applies these numbers to Orleans' membership.</summary>
    public static void Configure(ClusterMembershipOptions options)
    {
        options.ProbeTimeout = ProbeTimeout;
        options.NumMissedProbesLimit = MissedProbesLimit;
        options.NumVotesForDeathDeclaration = VotesForDeath;
        options.NumProbedSilos = ProbedSilos;

        // Under CPU starvation a silo's own probes run late: Orleans then gives its peers more time, not less.
        options.ExtendProbeTimeoutDuringDegradation = true;
    }
}
