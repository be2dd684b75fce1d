using System.Collections.Concurrent;
using System.Collections.Immutable;
using Orleans.KServe.Contracts.Models;
using Orleans.KServe.Contracts.Tensors;
using Orleans.KServe.Grains.Runtime;

namespace Orleans.KServe.Grains.Tests;

/// <summary>
/// A fake runtime for model format "gated" whose loads and executions wait on gates the test opens, and which
/// counts executions in progress: it proves overlap and isolation without timing.
/// </summary>
public sealed class GatedRuntimeFactory : IModelRuntimeFactory
{
    public const string Format = "gated";

    /// <summary>The storage scheme of gated models: nothing to fetch (see <see cref="GatedStorageProvider"/>).</summary>
    public const string Scheme = "gated";

    private static readonly ConcurrentDictionary<string, GatedModel> Models = new();

    /// <summary>The controls of the gated model named <paramref name="name"/> (shared by the test and the silo).</summary>
    public static GatedModel For(string name) => Models.GetOrAdd(name, n => new GatedModel(n));

    public IReadOnlyList<string> RuntimeNames { get; } = ["test-gated"];

    public bool SupportsFormat(string format) => format == Format;

    public IModelRuntime Load(ModelSpec spec, string artifactPath, CancellationToken cancellationToken)
    {
        var model = For(spec.Name);
        model.LoadGate.Wait(cancellationToken);
        if (model.LoadFailure is { } failure)
        {
            throw new ModelLoadException(failure);
        }

        return new GatedRuntime(model);
    }

    private sealed class GatedRuntime(GatedModel model) : IModelRuntime
    {
        public string Platform => "test_gated";

        public ImmutableArray<TensorMetadata> Inputs { get; } = [new("input", TensorDataType.FP32, [-1])];

        public ImmutableArray<TensorMetadata> Outputs { get; } = [new("output", TensorDataType.FP32, [-1])];

        public RuntimeResult Execute(ImmutableArray<Tensor> inputs, ImmutableArray<string> outputNames)
        {
            model.Enter();
            try
            {
                if (!model.RunGate.Wait(TimeSpan.FromSeconds(30)))
                {
                    throw new ModelExecutionException("gate never opened");
                }

                if (model.ExecutionFailure is { } failure)
                {
                    throw new ModelExecutionException(failure);
                }

                // Copy: the input buffer belongs to the caller.
                return new RuntimeResult([new Tensor("output", TensorDataType.FP32, inputs[0].Shape, inputs[0].Data.ToArray())], 0, 0, 0);
            }
            finally
            {
                model.Exit();
            }
        }

        public void Dispose() => model.Dispose();
    }
}

/// <summary>Gates and counters of one gated model.</summary>
public sealed class GatedModel(string name)
{
    private int _running;
    private int _maxRunning;
    private int _started;

    public string Name { get; } = name;

    /// <summary>Loads wait here; open by default.</summary>
    public ManualResetEventSlim LoadGate { get; } = new(true);

    /// <summary>Executions wait here; closed by default.</summary>
    public ManualResetEventSlim RunGate { get; } = new(false);

    public string? LoadFailure { get; set; }

    public string? ExecutionFailure { get; set; }

    public int Running => Volatile.Read(ref _running);

    public int MaxRunning => Volatile.Read(ref _maxRunning);

    public int Started => Volatile.Read(ref _started);

    private int _disposed;

    /// <summary>How often a loaded runtime of this model was freed.</summary>
    public int Disposed => Volatile.Read(ref _disposed);

    internal void Dispose() => Interlocked.Increment(ref _disposed);

    internal void Enter()
    {
        Interlocked.Increment(ref _started);
        var running = Interlocked.Increment(ref _running);
        int max;
        while (running > (max = Volatile.Read(ref _maxRunning)) && Interlocked.CompareExchange(ref _maxRunning, running, max) != max)
        {
        }
    }

    internal void Exit() => Interlocked.Decrement(ref _running);
}

/// <summary>The storage of <c>gated://</c> models: there is no artifact, the gated runtime makes its model up.</summary>
public sealed class GatedStorageProvider : Storage.IStorageProvider
{
    public bool Reads(Uri storageUri) => storageUri.Scheme == GatedRuntimeFactory.Scheme;

    public ValueTask<string> ResolveAsync(ModelSpec spec, Uri storageUri, string artifactFolder, CancellationToken cancellationToken) =>
        new(storageUri.Host);
}
