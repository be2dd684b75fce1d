using System.Collections.Immutable;
using System.Data;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Npgsql;
using Orleans.Configuration;
using Orleans.KServe.Grains;
using Orleans.KServe.Grains.Registry;
using Orleans.KServe.Silo.Clustering;
using Orleans.Messaging;
using Orleans.Runtime;
using Orleans.Runtime.Membership;
using Orleans.Runtime.MembershipService;
using Orleans.Serialization;
using Orleans.Storage;

namespace Orleans.KServe.FunctionalTests;

/// <summary>One PostgreSQL server for the class, with the schema applied to its database.</summary>
public sealed class PostgresMembershipFixture : IAsyncLifetime
{
    private PostgresServer? _server;

    /// <summary>The server, started once for the class.</summary>
    public PostgresServer Server => _server!;

    /// <summary>The connection string of the server's database, which holds the schema.</summary>
    public string ConnectionString => Server.ConnectionString;

    /// <summary>Starts the server and applies the schema.</summary>
    public async Task InitializeAsync()
    {
        _server = await PostgresServer.StartAsync();
        await PostgresSchema.ApplyAsync(_server.ConnectionString);
    }

    /// <summary>Stops the server and deletes its folder.</summary>
    public async Task DisposeAsync()
    {
        if (_server is not null)
        {
            await _server.DisposeAsync();
        }
    }
}

/// <summary>
/// Orleans' ADO.NET clustering and grain storage on PostgreSQL with <see cref="PostgresSchema"/>: the schema applies
/// any number of times, in-process silos form a cluster and see a stopped one leave, a client finds the gateways, the
/// membership table keeps the provider's contract query by query, and grain state is written, read, overwritten and
/// cleared with etags. Every test has its own cluster and service ids.
/// </summary>
public sealed class PostgresMembershipTests(PostgresMembershipFixture fixture) : IClassFixture<PostgresMembershipFixture>
{
    /// <summary>Every key the 10.4.2 providers read from OrleansQuery.</summary>
    private static readonly string[] QueryKeys =
    [
        "CleanupDefunctSiloEntriesKey", "CleanupDefunctSiloEntryKey", "DeleteMembershipTableEntriesKey", "GatewaysQueryKey",
        "InsertMembershipKey", "InsertMembershipVersionKey", "MembershipReadAllKey", "MembershipReadRowKey",
        "UpdateIAmAlivetimeKey", "UpdateMembershipKey",
        "ClearStorageKey", "DeleteStorageKey", "ReadFromStorageKey", "WriteToStorageKey",
    ];

    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task The_schema_applies_concurrently_and_again_and_stores_every_query_the_providers_read()
    {
        var connection = await fixture.Server.CreateDatabaseAsync();
        await Task.WhenAll(Task.Run(() => PostgresSchema.ApplyAsync(connection)), Task.Run(() => PostgresSchema.ApplyAsync(connection)));
        await PostgresSchema.ApplyAsync(connection);
        await PostgresSchema.ApplyAsync(connection);

        // The very statement both providers start with.
        var stored = await QueryAsync(connection, "SELECT QueryKey, QueryText FROM OrleansQuery", r => (Key: r.GetString(0), Text: r.GetString(1)));
        Assert.Equal(QueryKeys.Order(StringComparer.Ordinal), stored.Select(q => q.Key).Order(StringComparer.Ordinal));
        Assert.All(stored, q => Assert.Contains("@", q.Text));
        var tables = await QueryAsync(
            connection,
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY table_name",
            r => r.GetString(0));
        Assert.Equal(["orleansmembershiptable", "orleansmembershipversiontable", "orleansquery", "orleansstorage"], tables);
    }

