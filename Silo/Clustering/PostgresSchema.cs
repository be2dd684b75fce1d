using Npgsql;

namespace Orleans.KServe.Silo.Clustering;

/// <summary>
/// The PostgreSQL tables and stored queries that Orleans' ADO.NET clustering (silos and clients) and ADO.NET grain
/// storage read, written for this server: the SQL is the embedded resource <c>Clustering/postgres-schema.sql</c>.
/// Applying it is idempotent and safe from several processes at once.
/// </summary>
public static class PostgresSchema
{
    /// <summary>The ADO.NET invariant name the Orleans providers take for PostgreSQL (Npgsql).</summary>
    public const string Invariant = "Npgsql";

    /// <summary>The manifest name of the embedded script.</summary>
    public const string ResourceName = "Orleans.KServe.Silo.Clustering.postgres-schema.sql";

    // The key of the transaction-level advisory lock that serializes concurrent runs ("KSRVPG" in ASCII).
    private const long LockKey = 0x4B53_5256_5047;

    private static readonly Lazy<string> Text = new(ReadScript);

    /// <summary>The SQL that <see cref="ApplyAsync"/> runs.</summary>
    public static string Script => Text.Value;

    /// <summary>
    /// Creates the tables when missing and stores every query the providers read (replacing older texts), in one
    /// transaction under an advisory lock: any number of runs, concurrent or not, leave the same schema. Neither the
    /// connection string nor any part of it appears in the exceptions this throws.
    /// </summary>
    /// <param name="connectionString">An Npgsql connection string for the database that will hold the tables.</param>
    /// <param name="cancellationToken">Cancels the connection attempt and the statements.</param>
    /// <exception cref="ArgumentException">The connection string is empty or not an Npgsql connection string.</exception>
    public static async Task ApplyAsync(string connectionString, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(connectionString);
        try
        {
            _ = new NpgsqlConnectionStringBuilder(connectionString);
        }
        catch (ArgumentException)
        {
            // Npgsql's message quotes the part it could not parse, which may be a secret: say only what failed.
            throw new ArgumentException("the PostgreSQL connection string is not a valid Npgsql connection string", nameof(connectionString));
        }

        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        await using (var take = new NpgsqlCommand("SELECT pg_advisory_xact_lock(@key)", connection, transaction))
        {
            take.Parameters.AddWithValue("key", LockKey);
            await take.ExecuteNonQueryAsync(cancellationToken);
        }

        await using (var apply = new NpgsqlCommand(Script, connection, transaction))
        {
            await apply.ExecuteNonQueryAsync(cancellationToken);
        }

        await transaction.CommitAsync(cancellationToken);
    }

    private static string ReadScript()
    {
        using var stream = typeof(PostgresSchema).Assembly.GetManifestResourceStream(ResourceName)
            ?? throw new InvalidOperationException($"the embedded resource {ResourceName} is missing from {typeof(PostgresSchema).Assembly.GetName().Name}");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }
}
