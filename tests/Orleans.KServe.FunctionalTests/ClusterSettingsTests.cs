using System.Net;
using Microsoft.Extensions.Configuration;
using Orleans.KServe.Silo;

namespace Orleans.KServe.FunctionalTests;

/// <summary>
/// How a process resolves the cluster it joins: the provider and its connection (inline or from a file, never
/// echoed), the ids and which of ours or Orleans' own variables wins, and what a pod's environment supplies.
/// </summary>
public sealed class ClusterSettingsTests
{
    private static ClusterSettings Resolve(SiloOptions options, Dictionary<string, string>? environment, out List<string> failures)
    {
        failures = [];
        var env = environment ?? [];
        return ClusterSettings.Resolve(options, name => env.GetValueOrDefault(name), failures);
    }

    [Fact]
    public void Without_settings_a_process_is_a_localhost_cluster_named_kserve()
    {
        var settings = Resolve(new SiloOptions(), null, out var failures);
        Assert.Empty(failures);
        Assert.Equal(("localhost", "kserve", "kserve"), (settings.Provider, settings.ClusterId, settings.ServiceId));
        Assert.Null(settings.AdvertisedAddress);
    }

    [Fact]
    public void Our_ids_win_over_Orleans_variables_which_win_over_the_default()
    {
        var orleans = new Dictionary<string, string> { ["ORLEANS_CLUSTER_ID"] = "from-orleans", ["ORLEANS_SERVICE_ID"] = "svc-orleans" };
        var fromOrleans = Resolve(new SiloOptions(), orleans, out _);
        Assert.Equal(("from-orleans", "svc-orleans"), (fromOrleans.ClusterId, fromOrleans.ServiceId));

        var ours = Resolve(new SiloOptions { ClusterId = "ours", ServiceId = "our-service" }, orleans, out var failures);
        Assert.Empty(failures);
        Assert.Equal(("ours", "our-service"), (ours.ClusterId, ours.ServiceId));
    }

    [Fact]
    public void A_pod_gives_the_address_name_and_namespace_and_the_advertised_address_setting_wins()
    {
        var pod = new Dictionary<string, string> { ["POD_IP"] = "10.1.2.3", ["POD_NAME"] = "silo-0", ["POD_NAMESPACE"] = "models" };
        var fromPod = Resolve(new SiloOptions(), pod, out var failures);
        Assert.Empty(failures);
        Assert.Equal((IPAddress.Parse("10.1.2.3"), "silo-0", "models"), (fromPod.AdvertisedAddress, fromPod.SiloName, fromPod.PodNamespace));

        var set = Resolve(new SiloOptions { AdvertisedAddress = "192.168.7.9" }, pod, out _);
        Assert.Equal(IPAddress.Parse("192.168.7.9"), set.AdvertisedAddress);
    }

    [Theory]
    [InlineData("0.0.0.0")]
    [InlineData("not-an-ip")]
    [InlineData("::")]
    public void An_address_other_silos_cannot_reach_is_refused(string address)
    {
        Resolve(new SiloOptions { AdvertisedAddress = address }, null, out var failures);
        Assert.Contains(failures, f => f.Contains("--advertised-address") && f.Contains(address));
    }

    [Fact]
    public void Redis_without_a_connection_names_both_ways_to_give_one()
    {
        Resolve(new SiloOptions { Clustering = "redis" }, null, out var failures);
        var failure = Assert.Single(failures);
        Assert.Contains("KServe__ClusteringConnection", failure);
        Assert.Contains("--clustering-connection-file", failure);
    }

    [Fact]
    public void The_connection_is_read_from_its_file_and_its_secret_is_never_echoed()
    {
        var file = Path.GetTempFileName();
        try
        {
            File.WriteAllText(file, "  127.0.0.1:6390,password=hunter2-secret\n");
            var settings = Resolve(new SiloOptions { Clustering = "redis", ClusteringConnectionFile = file }, null, out var failures);
            Assert.Empty(failures);
            Assert.Equal("127.0.0.1:6390,password=hunter2-secret", settings.Connection);

            File.WriteAllText(file, "password=hunter2-secret");
            Resolve(new SiloOptions { Clustering = "redis", ClusteringConnectionFile = file }, null, out failures);
            var failure = Assert.Single(failures);
            Assert.Contains("not a Redis configuration string", failure);
            Assert.DoesNotContain("hunter2", failure);

            File.WriteAllText(file, " \n");
            Resolve(new SiloOptions { Clustering = "redis", ClusteringConnectionFile = file }, null, out failures);
            Assert.Contains("is empty", Assert.Single(failures));
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public void A_connection_both_inline_and_in_a_file_or_for_localhost_is_refused()
    {
        Resolve(new SiloOptions { Clustering = "redis", ClusteringConnection = "127.0.0.1:1", ClusteringConnectionFile = "/nonexistent" }, null, out var both);
        Assert.Contains("set one", Assert.Single(both));

        Resolve(new SiloOptions { ClusteringConnection = "127.0.0.1:1" }, null, out var localhost);
        Assert.Contains("--clustering is localhost", Assert.Single(localhost));

        Resolve(new SiloOptions { Clustering = "redis", ClusteringConnectionFile = "/nonexistent/kserve-secret" }, null, out var missing);
        Assert.Contains("cannot be read", Assert.Single(missing));
    }

    [Fact]
    public void Ids_with_spaces_are_refused()
    {
        Resolve(new SiloOptions { ClusterId = "a b" }, null, out var failures);
        Assert.Contains(failures, f => f.StartsWith("--cluster-id", StringComparison.Ordinal));
    }

    [Fact]
    public void The_server_refuses_to_start_on_bad_cluster_settings_and_never_prints_the_connection()
    {
        var e = Assert.Throws<InvalidServerOptionsException>(() => SiloHost.Build(
            ["--clustering", "redis", "--cluster-id", "has space", "--advertised-address", "0.0.0.0"],
            builder => builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?> { ["KServe:ClusteringConnection"] = "password=hunter2-secret" })));
        Assert.Contains("not a Redis configuration string", e.Message);
        Assert.Contains("--cluster-id", e.Message);
        Assert.Contains("--advertised-address", e.Message);
        Assert.DoesNotContain("hunter2", e.Message);

        var unknown = Assert.Throws<InvalidServerOptionsException>(() => SiloHost.Build(["--clustering", "zookeeper"]));
        Assert.Contains("zookeeper", unknown.Message);
    }
}
