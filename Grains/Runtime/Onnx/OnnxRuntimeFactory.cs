using Microsoft.Extensions.Options;
using Orleans.KServe.Contracts.Models;
using Orleans.KServe.Grains.Execution;

namespace Orleans.KServe.Grains.Runtime.Onnx;

/// <summary>Loads <c>onnx</c> models into ONNX Runtime (CPU).</summary>
public sealed class OnnxRuntimeFactory(IOptions<InferenceExecutorOptions> executorOptions) : IModelRuntimeFactory
{
    /// <inheritdoc />
    public IReadOnlyList<string> RuntimeNames { get; } = ["kserve-onnxruntime", "kserve-tritonserver", "onnxruntime"];

    /// <inheritdoc />
    public bool SupportsFormat(string format) => string.Equals(format, "onnx", StringComparison.OrdinalIgnoreCase);

    /// <inheritdoc />
    public IModelRuntime Load(ModelSpec spec, string artifactPath, CancellationToken cancellationToken)
    {
        if (!File.Exists(artifactPath))
        {
            throw new ModelLoadException($"model file '{artifactPath}' does not exist", reason: FailureReasons.ModelArtifactNotFound);
        }

        cancellationToken.ThrowIfCancellationRequested();
        return OnnxModelRuntime.Open(artifactPath, IntraOpThreads(spec.Settings, executorOptions.Value));
    }

    /// <summary>
    /// Threads per execution: the model's own setting, else the cores shared out among the executor's threads, so
    /// that concurrent executions × threads fit the machine.
    /// </summary>
    public static int IntraOpThreads(ModelRuntimeSettings settings, InferenceExecutorOptions executor) =>
        settings.IntraOpThreads > 0
            ? settings.IntraOpThreads
            : Math.Max(1, Environment.ProcessorCount / Math.Max(1, Math.Min(executor.EffectiveThreads, settings.Batching?.InstanceCount > 0 ? settings.Batching.InstanceCount : int.MaxValue)));
}
