using System.Globalization;
using System.Text.Json;
using Orleans.Runtime;

namespace Orleans.KServe.Silo;

/// <summary>
/// <c>GET /cluster</c>: the answering process (<c>self</c>: its silo's address, or <c>frontend</c> for a front end
/// that hosts no silo), the silos of the cluster (name, address, host, role, labels, status, since when, last
/// heartbeat) from Orleans' membership, where every model replica is active, and the silo of the model registry.
/// </summary>
public static class ClusterEndpoints
{
    /// <summary>The silo metadata key that carries a silo's role (<c>all</c> or <c>silo</c>).</summary>
    public const string RoleKey = "kserve.role";

    /// <summary>Maps <c>GET /cluster</c>.</summary>
    public static IEndpointRouteBuilder MapClusterEndpoints(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapGet("/cluster", ClusterAsync);
        return endpoints;
    }

    private static async Task ClusterAsync(HttpContext context, IGrainFactory grains)
    {
        var view = await grains.GetGrain<IClusterViewGrain>(0).GetAsync();
        var self = context.RequestServices.GetService<ILocalSiloDetails>()?.SiloAddress.ToParsableString() ?? "frontend";
        using var body = new MemoryStream();
        await using (var writer = new Utf8JsonWriter(body))
        {
            Write(writer, self, view);
        }

        context.Response.ContentType = "application/json";
        context.Response.ContentLength = body.Length;
        await context.Response.Body.WriteAsync(body.GetBuffer().AsMemory(0, (int)body.Length));
    }

    private static void Write(Utf8JsonWriter w, string self, ClusterView view)
    {
        w.WriteStartObject();
        w.WriteString("self", self);
        w.WriteStartArray("silos");
        foreach (var silo in view.Silos)
        {
            w.WriteStartObject();
            w.WriteString("name", silo.Name);
            w.WriteString("address", silo.Address);
            w.WriteString("host", silo.Host);
            w.WriteString("role", silo.Labels.GetValueOrDefault(RoleKey));
            w.WriteString("status", silo.Status);
            w.WriteString("since", silo.Since.ToString("O", CultureInfo.InvariantCulture));
            w.WriteString("lastAlive", silo.LastAlive.ToString("O", CultureInfo.InvariantCulture));
            w.WriteStartObject("labels");
            foreach (var (key, value) in silo.Labels.OrderBy(l => l.Key, StringComparer.Ordinal))
            {
                w.WriteString(key, value);
            }

            w.WriteEndObject();
            w.WriteEndObject();
        }

        w.WriteEndArray();
        w.WriteStartArray("replicas");
        foreach (var replica in view.Replicas)
        {
            w.WriteStartObject();
            w.WriteString("namespace", replica.Key.Namespace);
            w.WriteString("model", replica.Key.Service);
            w.WriteString("version", replica.Key.Version);
            w.WriteNumber("revision", replica.Key.Revision);
            w.WriteNumber("replica", replica.Key.Replica);
            w.WriteString("silo", replica.Silo);
            w.WriteEndObject();
        }

        w.WriteEndArray();
        w.WriteString("registry", view.RegistrySilo);
        w.WriteEndObject();
    }
}