    [Fact]
    public async Task Applying_the_schema_never_shows_the_connection_string_in_an_exception()
    {
        const string Secret = "pg-secret-7f3a";
        var malformed = await Assert.ThrowsAsync<ArgumentException>(() => PostgresSchema.ApplyAsync($"Host=127.0.0.1;Password={Secret};{Secret}-no-value"));
        Assert.DoesNotContain(Secret, malformed.ToString());

        var unreachable = await Assert.ThrowsAnyAsync<Exception>(() => PostgresSchema.ApplyAsync($"Host=127.0.0.1;Port={OutputLog.FreePort()};Username=postgres;Password={Secret};Timeout=5"));
        Assert.DoesNotContain(Secret, unreachable.ToString());
    }

    [Fact]
    public async Task Two_silos_list_each_other_as_active_and_one_that_stops_is_dead_on_the_other_and_cleaned_up()
    {
        var ids = NewIds();
        await using var first = await TestSilo.StartAsync(fixture.ConnectionString, ids);
        await using var second = await TestSilo.StartAsync(fixture.ConnectionString, ids);
        foreach (var silo in new[] { first, second })
        {
            await Wait.ForAsync(() => silo.Management.GetHosts(onlyActive: true), h => h.Count == 2, "both silos active", Deadline, Describe);
        }

        var gone = second.Address;
        await second.StopAsync();
        var hosts = await Wait.ForAsync(
            () => first.Management.GetHosts(onlyActive: false),
            h => h.TryGetValue(gone, out var status) && status == SiloStatus.Dead,
            "the stopped silo to be dead",
            Deadline,
            Describe);
        Assert.Equal(SiloStatus.Active, hosts[first.Address]);
        Assert.Equal([first.Address], (await first.Management.GetHosts(onlyActive: true)).Keys);

        // The table says the same; clearing defunct entries (the per-row query) removes the dead one only.
        var table = first.Services.GetRequiredService<IMembershipTable>();
        var rows = await table.ReadAllAsync();
        Assert.Equal(SiloStatus.Dead, rows.Members.Single(m => m.Item1.SiloAddress.Equals(gone)).Item1.Status);
        await table.CleanupDefunctSiloEntriesAsync(DateTimeOffset.UtcNow.AddSeconds(1));
        rows = await table.ReadAllAsync();
        Assert.Equal([first.Address], rows.Members.Select(m => m.Item1.SiloAddress));
    }

    [Fact]
    public async Task A_client_finds_both_gateways_through_the_gateway_query_and_calls_the_cluster()
    {
        var ids = NewIds();
        await using var first = await TestSilo.StartAsync(fixture.ConnectionString, ids);
        await using var second = await TestSilo.StartAsync(fixture.ConnectionString, ids);
        await Wait.ForAsync(() => first.Management.GetHosts(onlyActive: true), h => h.Count == 2, "both silos active", Deadline, Describe);

        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.UseOrleansClient(client => client
            .UseAdoNetClustering(o =>
            {
                o.Invariant = PostgresSchema.Invariant;
                o.ConnectionString = fixture.ConnectionString;
            })
            .Configure<ClusterOptions>(o =>
            {
                o.ClusterId = ids.ClusterId;
                o.ServiceId = ids.ServiceId;
            }));
        using var host = builder.Build();
        using (var started = new CancellationTokenSource(Deadline))
        {
            await host.StartAsync(started.Token);
        }

        try
        {
            var gateways = await host.Services.GetRequiredService<IGatewayListProvider>().GetGatewaysAsync();
            Assert.Equal(new[] { first.GatewayPort, second.GatewayPort }.Order(), gateways.Select(g => g.Port).Order());
            Assert.All(gateways, g => Assert.Equal("127.0.0.1", g.Host));

            var management = host.Services.GetRequiredService<IClusterClient>().GetGrain<IManagementGrain>(0);
            Assert.Equal(new[] { first.Address, second.Address }.Order(), (await management.GetHosts(onlyActive: true)).Keys.Order());
        }
        finally
        {
            using var stopping = new CancellationTokenSource(Deadline);
            await host.StopAsync(stopping.Token);
        }
    }

