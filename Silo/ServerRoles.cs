namespace Orleans.KServe.Silo;

/// <summary>
/// What one process runs, from <c>--role</c> (comma-separated): <c>all</c> (silo and REST/gRPC front end, the
/// default), <c>silo</c> (hosts models, no HTTP ports) or <c>frontend</c> (joins as an Orleans client, serves REST
/// and gRPC, hosts no models); <c>silo,frontend</c> is <c>all</c>.
/// </summary>
public readonly record struct ServerRoles(bool HostsModels, bool ServesFrontEnd)
{
    /// <summary>The role names <c>--role</c> takes.</summary>
    public static readonly IReadOnlyList<string> Names = ["all", "silo", "frontend"];

    /// <summary>The roles a comma-separated <c>--role</c> value names; unknown names are left to the validator.</summary>
    public static ServerRoles Parse(string? role)
    {
        bool models = false, frontEnd = false;
        foreach (var name in (role ?? "all").Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            models |= name is "all" or "silo";
            frontEnd |= name is "all" or "frontend";
        }

        return models || frontEnd ? new ServerRoles(models, frontEnd) : new ServerRoles(true, true);
    }

    /// <summary>The name a silo advertises in its metadata (<c>all</c> or <c>silo</c>).</summary>
    public string SiloRoleName => ServesFrontEnd ? "all" : "silo";
}
