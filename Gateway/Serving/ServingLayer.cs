using Orleans.KServe.Contracts.Inference;
using Orleans.KServe.Contracts.Models;
using Orleans.KServe.Contracts.Serving;
using Orleans.KServe.Gateway.Codecs;
using Orleans.KServe.Gateway.Routing;

namespace Orleans.KServe.Gateway.Serving;

/// <summary>
/// What the server answers, whichever transport asks: readiness, the models and their metadata, configuration,
/// statistics and index, the repository extension, and the admission of inference calls with their buffers. REST
/// (<c>Endpoints/</c>) and gRPC (<c>Grpc/</c>) are thin adapters over it that only read their wire format in and
/// write it out.
/// </summary>
public sealed class ServingLayer(
    ModelRouter router,
    RequestAdmission admission,
    RequestBytesBudget budget,
    GatewayDrain drain,
    IModelRepositoryControl? repository = null)
{
    /// <summary>The router the layer answers from.</summary>
    public ModelRouter Router => router;

    /// <summary>Inference requests in progress.</summary>
    public int InFlight => admission.InFlight;

    /// <summary>
    /// True when the routing table has arrived and every declared model has settled (loaded, or failed with a
    /// reason), and not once the server has begun to stop (it drains).
    /// </summary>
    public async Task<bool> IsReadyAsync()
    {
        if (router.Version < 0 || drain.Draining)
        {
            return false;
        }

        foreach (var route in router.Routes)
        {
            var status = await router.GetStatusAsync(route);
            if (status.State is not (ModelState.Loaded or ModelState.FailedToLoad))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>The names of the models that can be served (not those declared but unservable).</summary>
    public IReadOnlyList<string> ModelNames() => router.Routes.Where(r => r.Grain is not null).Select(r => r.Name).Distinct().ToList();

    /// <summary>
    /// The route of a model and version (404 when not served): in the namespace a path prefix named
    /// (<paramref name="pathNamespace"/>), else the one the request's Host names, else by its bare name (400 when
    /// several namespaces declare it).
    /// </summary>
    public ModelRoute Route(string model, string? version, string? host = null, string? pathNamespace = null) =>
        router.Get(model, string.IsNullOrEmpty(version) ? null : version, pathNamespace ?? router.NamespaceFromHost(host, model));

    /// <summary>The route's replica status.</summary>
    public ValueTask<ModelStatus> StatusAsync(ModelRoute route) => router.GetStatusAsync(route);

    /// <summary>The route's metadata (503 until loaded).</summary>
    public ValueTask<ModelMetadata> MetadataAsync(ModelRoute route) => router.GetMetadataAsync(route);

    /// <summary>The route's configuration view.</summary>
    public async Task<ModelConfigView> ConfigAsync(ModelRoute route) =>
        ServingViews.Config(await router.GetConfigurationAsync(route), route.Entry.VersionPolicy);

    /// <summary>Statistics of every model that serves: declared, servable and not unloaded.</summary>
    public Task<IReadOnlyList<ModelStatistics>> StatisticsAsync() =>
        StatisticsAsync(router.Routes.Where(r => r.Grain is not null && !r.Entry.Unloaded).ToList());

    /// <summary>Statistics of one model version.</summary>
    public Task<IReadOnlyList<ModelStatistics>> StatisticsAsync(ModelRoute route) => StatisticsAsync([route]);

    private async Task<IReadOnlyList<ModelStatistics>> StatisticsAsync(IReadOnlyList<ModelRoute> routes)
    {
        var stats = new List<ModelStatistics>(routes.Count);
        foreach (var route in routes)
        {
            stats.Add(await router.GetStatisticsAsync(route));
        }

        return stats;
    }

    /// <summary>Every declared model version with its state and reason (Triton's repository index).</summary>
    public async Task<IReadOnlyList<IndexEntry>> IndexAsync()
    {
        var result = new List<IndexEntry>();
        foreach (var route in router.Routes)
        {
            ModelStatus status;
            try
            {
                status = await router.GetStatusAsync(route);
            }
            catch (Exception e)
            {
                status = new ModelStatus(ModelState.FailedToLoad, FailureTable.Classify(e).Message);
            }

            result.Add(ServingViews.Index(route.Name, route.Version, status));
        }

        return result;
    }

    /// <summary>Reads the repository again for <paramref name="model"/> and serves it (501 without a repository).</summary>
    public Task LoadAsync(string model, CancellationToken cancellationToken) => Repository.LoadAsync(model, cancellationToken);

    /// <summary>Stops serving <paramref name="model"/> (501 without a repository).</summary>
    public Task UnloadAsync(string model, CancellationToken cancellationToken) => Repository.UnloadAsync(model, cancellationToken);

    private IModelRepositoryControl Repository =>
        repository ?? throw new InferenceException(InferenceErrorKind.NotImplemented, "this gateway has no model repository to load from");

    /// <summary>
    /// Admits one inference call (503 past the in-flight limit) with the pooled buffers it decodes into, whose bytes
    /// count against the request budget. Dispose it when the call is over.
    /// </summary>
    public InferenceCall BeginInference() => new(admission.Enter(), new PooledBuffers(budget));

    /// <summary>Runs an inference on the route's replica (or its successor when the replica has retired).</summary>
    public ValueTask<InferenceResponse> InferAsync(ModelRoute route, InferenceRequest request, CancellationToken cancellationToken) =>
        router.InferAsync(route, request, cancellationToken);
}

/// <summary>
/// One admitted inference call and the buffers its request was decoded into. Buffer ownership in one place: the
/// buffers go back to the pool when the call is over, unless it failed in a way that leaves the model maybe still
/// reading them (a timeout, a cancellation, a failure that is not the model's own answer once the model was
/// called): then the garbage collector has them.
/// </summary>
public sealed class InferenceCall(RequestAdmission.Ticket ticket, PooledBuffers buffers) : IDisposable
{
    private bool _modelCalled;
    private bool _abandon;

    /// <summary>The pooled buffers of this call's request.</summary>
    public PooledBuffers Buffers { get; } = buffers;

    /// <summary>Says the request has been handed to the model: from now on a failure may leave it reading the buffers.</summary>
    public void ModelCalled() => _modelCalled = true;

    /// <summary>Records how the call failed, which decides what becomes of its buffers.</summary>
    public void Failed(Exception e) =>
        _abandon = e is TimeoutException or OperationCanceledException || (_modelCalled && e is not InferenceException);

    /// <inheritdoc />
    public void Dispose()
    {
        if (_abandon)
        {
            Buffers.Abandon();
        }
        else
        {
            Buffers.Dispose();
        }

        ticket.Dispose();
    }
}