    [Fact]
    public async Task The_membership_table_keeps_the_provider_contract_query_by_query()
    {
        var ids = NewIds();
        var table = Table(fixture.ConnectionString, ids);
        await table.InitializeMembershipTableAsync(tryInitTableVersion: true);
        await table.InitializeMembershipTableAsync(tryInitTableVersion: true);
        var empty = await table.ReadAllAsync();
        Assert.Empty(empty.Members);
        Assert.Equal(0, empty.Version.Version);

        // Inserts take the version read and move it on; a stale version or a second entry for a silo is refused.
        var now = Microseconds(DateTime.UtcNow);
        var a = Entry(11111, SiloStatus.Joining, now);
        var b = Entry(22222, SiloStatus.Active, now);
        Assert.True(await table.InsertRowAsync(a, empty.Version.Next()));
        Assert.False(await table.InsertRowAsync(b, empty.Version.Next()));
        var one = await table.ReadAllAsync();
        Assert.Equal(1, one.Version.Version);
        Assert.False(await table.InsertRowAsync(a, one.Version.Next()));
        Assert.Equal(1, (await table.ReadAllAsync()).Version.Version);
        Assert.True(await table.InsertRowAsync(b, one.Version.Next()));

        var row = await table.ReadRowAsync(a.SiloAddress);
        Assert.Equal(2, row.Version.Version);
        var (read, etag) = Assert.Single(row.Members);
        Assert.Equal(a.SiloAddress, read.SiloAddress);
        Assert.Equal((a.SiloName, a.HostName, a.Status, a.ProxyPort, a.StartTime, a.IAmAliveTime), (read.SiloName, read.HostName, read.Status, read.ProxyPort, read.StartTime, read.IAmAliveTime));
        Assert.Equal(row.Version.VersionEtag, etag);

        // Updates likewise; suspicions come back as they were written.
        var suspected = Entry(11111, SiloStatus.Active, now);
        suspected.SuspectTimes = [Tuple.Create(b.SiloAddress, now)];
        Assert.True(await table.UpdateRowAsync(suspected, etag, row.Version.Next()));
        Assert.False(await table.UpdateRowAsync(suspected, etag, row.Version.Next()));
        var updated = await table.ReadRowAsync(a.SiloAddress);
        Assert.Equal(3, updated.Version.Version);
        var entry = Assert.Single(updated.Members).Item1;
        Assert.Equal(SiloStatus.Active, entry.Status);
        // The provider writes suspicion times to the millisecond.
        Assert.Equal((b.SiloAddress, now.AddTicks(-(now.Ticks % TimeSpan.TicksPerMillisecond))), Assert.Single(entry.SuspectTimes!).ToValueTuple());

        // The heartbeat changes liveness only, outside the version.
        var later = now.AddSeconds(5);
        entry.IAmAliveTime = later;
        await table.UpdateIAmAliveAsync(entry);
        var alive = await table.ReadRowAsync(a.SiloAddress);
        Assert.Equal(later, Assert.Single(alive.Members).Item1.IAmAliveTime);
        Assert.Equal(3, alive.Version.Version);

        // Clients see the gateways of active silos only.
        var gateways = new AdoNetGatewayListProvider(
            NullLogger<AdoNetGatewayListProvider>.Instance,
            new ServiceCollection().BuildServiceProvider(),
            Options.Create(new AdoNetClusteringClientOptions { Invariant = PostgresSchema.Invariant, ConnectionString = fixture.ConnectionString }),
            Options.Create(new GatewayOptions()),
            Options.Create(new ClusterOptions { ClusterId = ids.ClusterId, ServiceId = ids.ServiceId }));
        await gateways.InitializeGatewayListProviderAsync();
        Assert.Equal(new[] { a.ProxyPort, b.ProxyPort }.Order(), (await gateways.GetGatewaysAsync()).Select(g => g.Port).Order());

        var all = await table.ReadAllAsync();
        var dead = Entry(22222, SiloStatus.Dead, now);
        dead.IAmAliveTime = now.AddMinutes(-1);
        Assert.True(await table.UpdateRowAsync(dead, all.Members.Single(m => m.Item1.SiloAddress.Equals(b.SiloAddress)).Item2, all.Version.Next()));
        Assert.Equal([a.ProxyPort], (await gateways.GetGatewaysAsync()).Select(g => g.Port));

        // The per-row cleanup leaves an entry that changed since the provider read it.
        Assert.Equal(0, await CleanupEntryAsync(fixture.ConnectionString, ids.ClusterId, dead, dead.IAmAliveTime.AddSeconds(-1)));

        // Defunct entries go, live ones stay; deleting the cluster removes its version row and entries.
        await table.CleanupDefunctSiloEntriesAsync(new DateTimeOffset(now.AddSeconds(1)));
        Assert.Equal([a.SiloAddress], (await table.ReadAllAsync()).Members.Select(m => m.Item1.SiloAddress));
        await table.DeleteMembershipTableEntriesAsync(ids.ClusterId);
        Assert.Equal(0L, await CountAsync(fixture.ConnectionString, "OrleansMembershipVersionTable", ids.ClusterId));
        Assert.Equal(0L, await CountAsync(fixture.ConnectionString, "OrleansMembershipTable", ids.ClusterId));
    }

