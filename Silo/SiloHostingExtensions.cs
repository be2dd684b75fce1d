using System.Net;
using System.Net.Sockets;
using ClusterOptions = Orleans.Configuration.ClusterOptions;
using Orleans.KServe.Gateway;
using Orleans.KServe.Grains;
using Orleans.Runtime.MembershipService.SiloMetadata;
using StackExchange.Redis;

namespace Orleans.KServe.Silo;

/// <summary>Makes a web application an Orleans silo that serves models, joined to a cluster by its settings.</summary>
public static class SiloHostingExtensions
{
    /// <summary>
    /// Hosts the silo: its settings (<see cref="SiloOptions"/>, from the <c>KServe</c> section, validated at start),
    /// the clustering they name, model serving, and a shutdown that leaves room for the gateway's drain.
    /// </summary>
    public static WebApplicationBuilder UseModelServingSilo(this WebApplicationBuilder builder)
    {
        var (silo, gateway) = AddProcessSettings(builder);
        builder.UseOrleans(orleans =>
        {
            orleans.UseClustering(silo);
            orleans.Configure<Orleans.Configuration.SiloMessagingOptions>(m => m.ResponseTimeout = gateway.GrainResponseTimeout);
            orleans.UseSiloMetadata(new Dictionary<string, string> { [ClusterEndpoints.RoleKey] = ServerRoles.Parse(silo.Role).SiloRoleName });
            orleans.AddModelServing(builder.Configuration);
        });
        return builder;
    }

    /// <summary>
    /// The settings a silo and a front-end-only process both take: <see cref="SiloOptions"/> bound and validated at
    /// start, and a host stop long enough for the gateway's drain and the requests in flight after it.
    /// </summary>
    private static (SiloOptions Silo, GatewayOptions Gateway) AddProcessSettings(WebApplicationBuilder builder)
    {
        var section = builder.Configuration.GetSection(ServerSettings.Section);
        builder.Services.AddOptions<SiloOptions>().Bind(section).ValidateOnStart();
        builder.Services.AddSingleton<Microsoft.Extensions.Options.IValidateOptions<SiloOptions>, SiloOptionsValidator>();
        var silo = section.Get<SiloOptions>() ?? new SiloOptions();
        var gateway = section.Get<GatewayOptions>() ?? new GatewayOptions();

        // The drain runs inside the host's stop, before the listeners close: the stop may take both.
        builder.Services.Configure<HostOptions>(h => h.ShutdownTimeout = gateway.DrainDelay + TimeSpan.FromSeconds(silo.ShutdownTimeoutSeconds));
        return (silo, gateway);
    }

    /// <summary>Joins the cluster the way <see cref="SiloOptions.Clustering"/> names, with the ids and address it resolves to.</summary>
    public static ISiloBuilder UseClustering(this ISiloBuilder builder, SiloOptions options)
    {
        var cluster = Resolve(options);
        int siloPort = Port(options.SiloPort), gatewayPort = Port(options.GatewayPort);
        switch (cluster.Provider)
        {
            case "localhost":
                builder.UseLocalhostClustering(siloPort, gatewayPort, serviceId: cluster.ServiceId, clusterId: cluster.ClusterId);
                return builder;
            case "redis":
                builder.UseRedisClustering(redis => redis.ConfigurationOptions = ConfigurationOptions.Parse(cluster.Connection!));

                // The registry's declarations, revisions and routing table live in the same store: it survives its silo.
                builder.AddRedisGrainStorage(GrainsHostingExtensions.RegistryStorage, redis => redis.ConfigurationOptions = ConfigurationOptions.Parse(cluster.Connection!));
                builder.Services.AddOptions<Orleans.Persistence.RedisStorageOptions>(GrainsHostingExtensions.RegistryStorage)
                    .Configure<Orleans.Serialization.Serializer>((o, serializer) => o.GrainStorageSerializer = new Orleans.Storage.OrleansGrainStorageSerializer(serializer));
                break;
            case "postgres":
                builder.UseAdoNetClustering(o =>
                {
                    o.Invariant = Clustering.PostgresSchema.Invariant;
                    o.ConnectionString = cluster.Connection!;
                });
                builder.AddAdoNetGrainStorage(GrainsHostingExtensions.RegistryStorage, o =>
                {
                    o.Invariant = Clustering.PostgresSchema.Invariant;
                    o.ConnectionString = cluster.Connection!;
                });
                builder.Services.AddOptions<Orleans.Configuration.AdoNetGrainStorageOptions>(GrainsHostingExtensions.RegistryStorage)
                    .Configure<Orleans.Serialization.Serializer>((o, serializer) => o.GrainStorageSerializer = new Orleans.Storage.OrleansGrainStorageSerializer(serializer));
                break;
            default:
                throw new InvalidOperationException($"clustering '{cluster.Provider}' is not available");
        }

        builder.Configure<Orleans.Configuration.ClusterMembershipOptions>(ClusterTiming.Configure);
        builder.Configure<ClusterOptions>(o =>
        {
            o.ClusterId = cluster.ClusterId;
            o.ServiceId = cluster.ServiceId;
        });
        if (cluster.SiloName is { } name)
        {
            builder.Configure<Orleans.Configuration.SiloOptions>(o => o.SiloName = name);
        }

        if (cluster.AdvertisedAddress is { } address)
        {
            builder.ConfigureEndpoints(address, siloPort, gatewayPort, listenOnAnyHostAddress: true);
        }
        else
        {
            builder.ConfigureEndpoints(siloPort, gatewayPort, listenOnAnyHostAddress: true);
        }

        return builder;
    }

