namespace Orleans.KServe.Contracts.Serving;

/// <summary>
/// The repository extension's load and unload, implemented by whatever feeds the registry (the local folder of
/// YAML in the single process).
/// </summary>
public interface IModelRepositoryControl
{
    /// <summary>
    /// Reads the repository again for <paramref name="model"/> and serves what it declares now (a new revision
    /// that loads the artifact afresh). Throws 404 when the repository does not declare it.
    /// </summary>
    Task LoadAsync(string model, CancellationToken cancellationToken);

    /// <summary>Stops serving <paramref name="model"/> and frees its runtime; it stays listed as unloaded. 404 when unknown.</summary>
    Task UnloadAsync(string model, CancellationToken cancellationToken);
}