    [Fact]
    public async Task Without_the_optional_per_row_query_defunct_entries_go_through_the_bulk_one()
    {
        var connection = await fixture.Server.CreateDatabaseAsync();
        await PostgresSchema.ApplyAsync(connection);
        await ExecuteAsync(connection, "DELETE FROM OrleansQuery WHERE QueryKey = 'CleanupDefunctSiloEntryKey'");
        var ids = NewIds();
        var table = Table(connection, ids);
        await table.InitializeMembershipTableAsync(tryInitTableVersion: true);
        var now = Microseconds(DateTime.UtcNow);
        var live = Entry(33333, SiloStatus.Active, now);
        var dead = Entry(44444, SiloStatus.Dead, now.AddMinutes(-2));
        Assert.True(await table.InsertRowAsync(live, (await table.ReadAllAsync()).Version.Next()));
        Assert.True(await table.InsertRowAsync(dead, (await table.ReadAllAsync()).Version.Next()));

        await table.CleanupDefunctSiloEntriesAsync(new DateTimeOffset(now.AddMinutes(-1)));
        Assert.Equal([live.SiloAddress], (await table.ReadAllAsync()).Members.Select(m => m.Item1.SiloAddress));
    }

    [Fact]
    public async Task Grain_state_is_written_read_overwritten_and_cleared_with_etags_and_a_stale_etag_fails()
    {
        const string DeleteOnClear = "kserve-delete-on-clear";
        await using var silo = await TestSilo.StartAsync(fixture.ConnectionString, NewIds(), s =>
        {
            s.AddAdoNetGrainStorage(GrainsHostingExtensions.RegistryStorage, o =>
            {
                o.Invariant = PostgresSchema.Invariant;
                o.ConnectionString = fixture.ConnectionString;
            });
            s.AddAdoNetGrainStorage(DeleteOnClear, o =>
            {
                o.Invariant = PostgresSchema.Invariant;
                o.ConnectionString = fixture.ConnectionString;
                o.DeleteStateOnClear = true;
            });

            // The registry's state (immutable dictionaries) does not come back through the providers' default
            // Newtonsoft.Json serializer; Orleans' own serializer keeps it whole.
            foreach (var name in new[] { GrainsHostingExtensions.RegistryStorage, DeleteOnClear })
            {
                s.Services.AddOptions<AdoNetGrainStorageOptions>(name)
                    .Configure<Serializer>((o, serializer) => o.GrainStorageSerializer = new OrleansGrainStorageSerializer(serializer));
            }
        });
        var storage = silo.Services.GetRequiredKeyedService<IGrainStorage>(GrainsHostingExtensions.RegistryStorage);
        const string StorageType = "kserve-test-registry";
        var id = GrainId.Create("kserve-test-registry", Guid.NewGuid().ToString("N"));

        var state = new GrainState<RegistryState>(new RegistryState());
        await storage.ReadStateAsync(StorageType, id, state);
        Assert.False(state.RecordExists);
        Assert.Null(state.ETag);

        state.State = Registry(("default/double", 1));
        await storage.WriteStateAsync(StorageType, id, state);
        Assert.True(state.RecordExists);
        Assert.NotNull(state.ETag);
        var stale = await ReadAsync(storage, StorageType, id);
        Assert.True(stale.RecordExists);
        Assert.Equal(state.ETag, stale.ETag);
        Assert.Equal(state.State!.Revisions, stale.State!.Revisions);

        // Overwriting with the etag read moves it on; the old etag, or a second first write, is refused.
        var firstEtag = state.ETag;
        state.State = Registry(("default/double", 2), ("team/other", 1));
        await storage.WriteStateAsync(StorageType, id, state);
        Assert.NotEqual(firstEtag, state.ETag);
        stale.State = Registry(("default/double", 99));
        await Assert.ThrowsAsync<InconsistentStateException>(() => storage.WriteStateAsync(StorageType, id, stale));
        var second = new GrainState<RegistryState>(Registry(("default/double", 98)));
        await Assert.ThrowsAsync<InconsistentStateException>(() => storage.WriteStateAsync(StorageType, id, second));
        Assert.Equal(state.State!.Revisions, (await ReadAsync(storage, StorageType, id)).State!.Revisions);

        // Clearing keeps the row without a payload and moves the etag on; a stale clear is refused.
        await Assert.ThrowsAsync<InconsistentStateException>(() => storage.ClearStateAsync(StorageType, id, stale));
        var beforeClear = state.ETag;
        await storage.ClearStateAsync(StorageType, id, state);
        Assert.False(state.RecordExists);
        Assert.NotNull(state.ETag);
        Assert.NotEqual(beforeClear, state.ETag);
        var cleared = await ReadAsync(storage, StorageType, id);
        Assert.False(cleared.RecordExists);
        Assert.Equal(state.ETag, cleared.ETag);
        Assert.Empty(cleared.State!.Revisions);
        state.State = Registry(("default/double", 3));
        await storage.WriteStateAsync(StorageType, id, state);
        Assert.Equal(state.State!.Revisions, (await ReadAsync(storage, StorageType, id)).State!.Revisions);

        // Keys of other shapes (a Guid, an integer with an extension) are rows of their own.
        var guid = GrainId.Create(GrainType.Create("kserve-test-registry"), GrainIdKeyExtensions.CreateGuidKey(Guid.NewGuid()));
        var integer = GrainId.Create(GrainType.Create("kserve-test-registry"), GrainIdKeyExtensions.CreateIntegerKey(42, "ext-" + Guid.NewGuid().ToString("N")));
        foreach (var (other, revision) in new[] { (guid, 10), (integer, 20) })
        {
            var value = new GrainState<RegistryState>(Registry(("default/double", revision)));
            await storage.WriteStateAsync(StorageType, other, value);
            Assert.Equal(value.State!.Revisions, (await ReadAsync(storage, StorageType, other)).State!.Revisions);
        }

        Assert.Equal(state.State!.Revisions, (await ReadAsync(storage, StorageType, id)).State!.Revisions);

        // With DeleteStateOnClear the row goes; the next write starts afresh without an etag.
        var deleting = silo.Services.GetRequiredKeyedService<IGrainStorage>(DeleteOnClear);
        var deleted = GrainId.Create("kserve-test-registry", Guid.NewGuid().ToString("N"));
        var doomed = new GrainState<RegistryState>(Registry(("default/double", 5)));
        await deleting.WriteStateAsync(StorageType, deleted, doomed);
        await deleting.ClearStateAsync(StorageType, deleted, doomed);
        Assert.Null(doomed.ETag);
        var gone = await ReadAsync(deleting, StorageType, deleted);
        Assert.False(gone.RecordExists);
        Assert.Null(gone.ETag);
        gone.State = Registry(("default/double", 6));
        await deleting.WriteStateAsync(StorageType, deleted, gone);
        Assert.NotNull(gone.ETag);
    }

