using System.Collections.Immutable;
using Orleans.KServe.Contracts.Tensors;

namespace Orleans.KServe.Contracts.Inference;

/// <summary>An output the caller asked for by name, with its parameters.</summary>
[GenerateSerializer, Immutable]
[Alias("Orleans.KServe.Contracts.RequestedOutput")]
public sealed record RequestedOutput(
    [property: Id(0)] string Name,
    [property: Id(1)] ImmutableDictionary<string, InferParameter>? Parameters = null);

/// <summary>
/// One inference request as every transport (v1, v2 REST JSON or binary, gRPC) decodes it. Immutable; the
/// input tensors' buffers stay owned by the caller (see <see cref="Tensor"/>).
/// </summary>
[GenerateSerializer, Immutable]
[Alias("Orleans.KServe.Contracts.InferenceRequest")]
public sealed record InferenceRequest(
    [property: Id(0)] string Id,
    [property: Id(1)] ImmutableArray<Tensor> Inputs,
    [property: Id(2)] ImmutableArray<RequestedOutput> Outputs,
    [property: Id(3)] ImmutableDictionary<string, InferParameter>? Parameters = null)
{
    /// <summary>True when the caller named no outputs: every output is returned.</summary>
    public bool AllOutputs => Outputs.IsDefaultOrEmpty;
}

/// <summary>The answer to an <see cref="InferenceRequest"/>.</summary>
[GenerateSerializer, Immutable]
[Alias("Orleans.KServe.Contracts.InferenceResponse")]
public sealed record InferenceResponse(
    [property: Id(0)] string ModelName,
    [property: Id(1)] string? ModelVersion,
    [property: Id(2)] string Id,
    [property: Id(3)] ImmutableArray<Tensor> Outputs,
    [property: Id(4)] ImmutableDictionary<string, InferParameter>? Parameters = null);
