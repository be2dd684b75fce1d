using System.Collections.Immutable;
using Microsoft.Extensions.DependencyInjection;
using Orleans.KServe.Contracts.Grains;
using Orleans.KServe.Contracts.Models;
using Orleans.KServe.Grains.Runtime;
using Orleans.KServe.ModelTools;
using Orleans.TestingHost;

namespace Orleans.KServe.Grains.Tests;

/// <summary>One in-process Orleans cluster with model serving, a gated fake runtime and real ONNX test models.</summary>
public sealed class ClusterFixture : IAsyncLifetime
{
    /// <summary>Executor threads in the test silo: two blocked executions leave one free.</summary>
    public const int ExecutorThreads = 3;

    private InProcessTestCluster? _cluster;

    public string ModelsFolder { get; } = Directory.CreateTempSubdirectory("kserve-grain-tests-").FullName;

    public IClusterClient Client => _cluster!.Client;

    public InProcessTestCluster Cluster => _cluster!;

    public async Task InitializeAsync()
    {
        DoubleModel.Build().Save(Path.Combine(ModelsFolder, "double", "model.onnx"));
        TestModels.Generate(ModelsFolder);

        var builder = new InProcessTestClusterBuilder(1);
        builder.ConfigureSilo((_, silo) =>
        {
            silo.AddModelServing(executor => executor.Threads = ExecutorThreads);
            silo.Services.AddSingleton<IModelRuntimeFactory, GatedRuntimeFactory>();
            silo.Services.AddSingleton<Storage.IStorageProvider, GatedStorageProvider>();
            silo.Services.AddSingleton<Storage.IStorageProvider, CopyingStorageProvider>();
        });
        _cluster = builder.Build();
        await _cluster.DeployAsync();
    }

    public async Task DisposeAsync()
    {
        if (_cluster is not null)
        {
            await _cluster.DisposeAsync();
        }

        Directory.Delete(ModelsFolder, recursive: true);
    }

    /// <summary>Declares services under a source of the test's own, so tests do not replace each other's declarations.</summary>
    public Task<RoutingTable> DeclareAsync(string source, params ServiceEntry[] services) =>
        Client.GetGrain<IModelRegistryGrain>(IModelRegistryGrain.ClusterKey).ApplyAsync(source, services.ToImmutableArray()).AsTask();

    /// <summary>An ONNX model entry for a file under the generated models folder.</summary>
    public ServiceEntry Onnx(string name, string folder) =>
        new("tests", name, new ModelSpec(name, "onnx", "kserve-onnxruntime", new Uri(Path.Combine(ModelsFolder, folder, "model.onnx")).AbsoluteUri, ModelRuntimeSettings.Default));

    /// <summary>A gated fake model entry.</summary>
    public static ServiceEntry Gated(string name) =>
        new("tests", name, new ModelSpec(name, GatedRuntimeFactory.Format, "test-gated", GatedRuntimeFactory.Scheme + "://" + name, ModelRuntimeSettings.Default));

    /// <summary>The replica grain of a declared entry.</summary>
    public IModelGrain Grain(RoutingTable table, string name) =>
        Client.GetGrain<IModelGrain>(table.Services.Single(s => s.Name == name && s.Namespace == "tests").ReplicaKey(0).ToString());

    /// <summary>Waits for a replica to reach <paramref name="state"/>.</summary>
    public static Task<ModelStatus> WaitForStateAsync(IModelGrain grain, ModelState state, string what) =>
        Wait.ForAsync(async () => await grain.GetStatusAsync(), status => status.State == state, $"{what} to reach {state}",
            describe: status => $"{status.State} ({status.Reason})");

    /// <summary>Waits until <paramref name="condition"/> holds.</summary>
    public static Task WaitUntilAsync(Func<bool> condition, string what) => Wait.UntilAsync(condition, what);
}

[CollectionDefinition(Name)]
public sealed class ClusterCollection : ICollectionFixture<ClusterFixture>
{
    public const string Name = "cluster";
}