    private static async Task<GrainState<RegistryState>> ReadAsync(IGrainStorage storage, string grainType, GrainId id)
    {
        var state = new GrainState<RegistryState>(new RegistryState());
        await storage.ReadStateAsync(grainType, id, state);
        return state;
    }

    private static RegistryState Registry(params (string Service, int Revision)[] revisions) =>
        new() { Revisions = revisions.ToImmutableDictionary(r => r.Service, r => r.Revision) };

    private static (string ClusterId, string ServiceId) NewIds()
    {
        var unique = Guid.NewGuid().ToString("N")[..12];
        return ("pg-cluster-" + unique, "pg-service-" + unique);
    }

    private static AdoNetClusteringTable Table(string connection, (string ClusterId, string ServiceId) ids) => new(
        new ServiceCollection().BuildServiceProvider(),
        Options.Create(new ClusterOptions { ClusterId = ids.ClusterId, ServiceId = ids.ServiceId }),
        Options.Create(new AdoNetClusteringSiloOptions { Invariant = PostgresSchema.Invariant, ConnectionString = connection }),
        NullLogger<AdoNetClusteringTable>.Instance);

    private static MembershipEntry Entry(int port, SiloStatus status, DateTime time) => new()
    {
        SiloAddress = SiloAddress.New(new IPEndPoint(IPAddress.Loopback, port), 7),
        SiloName = $"silo-{port}",
        HostName = $"host-{port}",
        Status = status,
        ProxyPort = port + 1,
        StartTime = time,
        IAmAliveTime = time,
    };

