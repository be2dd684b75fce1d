using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using Orleans.KServe.Grains.Execution;
using Orleans.KServe.Grains.Runtime;
using Orleans.KServe.Grains.Runtime.Onnx;
using Orleans.KServe.Grains.Telemetry;

namespace Orleans.KServe.Grains;

/// <summary>Registers model serving in a silo.</summary>
public static class GrainsHostingExtensions
{
    /// <summary>The grain storage the registry keeps its state in.</summary>
    public const string RegistryStorage = "kserve-registry";

    /// <summary>The configuration section of the model-serving settings.</summary>
    public const string Section = "KServe";

    /// <summary>
    /// Adds model grains, the registry, the executor, the runtimes (ONNX Runtime CPU) and metrics, with the settings
    /// of <paramref name="configuration"/>'s <c>KServe</c> section (<see cref="ModelServingOptions"/>, validated at
    /// start). The registry's state goes to in-memory storage unless a storage named <see cref="RegistryStorage"/> is configured.
    /// </summary>
    public static ISiloBuilder AddModelServing(this ISiloBuilder builder, IConfiguration configuration)
    {
        builder.Services.AddOptions<ModelServingOptions>().Bind(configuration.GetSection(Section)).ValidateOnStart();
        builder.Services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<ModelServingOptions>, ModelServingOptionsValidator>());
        builder.Services.AddOptions<InferenceExecutorOptions>().Configure<IOptions<ModelServingOptions>>((executor, serving) => executor.Threads = serving.Value.ExecutorThreads);
        return builder.AddModelServing();
    }

    /// <summary>Adds model serving with the executor configured by <paramref name="configureExecutor"/> (tests, embedding hosts).</summary>
    public static ISiloBuilder AddModelServing(this ISiloBuilder builder, Action<InferenceExecutorOptions>? configureExecutor = null)
    {
        // A host that keeps the registry in a shared store (Redis, ADO.NET) registers that storage first.
        if (!builder.Services.Any(d => d.IsKeyedService && d.ServiceType == typeof(Orleans.Storage.IGrainStorage) && Equals(d.ServiceKey, RegistryStorage)))
        {
            builder.AddMemoryGrainStorage(RegistryStorage);
        }

        builder.Services.AddModelServing(configureExecutor);
        return builder;
    }

    /// <summary>The services behind <see cref="AddModelServing(ISiloBuilder, Action{InferenceExecutorOptions}?)"/>.</summary>
    public static IServiceCollection AddModelServing(this IServiceCollection services, Action<InferenceExecutorOptions>? configureExecutor = null)
    {
        var options = services.AddOptions<InferenceExecutorOptions>();
        if (configureExecutor is not null)
        {
            options.Configure(configureExecutor);
        }

        services.AddMetrics();
        services.AddPlacementDirector<Placement.ReplicaSpreadPlacement, Placement.ReplicaSpreadPlacementDirector>();
        services.TryAddSingleton<InferenceExecutor>();
        services.TryAddSingleton<InferenceMetrics>();
        services.TryAddSingleton<LocalModelDirectory>();
        services.TryAddSingleton<Contracts.Serving.ILocalModelDirectory>(sp => sp.GetRequiredService<LocalModelDirectory>());
        services.TryAddSingleton<ModelRuntimeCatalog>();
        services.AddOptions<Storage.ArtifactStorageOptions>();
        services.TryAddSingleton<Storage.ArtifactStorage>();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<Storage.IStorageProvider, Storage.FileStorageProvider>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IModelRuntimeFactory, OnnxRuntimeFactory>());
        return services;
    }
}
