using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using Orleans.KServe.Contracts.Serving;
using Orleans.KServe.Operator.Rollout;
using Orleans.KServe.Operator.Sources;

namespace Orleans.KServe.Operator.Hosting;

/// <summary>Registers the operator's sources of declarations.</summary>
public static class OperatorHostingExtensions
{
    /// <summary>The configuration section of the operator's settings.</summary>
    public const string Section = "KServe";

    /// <summary>
    /// Serves a local folder of KServe YAML (<see cref="ModelRepositoryOptions"/>, from <paramref name="configuration"/>'s
    /// <c>KServe</c> section, validated at start): declared at start, loaded and unloaded through the repository
    /// extension, every swap through <see cref="RevisionRollout"/>.
    /// </summary>
    public static IServiceCollection AddModelRepository(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<ModelRepositoryOptions>().Bind(configuration.GetSection(Section)).ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<ModelRepositoryOptions>, ModelRepositoryOptionsValidator>());
        services.TryAddSingleton(sp => new LocalFolderSource(sp.GetRequiredService<IOptions<ModelRepositoryOptions>>().Value.EffectiveModelRepository!));
        services.TryAddSingleton<RevisionRollout>();
        services.TryAddSingleton<LocalRepositoryService>();
        services.TryAddSingleton<IModelRepositoryControl>(sp => sp.GetRequiredService<LocalRepositoryService>());
        services.AddHostedService(sp => sp.GetRequiredService<LocalRepositoryService>());
        return services;
    }
}