    // PostgreSQL keeps microseconds: times the test compares are cut to them.
    private static DateTime Microseconds(DateTime time) => new(time.Ticks - time.Ticks % 10, DateTimeKind.Utc);

    private static string Describe(Dictionary<SiloAddress, SiloStatus> hosts) => string.Join(", ", hosts.Select(h => $"{h.Key} {h.Value}"));

    private static async Task<List<T>> QueryAsync<T>(string connection, string sql, Func<NpgsqlDataReader, T> read)
    {
        await using var db = new NpgsqlConnection(connection);
        await db.OpenAsync();
        await using var command = new NpgsqlCommand(sql, db);
        await using var reader = await command.ExecuteReaderAsync();
        var rows = new List<T>();
        while (await reader.ReadAsync())
        {
            rows.Add(read(reader));
        }

        return rows;
    }

    private static async Task ExecuteAsync(string connection, string sql)
    {
        await using var db = new NpgsqlConnection(connection);
        await db.OpenAsync();
        await using var command = new NpgsqlCommand(sql, db);
        await command.ExecuteNonQueryAsync();
    }

    // Runs the stored per-row cleanup the way the provider binds it, with the heartbeat time given.
    private static async Task<int> CleanupEntryAsync(string connection, string clusterId, MembershipEntry entry, DateTime iAmAliveTime)
    {
        var text = (await QueryAsync(connection, "SELECT QueryText FROM OrleansQuery WHERE QueryKey = 'CleanupDefunctSiloEntryKey'", r => r.GetString(0))).Single();
        await using var db = new NpgsqlConnection(connection);
        await db.OpenAsync();
        await using var command = new NpgsqlCommand(text, db);
        command.Parameters.Add(new NpgsqlParameter("DeploymentId", DbType.String) { Value = clusterId });
        command.Parameters.Add(new NpgsqlParameter("Address", DbType.AnsiString) { Value = entry.SiloAddress.Endpoint.Address.ToString() });
        command.Parameters.Add(new NpgsqlParameter("Port", DbType.Int32) { Value = entry.SiloAddress.Endpoint.Port });
        command.Parameters.Add(new NpgsqlParameter("Generation", DbType.Int32) { Value = entry.SiloAddress.Generation });
        command.Parameters.Add(new NpgsqlParameter("SuspectTimes", DbType.String) { Value = DBNull.Value });
        command.Parameters.Add(new NpgsqlParameter("StartTime", DbType.DateTime) { Value = entry.StartTime });
        command.Parameters.Add(new NpgsqlParameter("IAmAliveTime", DbType.DateTime) { Value = iAmAliveTime });
        return await command.ExecuteNonQueryAsync();
    }

