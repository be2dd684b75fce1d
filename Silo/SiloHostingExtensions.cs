using System.Net;
using System.Net.Sockets;
using Orleans.KServe.Gateway;
using Orleans.KServe.Grains;

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
        var section = builder.Configuration.GetSection(ServerSettings.Section);
        builder.Services.AddOptions<SiloOptions>().Bind(section).ValidateOnStart();
        builder.Services.AddSingleton<Microsoft.Extensions.Options.IValidateOptions<SiloOptions>, SiloOptionsValidator>();
        var silo = section.Get<SiloOptions>() ?? new SiloOptions();
        var drain = section.Get<GatewayOptions>()?.DrainDelay ?? new GatewayOptions().DrainDelay;

        // The drain runs inside the host's stop, before the listeners close: the stop may take both.
        builder.Services.Configure<HostOptions>(h => h.ShutdownTimeout = drain + TimeSpan.FromSeconds(silo.ShutdownTimeoutSeconds));
        builder.UseOrleans(orleans =>
        {
            orleans.UseClustering(silo);
            orleans.AddModelServing(builder.Configuration);
        });
        return builder;
    }

    /// <summary>Joins the cluster the way <see cref="SiloOptions.Clustering"/> names.</summary>
    public static ISiloBuilder UseClustering(this ISiloBuilder builder, SiloOptions options) => options.Clustering switch
    {
        "localhost" => builder.UseLocalhostClustering(Port(options.SiloPort), Port(options.GatewayPort)),
        _ => throw new InvalidOperationException($"clustering '{options.Clustering}' is not available"),
    };

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