    /// <summary>
    /// Makes a web application an Orleans client of the cluster its settings name (the <c>frontend</c> role): it hosts
    /// no models, finds the silos' gateways in the membership store and fails over between them.
    /// </summary>
    public static WebApplicationBuilder UseModelServingClient(this WebApplicationBuilder builder)
    {
        var (options, gateway) = AddProcessSettings(builder);
        var cluster = Resolve(options);
        builder.UseOrleansClient(client =>
        {
            switch (cluster.Provider)
            {
                case "localhost":
                    client.UseLocalhostClustering(options.GatewayPort == 0 ? 30000 : options.GatewayPort, cluster.ServiceId, cluster.ClusterId);
                    break;
                case "redis":
                    client.UseRedisClustering(redis => redis.ConfigurationOptions = ConfigurationOptions.Parse(cluster.Connection!));
                    break;
                case "postgres":
                    client.UseAdoNetClustering(o =>
                    {
                        o.Invariant = Clustering.PostgresSchema.Invariant;
                        o.ConnectionString = cluster.Connection!;
                    });
                    break;
                default:
                    throw new InvalidOperationException($"clustering '{cluster.Provider}' is not available");
            }

            client.Configure<ClusterOptions>(o =>
            {
                o.ClusterId = cluster.ClusterId;
                o.ServiceId = cluster.ServiceId;
            });
            client.Configure<Orleans.Configuration.ClientMessagingOptions>(m => m.ResponseTimeout = gateway.GrainResponseTimeout);

            // Silos come and go: the client keeps trying to reach one rather than failing its start or its calls.
            client.UseConnectionRetryFilter(async (_, cancellationToken) =>
            {
                await Task.Delay(TimeSpan.FromSeconds(1), cancellationToken);
                return !cancellationToken.IsCancellationRequested;
            });
        });
        return builder;
    }

    /// <summary>
    /// With <c>--clustering postgres --clustering-init true</c>, creates or updates the tables and queries before the
    /// silo or client starts (hosted services start in order: call this before UseOrleans or UseOrleansClient).
    /// </summary>
    public static void AddClusteringInit(this IServiceCollection services, IConfiguration configuration)
    {
        var options = configuration.GetSection(ServerSettings.Section).Get<SiloOptions>() ?? new SiloOptions();
        if (options.ClusteringInit && options.Clustering == "postgres")
        {
            services.AddHostedService(_ => new PostgresSchemaInit(Resolve(options).Connection!));
        }
    }

    private sealed class PostgresSchemaInit(string connection) : IHostedService
    {
        public Task StartAsync(CancellationToken cancellationToken) => Clustering.PostgresSchema.ApplyAsync(connection, cancellationToken);

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }

    private static ClusterSettings Resolve(SiloOptions options)
    {
        var failures = new List<string>();
        var cluster = ClusterSettings.Resolve(options, Environment.GetEnvironmentVariable, failures);
        return failures.Count > 0 ? throw new InvalidServerOptionsException(failures) : cluster;
    }

    // Port 0 is "any free port": Orleans' localhost clustering needs the number before it binds.
    private static int Port(int port)
    {
        if (port != 0)
        {
            return port;
        }

        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