    private static async Task<long> CountAsync(string connection, string table, string clusterId)
    {
        await using var db = new NpgsqlConnection(connection);
        await db.OpenAsync();
        await using var command = new NpgsqlCommand($"SELECT count(*) FROM {table} WHERE DeploymentId = @id", db);
        command.Parameters.AddWithValue("id", clusterId);
        return (long)(await command.ExecuteScalarAsync())!;
    }

    /// <summary>An in-process silo on 127.0.0.1 with ADO.NET clustering on PostgreSQL, on free silo and gateway ports.</summary>
    private sealed class TestSilo : IAsyncDisposable
    {
        private readonly IHost _host;
        private bool _stopped;

        private TestSilo(IHost host, int gatewayPort)
        {
            _host = host;
            GatewayPort = gatewayPort;
        }

        /// <summary>The port clients connect to.</summary>
        public int GatewayPort { get; }

        /// <summary>The silo host's services.</summary>
        public IServiceProvider Services => _host.Services;

        /// <summary>The silo's address in the cluster.</summary>
        public SiloAddress Address => Services.GetRequiredService<ILocalSiloDetails>().SiloAddress;

        /// <summary>The management grain, called from this silo.</summary>
        public IManagementGrain Management => Services.GetRequiredService<IGrainFactory>().GetGrain<IManagementGrain>(0);

        /// <summary>Starts a silo of the cluster <paramref name="ids"/> names; <paramref name="configure"/> adds to it.</summary>
        public static async Task<TestSilo> StartAsync(string connection, (string ClusterId, string ServiceId) ids, Action<ISiloBuilder>? configure = null)
        {
            for (var attempt = 0; ; attempt++)
            {
                int siloPort = OutputLog.FreePort(), gatewayPort = OutputLog.FreePort();
                var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
                builder.UseOrleans(silo =>
                {
                    silo.UseAdoNetClustering(o =>
                        {
                            o.Invariant = PostgresSchema.Invariant;
                            o.ConnectionString = connection;
                        })
                        .ConfigureEndpoints(IPAddress.Loopback, siloPort, gatewayPort)
                        .Configure<ClusterOptions>(o =>
                        {
                            o.ClusterId = ids.ClusterId;
                            o.ServiceId = ids.ServiceId;
                        });
                    configure?.Invoke(silo);
                });
                var host = builder.Build();
                try
                {
                    using var started = new CancellationTokenSource(Deadline);
                    await host.StartAsync(started.Token);
                    return new TestSilo(host, gatewayPort);
                }
                catch (Exception e) when (attempt < 3 && PortTaken(e))
                {
                    // Another process took a port between the probe and the bind: try others.
                    host.Dispose();
                }
                catch
                {
                    host.Dispose();
                    throw;
                }
            }
        }

        /// <summary>Stops the silo the way a host shuts down: it leaves the cluster.</summary>
        public async Task StopAsync()
        {
            if (!_stopped)
            {
                _stopped = true;
                using var stopping = new CancellationTokenSource(Deadline);
                await _host.StopAsync(stopping.Token);
            }
        }

        /// <summary>Stops the silo if still running and disposes its host.</summary>
        public async ValueTask DisposeAsync()
        {
            try
            {
                await StopAsync();
            }
            finally
            {
                _host.Dispose();
            }
        }

        private static bool PortTaken(Exception? e) => e switch
        {
            null => false,
            SocketException { SocketErrorCode: SocketError.AddressAlreadyInUse } => true,
            AggregateException aggregate => aggregate.InnerExceptions.Any(PortTaken),
            _ => PortTaken(e.InnerException),
        };
    }
}
