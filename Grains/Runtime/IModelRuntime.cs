using System.Collections.Immutable;
using Orleans.KServe.Contracts.Models;
using Orleans.KServe.Contracts.Tensors;

namespace Orleans.KServe.Grains.Runtime;

/// <summary>
/// A loaded model in one runtime (ONNX Runtime, …). Thread-safe: many executions may run at once. Execution is
/// synchronous and CPU-bound; callers run it on the bounded <see cref="Execution.InferenceExecutor"/>, never on an
/// Orleans scheduler turn that would block other grains.
/// </summary>
public interface IModelRuntime : IDisposable
{
    /// <summary>The platform name reported in metadata, e.g. <c>onnxruntime_onnx</c>.</summary>
    string Platform { get; }

    /// <summary>Declared inputs, in the model's order; -1 marks a variable dimension.</summary>
    ImmutableArray<TensorMetadata> Inputs { get; }

    /// <summary>Declared outputs, in the model's order.</summary>
    ImmutableArray<TensorMetadata> Outputs { get; }

    /// <summary>
    /// True when the runtime reads BYTES inputs as UTF-8 text (ONNX's string tensors): elements that are not UTF-8
    /// are then refused with 400 before the runtime sees them. False (raw bytes) unless a runtime says so.
    /// </summary>
    bool BytesAreText => false;

    /// <summary>
    /// Runs the model. <paramref name="inputs"/> were validated against <see cref="Inputs"/>; the runtime reads
    /// their buffers only during this call. Returns the outputs named in <paramref name="outputNames"/>, in that
    /// order, in buffers the caller owns from then on, with the time each phase took.
    /// </summary>
    RuntimeResult Execute(ImmutableArray<Tensor> inputs, ImmutableArray<string> outputNames);
}

/// <summary>
/// What one execution produced and how long its phases took, in <see cref="System.Diagnostics.Stopwatch"/> ticks:
/// preparing the inputs, running the model, reading the outputs (Triton's compute input / infer / output).
/// </summary>
public readonly record struct RuntimeResult(ImmutableArray<Tensor> Outputs, long InputTicks, long InferTicks, long OutputTicks);

/// <summary>Loads artifacts of the model formats one runtime supports.</summary>
public interface IModelRuntimeFactory
{
    /// <summary>The runtime's name as ServingRuntime resources spell it (e.g. <c>kserve-onnxruntime</c>).</summary>
    IReadOnlyList<string> RuntimeNames { get; }

    /// <summary>True when this factory loads <paramref name="format"/> (lower-case model format name).</summary>
    bool SupportsFormat(string format);

    /// <summary>
    /// Loads the artifact at <paramref name="artifactPath"/> (the local file the silo's storage resolved
    /// <paramref name="spec"/>'s URI to); throws <see cref="ModelLoadException"/> with a clear reason when it cannot.
    /// </summary>
    IModelRuntime Load(ModelSpec spec, string artifactPath, CancellationToken cancellationToken);
}

/// <summary>A model that cannot be loaded; the message is shown as the model's failure reason.</summary>
public sealed class ModelLoadException(string message, Exception? inner = null, string reason = FailureReasons.ModelLoadFailed) : Exception(message, inner)
{
    /// <summary>Why, as one of <see cref="FailureReasons"/>.</summary>
    public string Reason { get; } = reason;
}

/// <summary>The runtime failed while executing a model (bad values, an operator error): 500 with the runtime's message.</summary>
public sealed class ModelExecutionException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>Every registered runtime factory, found by runtime name or format.</summary>
public sealed class ModelRuntimeCatalog(IEnumerable<IModelRuntimeFactory> factories)
{
    private readonly IModelRuntimeFactory[] _factories = factories.ToArray();

    /// <summary>The factory for <paramref name="spec"/>: by runtime name first, then by format.</summary>
    public IModelRuntimeFactory Resolve(ModelSpec spec)
    {
        foreach (var factory in _factories)
        {
            if (factory.RuntimeNames.Contains(spec.Runtime, StringComparer.OrdinalIgnoreCase) && factory.SupportsFormat(spec.Format))
            {
                return factory;
            }
        }

        foreach (var factory in _factories)
        {
            if (factory.SupportsFormat(spec.Format))
            {
                return factory;
            }
        }

        throw new ModelLoadException($"no runtime on this silo loads model format '{spec.Format}' (runtime '{spec.Runtime}')", reason: FailureReasons.NoSupportingRuntime);
    }
}
