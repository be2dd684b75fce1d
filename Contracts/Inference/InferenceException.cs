namespace Orleans.KServe.Contracts.Inference;

/// <summary>What kind of failure an inference call met; each maps to one HTTP status and one gRPC status (the gateway's failure table).</summary>
public enum InferenceErrorKind : byte
{
    /// <summary>The request is malformed or does not fit the model: 400 / INVALID_ARGUMENT.</summary>
    InvalidInput = 1,
    /// <summary>No such model or version: 404 / NOT_FOUND.</summary>
    NotFound = 2,
    /// <summary>The model or server is not ready, or overloaded: 503 / UNAVAILABLE.</summary>
    Unavailable = 3,
    /// <summary>The model ran and failed: 500 / INTERNAL.</summary>
    Internal = 4,
    /// <summary>The operation exists in the protocol but is not provided: 501 / UNIMPLEMENTED.</summary>
    NotImplemented = 5,
    /// <summary>A queue is full: 503 / RESOURCE_EXHAUSTED.</summary>
    ResourceExhausted = 6,
    /// <summary>The request body is larger than the configured limit: 413 / RESOURCE_EXHAUSTED.</summary>
    PayloadTooLarge = 7,
    /// <summary>
    /// The replica called is retired: a newer revision replaced it, or it is no longer declared. The gateway routes
    /// the call again from its current table; only a call that cannot be routed anywhere reaches the caller, as 503 / UNAVAILABLE.
    /// </summary>
    Retired = 8,
}

/// <summary>An inference failure a caller can act on; the message names what is wrong.</summary>
[GenerateSerializer]
[Alias("Orleans.KServe.Contracts.InferenceException")]
public sealed class InferenceException : Exception
{
    /// <summary>Creates the exception.</summary>
    public InferenceException(InferenceErrorKind kind, string message, Exception? inner = null)
        : base(message, inner)
    {
        Kind = kind;
    }

    /// <summary>The failure kind.</summary>
    [Id(0)] public InferenceErrorKind Kind { get; }

    /// <summary>Invalid input (400).</summary>
    public static InferenceException Invalid(string message) => new(InferenceErrorKind.InvalidInput, message);

    /// <summary>Unknown model (404).</summary>
    public static InferenceException ModelNotFound(string model) =>
        new(InferenceErrorKind.NotFound, $"model '{model}' not found");

    /// <summary>Not ready (503).</summary>
    public static InferenceException Unavailable(string message) => new(InferenceErrorKind.Unavailable, message);
}
