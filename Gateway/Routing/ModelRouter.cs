using System.Collections.Frozen;
using System.Diagnostics;
using Orleans.Runtime.Messaging;
using Orleans.KServe.Contracts.Grains;
using Orleans.KServe.Contracts.Inference;
using Orleans.KServe.Contracts.Models;
using Orleans.KServe.Contracts.Serving;
using Orleans.Runtime;

namespace Orleans.KServe.Gateway.Routing;

/// <summary>
/// The gateway's locally cached routing table: (namespace, name, version) to the revisions that serve it and their
/// replicas, refreshed when the registry changes. A model is found by its namespace and name, or by its bare name
/// while only one namespace declares it. No request calls the control plane. When a replica is active on this very silo and
/// <see cref="GatewayOptions.LocalFastPath"/> is on, requests go straight to it without an Orleans message.
/// </summary>
/// <remarks>
/// Swaps are make-before-break: a replaced revision keeps serving until every router has the new table and its
/// calls in progress have finished. A call that still reaches it after that (it picked its route before the table
/// changed) is answered <see cref="InferenceErrorKind.Retired"/>, and the router sends it to the revision that now
/// serves the model, waiting for the new table when it has not arrived yet. So a swap fails no call.
/// </remarks>
public sealed class ModelRouter(
    IGrainFactory grains, GatewayOptions options, ServerIdentity identity, ILocalModelDirectory? localDirectory = null, Action<ModelRoute>? retries = null)
{
    /// <summary>How often one call is routed again after finding its replica retired.</summary>
    private const int MaxReroutes = 3;

    /// <summary>How long a call whose replica retired waits for a table that no longer names that replica.</summary>
    private static readonly TimeSpan RerouteWait = TimeSpan.FromSeconds(10);

    private readonly ModelAddressing _addressing = new(options);
    private volatile Snapshot _snapshot = Snapshot.Empty;
    private volatile TaskCompletionSource _updated = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>This router's name in the registry, which rollouts wait on: the server's instance id.</summary>
    public string Id => identity.InstanceId;

    /// <summary>The version of the table in use; -1 before the first table arrived.</summary>
    public long Version => _snapshot.Version;

    /// <summary>Every route (each version of each model), in the registry's order, newest version first.</summary>
    public IReadOnlyList<ModelRoute> Routes => _snapshot.Ordered;

    /// <summary>Installs a new table, keeping cached metadata of unchanged revisions.</summary>
    public void Update(RoutingTable table)
    {
        var previous = _snapshot;
        if (table.Version == previous.Version)
        {
            return;
        }

        var ordered = new List<ModelRoute>(table.Services.Length);
        var byQualified = new Dictionary<string, ModelRoute[]>(StringComparer.Ordinal);
        var byName = new Dictionary<string, List<ModelRoute[]>>(StringComparer.Ordinal);
        var hosts = new Dictionary<string, (string, string)>(StringComparer.OrdinalIgnoreCase);
        foreach (var entry in table.Services)
        {
            var versions = entry.AllVersions.IsEmpty
                ? [new ModelRoute(entry, null, grains)]
                : entry.AllVersions.Select(spec => new ModelRoute(entry, spec, grains)).ToArray();
            var qualified = Qualified(entry.Namespace, entry.Name);
            foreach (var route in versions)
            {
                var old = previous.ByQualified.GetValueOrDefault(qualified)?.FirstOrDefault(r => r.GrainKey == route.GrainKey);
                route.Metadata = old?.Metadata;
                ordered.Add(route);
            }

            if (byQualified.TryAdd(qualified, versions))
            {
                (byName.TryGetValue(entry.Name, out var spaces) ? spaces : byName[entry.Name] = []).Add(versions);
                foreach (var prefix in _addressing.HostPrefixes(entry.Namespace, entry.Name))
                {
                    hosts.TryAdd(prefix, (entry.Namespace, entry.Name));
                }
            }
        }

        _snapshot = new Snapshot(
            table.Version,
            byQualified.ToFrozenDictionary(StringComparer.Ordinal),
            byName.ToFrozenDictionary(kv => kv.Key, kv => kv.Value.ToArray(), StringComparer.Ordinal),
            hosts.ToFrozenDictionary(StringComparer.OrdinalIgnoreCase),
            ordered);
        var updated = _updated;
        _updated = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        updated.TrySetResult();
    }

    private static string Qualified(string @namespace, string name) => string.Concat(@namespace, "/", name);

    /// <summary>The addressing rules this router resolves a request's namespace by.</summary>
    public ModelAddressing Addressing => _addressing;

    /// <summary>
    /// The namespace a request's Host names for <paramref name="model"/> (KServe's or Knative's domain template),
    /// or null when its Host names no model of that name.
    /// </summary>
    public string? NamespaceFromHost(string? host, string model)
    {
        if (host is null)
        {
            return null;
        }

        // Most requests of a server carry one Host: its answer is kept until the table or the Host changes.
        var snapshot = _snapshot;
        var last = _lastHost;
        var found = last is not null && ReferenceEquals(last.Snapshot, snapshot) && last.Host == host
            ? last.Found
            : Remember(host, snapshot);
        return found is { } f && f.Name == model ? f.Namespace : null;
    }

    private (string Namespace, string Name)? Remember(string host, Snapshot snapshot)
    {
        var found = ModelAddressing.FromHost(host, snapshot.Hosts);
        _lastHost = new HostAnswer(snapshot, host, found);
        return found;
    }

    private volatile HostAnswer? _lastHost;

    private sealed record HostAnswer(Snapshot Snapshot, string Host, (string Namespace, string Name)? Found);

    /// <summary>
    /// Finds the route for a model and version in <paramref name="namespace"/>, or by its bare name while only one
    /// namespace declares it (400 naming the namespaces when several do); without a version, the newest version
    /// that is ready (the newest when none is). Throws 404 when the model or version is not served.
    /// </summary>
    public ModelRoute Get(string model, string? version = null, string? @namespace = null)
    {
        var snapshot = _snapshot;
        ModelRoute[]? versions;
        if (@namespace is not null)
        {
            if (!snapshot.ByQualified.TryGetValue(Qualified(@namespace, model), out versions))
            {
                throw new InferenceException(InferenceErrorKind.NotFound, $"model '{model}' not found in namespace '{@namespace}'");
            }
        }
        else if (!snapshot.ByName.TryGetValue(model, out var spaces))
        {
            throw InferenceException.ModelNotFound(model);
        }
        else if (spaces.Length > 1)
        {
            throw InferenceException.Invalid(
                $"model '{model}' is declared in namespaces {string.Join(", ", spaces.Select(s => $"'{s[0].Namespace}'").Order(StringComparer.Ordinal))}; " +
                $"name its namespace by Host ({options.DomainTemplate}) or path ({options.PathTemplate})");
        }
        else
        {
            versions = spaces[0];
        }

        if (version is not null)
        {
            foreach (var route in versions)
            {
                if (route.Version == version)
                {
                    return route;
                }
            }

            throw new InferenceException(InferenceErrorKind.NotFound,
                $"model '{model}' has no version '{version}'; it serves version {string.Join(", ", versions.Select(v => v.Version))}");
        }

        if (versions.Length > 1 && localDirectory is not null)
        {
            foreach (var route in versions)
            {
                if (route.GrainKey is not null && localDirectory.TryGet(route.GrainKey, out var local) && local.IsLoaded)
                {
                    return route;
                }
            }
        }

        return versions[0];
    }

    /// <summary>The names of the models served.</summary>
    public IEnumerable<string> ModelNames => _snapshot.ByName.Keys;

    /// <summary>
    /// Fails fast with 503 when the model cannot answer (not servable, or a local replica that is loading or
    /// failed), before the caller spends time reading and decoding a body.
    /// </summary>
    public void EnsureAvailable(ModelRoute route)
    {
        _ = Servable(route);
        if (localDirectory is not null && localDirectory.TryGet(route.GrainKey!, out var local) && !local.IsLoaded
            && local.Status.State is not (ModelState.Retired or ModelState.Loading))
        {
            // Throws the replica's own 503 (failed with its reason, unloaded); a retired one is routed past, and one that
            // is loading again (its silo was lost after the revision was published) is waited for by the call.
            local.GetMetadata();
        }
    }

    /// <summary>
    /// Runs an inference on the route's replica, or on its successor when the replica has retired; a call whose
    /// replica's silo cannot be reached, or whose replica is loading again after its silo was lost, waits and is sent
    /// again within <see cref="GatewayOptions.RequestTimeout"/> (never a call in a sequence).
    /// </summary>
    public ValueTask<InferenceResponse> InferAsync(ModelRoute route, InferenceRequest request, CancellationToken cancellationToken = default)
    {
        if (route.Views is not null)
        {
            return OnChosenReplicaAsync(route, request, cancellationToken);
        }

        return InferOnReplicaAsync(route, request, cancellationToken);
    }

    /// <summary>The most calls more a local replica may have outstanding than the chosen remote one and still be preferred.</summary>
    private const int LocalMargin = 2;

    /// <summary>
    /// Picks one of the revision's replicas for a call: two at random, the one this front end has fewer calls
    /// outstanding on; a replica on this very silo instead unless it has more than <see cref="LocalMargin"/> more.
    /// </summary>
    private ModelRoute Choose(ModelRoute route)
    {
        var views = route.Views!;
        var outstanding = route.Outstanding!;
        var a = Random.Shared.Next(views.Length);
        var b = (a + 1 + Random.Shared.Next(views.Length - 1)) % views.Length;
        var pick = Volatile.Read(ref outstanding[b]) < Volatile.Read(ref outstanding[a]) ? b : a;
        if (options.LocalFastPath && localDirectory is not null)
        {
            for (var r = 0; r < views.Length; r++)
            {
                if (localDirectory.TryGet(views[r].GrainKey!, out var local) && local.IsLoaded
                    && Volatile.Read(ref outstanding[r]) <= Volatile.Read(ref outstanding[pick]) + LocalMargin)
                {
                    return views[r];
                }
            }
        }

        return views[pick];
    }

    private async ValueTask<InferenceResponse> OnChosenReplicaAsync(ModelRoute route, InferenceRequest request, CancellationToken cancellationToken)
    {
        var chosen = Choose(route);
        var outstanding = route.Outstanding!;
        Interlocked.Increment(ref outstanding[chosen.Replica]);
        try
        {
            return await InferOnReplicaAsync(chosen, request, cancellationToken);
        }
        finally
        {
            Interlocked.Decrement(ref outstanding[chosen.Replica]);
        }
    }

    private ValueTask<InferenceResponse> InferOnReplicaAsync(ModelRoute route, InferenceRequest request, CancellationToken cancellationToken)
    {
        if (TryLocal(route, out var local))
        {
            try
            {
                // A retired replica refuses synchronously, before it has taken the call.
                return local.InferAsync(request, cancellationToken);
            }
            catch (InferenceException e) when (e.Kind == InferenceErrorKind.Retired)
            {
                return RetryAsync(route, request, e, Stopwatch.GetTimestamp(), cancellationToken);
            }
        }

        var started = Stopwatch.GetTimestamp();
        var call = Servable(route).InferAsync(request, cancellationToken);
        return call.IsCompletedSuccessfully ? call : ViaGrainAsync(call, started, route, request, cancellationToken);
    }

    private async ValueTask<InferenceResponse> ViaGrainAsync(
        ValueTask<InferenceResponse> call, long started, ModelRoute route, InferenceRequest request, CancellationToken cancellationToken)
    {
        if (options.RequestTimeout < options.GrainResponseTimeout)
        {
            // Orleans would wait longer than the deadline for an answer.
            call = new ValueTask<InferenceResponse>(call.AsTask().WaitAsync(options.RequestTimeout, cancellationToken));
        }

        try
        {
            return await call;
        }
        catch (Exception e) when (Recoverable(e, route, request, cancellationToken))
        {
            return await RetryAsync(route, request, e, started, cancellationToken);
        }
        catch (Exception e) when (IsTransport(e) && InSequence(request))
        {
            throw NotResent(route, e);
        }
    }

    /// <summary>
    /// Sends a call again after <paramref name="failure"/>, until it is answered or its deadline passes. A retired
    /// replica (never executed) is passed on at once: to the revision that replaced it, or, while the table still
    /// names it, to its grain once more, which Orleans activates anew when the old activation was leaving with its
    /// silo. An unreachable silo or a replica loading again is waited for.
    /// </summary>
    private async ValueTask<InferenceResponse> RetryAsync(
        ModelRoute route, InferenceRequest request, Exception failure, long started, CancellationToken cancellationToken)
    {
        var deadline = started + (long)(options.RequestTimeout.TotalSeconds * Stopwatch.Frequency);
        var reroutes = 0;
        var sentToSameGrain = false;
        for (var attempt = 1; ; attempt++)
        {
            var viaGrain = false;
            if (IsRetired(failure) || (IsUndelivered(failure) && IsStale(route)))
            {
                if (++reroutes > MaxReroutes)
                {
                    throw failure;
                }

                if (!sentToSameGrain && !IsStale(route))
                {
                    sentToSameGrain = true;
                    viaGrain = true;
                }
                else
                {
                    route = await SuccessorAsync(route, cancellationToken);
                    if (route.Views is not null)
                    {
                        route = Choose(route);
                    }
                }
            }
            else
            {
                // The replica's silo is gone (killed, frozen, leaving) or the replica is re-activating after such a
                // loss: wait, within the call's deadline, until it can answer.
                var remaining = Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), deadline);
                if (remaining <= TimeSpan.Zero)
                {
                    throw DeadlinePassed(route, failure);
                }

                retried?.Invoke(route);
                await WaitBeforeRetryAsync(route, failure, attempt, remaining, cancellationToken);
                route = Current(route);
                if (route.Views is not null)
                {
                    route = Choose(route);
                }
            }

            var left = Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), deadline);
            if (left <= TimeSpan.Zero)
            {
                throw DeadlinePassed(route, failure);
            }

            try
            {
                var call = !viaGrain && TryLocal(route, out var local)
                    ? local.InferAsync(request, cancellationToken)
                    : Servable(route).InferAsync(request, cancellationToken);
                return call.IsCompletedSuccessfully ? call.Result : await call.AsTask().WaitAsync(left, cancellationToken);
            }
            catch (Exception e) when (Recoverable(e, route, request, cancellationToken))
            {
                failure = e;
            }
            catch (Exception e) when (IsTransport(e) && InSequence(request))
            {
                throw NotResent(route, e);
            }
        }
    }

    private static bool IsTransport(Exception e) => e is SiloUnavailableException or OrleansMessageRejectionException or ConnectionFailedException or TimeoutException;

    private static bool InSequence(InferenceRequest request) => request.Parameters is { } parameters && parameters.ContainsKey(SequenceIdParameter);

    private static InferenceException NotResent(ModelRoute route, Exception e) => InferenceException.Unavailable(
        $"model '{route.Name}': {Describe(e)}; a call in a sequence (sequence_id) is not sent twice, so it was not retried");

    private bool Recoverable(Exception e, ModelRoute route, InferenceRequest request, CancellationToken cancellationToken) =>
        IsRetired(e) || (IsUndelivered(e) && IsStale(route)) || (!cancellationToken.IsCancellationRequested && Retryable(e, request));

    /// <summary>Called on every retry of a call whose replica could not answer (for the retries metric).</summary>
    private readonly Action<ModelRoute>? retried = retries;

    private InferenceException DeadlinePassed(ModelRoute route, Exception failure) => InferenceException.Unavailable(
        $"model '{route.Name}' did not answer within the request timeout of {options.RequestTimeout.TotalSeconds:0.###} s (--request-timeout): " +
        Describe(failure));

    private static string Describe(Exception e) => e switch
    {
        InferenceException => e.Message,
        TimeoutException => "no answer came from the silo of its replica",
        _ => $"the silo of its replica could not be reached ({e.GetType().Name}: {FirstLine(e.Message)})",
    };

    private static string FirstLine(string text)
    {
        var end = text.IndexOf('\n');
        return end < 0 ? text : text[..end].TrimEnd();
    }

    private static bool IsRetired(Exception e) => e is InferenceException { Kind: InferenceErrorKind.Retired };

    // Failures that say the message never reached a grain method.
    private static bool IsUndelivered(Exception e) => e is OrleansMessageRejectionException;

    /// <summary>True when the current table no longer routes <paramref name="route"/>'s model to its replica.</summary>
    private bool IsStale(ModelRoute route)
    {
        try
        {
            return Successor(route).RevisionKey != route.RevisionKey;
        }
        catch (InferenceException)
        {
            return true;
        }
    }

    /// <summary>
    /// True for failures that say the replica could not answer, not that it ran and failed: the silo is unreachable
    /// or was declared dead, the message was rejected, no answer came in time, or the replica is loading again after
    /// its silo was lost. A call in a sequence (<c>sequence_id</c>) is never sent twice.
    /// </summary>
    private static bool Retryable(Exception e, InferenceRequest request)
    {
        if (InSequence(request))
        {
            return false;
        }

        return IsTransport(e)
            || e is InferenceException { Kind: InferenceErrorKind.Unavailable, Message: var message } && message.EndsWith(" is loading", StringComparison.Ordinal);
    }

    /// <summary>The request parameter that puts a call in a stateful sequence (Triton's sequence batcher, KServe's v2).</summary>
    public const string SequenceIdParameter = "sequence_id";

    private static async Task WaitBeforeRetryAsync(ModelRoute route, Exception failure, int attempt, TimeSpan remaining, CancellationToken cancellationToken)
    {
        if (failure is InferenceException && route.Grain is { } grain)
        {
            // Loading: the replica says when it has settled.
            try
            {
                await grain.WaitUntilSettledAsync(remaining).WaitAsync(remaining, cancellationToken);
                return;
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                // Fall back to a pause; the next attempt says what is wrong.
            }
        }

        // The silo is unreachable: until membership declares it dead, calls still go there; back off a little each time.
        var pause = TimeSpan.FromMilliseconds(Math.Min(1000, 50 << Math.Min(attempt, 5)));
        await Task.Delay(pause < remaining ? pause : remaining, cancellationToken);
    }

    /// <summary>The route the current table gives for <paramref name="route"/>'s model and version (itself when unchanged).</summary>
    private ModelRoute Current(ModelRoute route)
    {
        try
        {
            return Successor(route);
        }
        catch (InferenceException)
        {
            return route;
        }
    }

    /// <summary>
    /// The route that serves in place of <paramref name="stale"/>, whose replica has retired: from the current table,
    /// or from the next one when the current table still names the retired replica. 404 when the model is gone.
    /// </summary>
    private async ValueTask<ModelRoute> SuccessorAsync(ModelRoute stale, CancellationToken cancellationToken)
    {
        var deadline = DateTime.UtcNow + RerouteWait;
        while (true)
        {
            // Read before the snapshot: a table installed in between completes this signal.
            var updated = _updated.Task;
            var fresh = Successor(stale);
            if (fresh.RevisionKey != stale.RevisionKey)
            {
                return fresh;
            }

            var remaining = deadline - DateTime.UtcNow;
            if (remaining <= TimeSpan.Zero)
            {
                throw InferenceException.Unavailable(
                    $"model '{stale.Name}' revision {stale.Entry.Revision} is retired and no newer revision has reached this gateway in {RerouteWait.TotalSeconds:0} s");
            }

            try
            {
                await updated.WaitAsync(remaining, cancellationToken);
            }
            catch (TimeoutException)
            {
                // Checked once more above, then refused.
            }
        }
    }

    private ModelRoute Successor(ModelRoute stale)
    {
        if (!_snapshot.ByQualified.TryGetValue(Qualified(stale.Namespace, stale.Name), out var versions))
        {
            throw InferenceException.ModelNotFound(stale.Name);
        }

        foreach (var route in versions)
        {
            if (route.Version == stale.Version)
            {
                return route;
            }
        }

        // A model served in one version answers in whatever version replaced it; an explicit version must still exist.
        return stale.Entry.AllVersions.Length <= 1 && versions.Length == 1
            ? versions[0]
            : throw new InferenceException(InferenceErrorKind.NotFound,
                $"model '{stale.Name}' no longer serves version '{stale.Version}'; it serves version {string.Join(", ", versions.Select(v => v.Version))}");
    }

    /// <summary>The route's metadata, cached after the first answer.</summary>
    public async ValueTask<ModelMetadata> GetMetadataAsync(ModelRoute route)
    {
        for (var attempt = 1; ; attempt++)
        {
            if (route.Metadata is { } cached)
            {
                return cached;
            }

            try
            {
                var metadata = TryLocal(route, out var local) ? local.GetMetadata() : await Servable(route).GetMetadataAsync();
                route.Metadata = metadata;
                return metadata;
            }
            catch (InferenceException e) when (e.Kind == InferenceErrorKind.Retired && attempt < MaxReroutes)
            {
                route = await SuccessorAsync(route, default);
            }
        }
    }

    /// <summary>The route's configuration.</summary>
    public async ValueTask<ModelConfiguration> GetConfigurationAsync(ModelRoute route)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return TryLocal(route, out var local) ? local.GetConfiguration() : await Servable(route).GetConfigurationAsync();
            }
            catch (InferenceException e) when (e.Kind == InferenceErrorKind.Retired && attempt < MaxReroutes)
            {
                route = await SuccessorAsync(route, default);
            }
        }
    }

    /// <summary>The route's statistics.</summary>
    public async ValueTask<ModelStatistics> GetStatisticsAsync(ModelRoute route)
    {
        if (localDirectory is not null && route.GrainKey is not null && localDirectory.TryGet(route.GrainKey, out var local))
        {
            return local.GetStatistics();
        }

        return await Servable(route).GetStatisticsAsync();
    }

    /// <summary>
    /// The replica's status; a model that cannot be served reports FailedToLoad with its reason, and a retired replica
    /// reports the status of the revision that serves in its place.
    /// </summary>
    public async ValueTask<ModelStatus> GetStatusAsync(ModelRoute route)
    {
        for (var attempt = 1; ; attempt++)
        {
            if (route.Grain is null)
            {
                return new ModelStatus(ModelState.FailedToLoad, $"{route.Entry.FailureReason}: {route.Entry.FailureMessage}");
            }

            if (route.Entry.Unloaded)
            {
                return new ModelStatus(ModelState.Unloaded, "unloaded through the repository extension");
            }

            var status = localDirectory is not null && localDirectory.TryGet(route.GrainKey!, out var local)
                ? local.Status
                : await route.Grain.GetStatusAsync();
            if (status.State != ModelState.Retired || attempt == MaxReroutes)
            {
                return status;
            }

            route = await SuccessorAsync(route, default);
        }
    }

    private bool TryLocal(ModelRoute route, out ILocalModelEndpoint endpoint)
    {
        if (options.LocalFastPath && localDirectory is not null && route.GrainKey is not null && !route.Entry.Unloaded
            && localDirectory.TryGet(route.GrainKey, out var found) && found.IsLoaded)
        {
            endpoint = found;
            return true;
        }

        endpoint = null!;
        return false;
    }

    private static IModelGrain Servable(ModelRoute route)
    {
        if (route.Grain is null)
        {
            throw InferenceException.Unavailable($"model '{route.Name}' cannot be served: {route.Entry.FailureReason}: {route.Entry.FailureMessage}");
        }

        if (route.Entry.Unloaded)
        {
            throw InferenceException.Unavailable($"model '{route.Name}' is unloaded; load it through the repository extension");
        }

        return route.Grain;
    }

    private sealed record Snapshot(
        long Version,
        FrozenDictionary<string, ModelRoute[]> ByQualified,
        FrozenDictionary<string, ModelRoute[][]> ByName,
        FrozenDictionary<string, (string Namespace, string Name)> Hosts,
        IReadOnlyList<ModelRoute> Ordered)
    {
        public static Snapshot Empty { get; } = new(
            -1, FrozenDictionary<string, ModelRoute[]>.Empty, FrozenDictionary<string, ModelRoute[][]>.Empty,
            FrozenDictionary<string, (string, string)>.Empty, []);
    }
}
