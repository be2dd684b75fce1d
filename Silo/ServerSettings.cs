using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Options;
using Orleans.KServe.Gateway;
using Orleans.KServe.Grains;
using Orleans.KServe.Operator.Hosting;

namespace Orleans.KServe.Silo;

/// <summary>Thrown when the settings are invalid; the message lists every problem.</summary>
public sealed class InvalidServerOptionsException(IReadOnlyList<string> errors)
    : Exception("invalid settings:" + Environment.NewLine + string.Join(Environment.NewLine, errors.Select(e => "  - " + e)))
{
    /// <summary>The problems, one sentence each.</summary>
    public IReadOnlyList<string> Errors { get; } = errors;
}

/// <summary>
/// Every setting of the server, from the command line (<c>--http-port 9000</c>), the environment
/// (<c>KServe__HttpPort=9000</c>) or appsettings (<c>"KServe": {"HttpPort": 9000}</c>): each project owns its options
/// type, its switches and its validator; this checks them all before anything starts and reports every problem at
/// once, an unknown switch among them.
/// </summary>
public static class ServerSettings
{
    /// <summary>The configuration section every setting lives in.</summary>
    public const string Section = GatewayOptions.Section;

    private static readonly IReadOnlyDictionary<string, string>[] Owners =
        [GatewayOptions.Switches, ModelServingOptions.Switches, ModelRepositoryOptions.Switches, SiloOptions.Switches];

    /// <summary>Every command-line switch and the configuration key it sets.</summary>
    public static IDictionary<string, string> SwitchMappings { get; } =
        Owners.SelectMany(o => o).ToDictionary(kv => kv.Key, kv => $"{Section}:{kv.Value}", StringComparer.Ordinal);

    /// <summary>Throws <see cref="InvalidServerOptionsException"/> listing every problem with <paramref name="args"/> and <paramref name="configuration"/>.</summary>
    public static void Check(string[] args, IConfiguration configuration)
    {
        var errors = new List<string>(UnknownSwitches(args));
        var section = configuration.GetSection(Section);
        Check<GatewayOptions>(section, new GatewayOptionsValidator(), errors);
        Check<ModelServingOptions>(section, new ModelServingOptionsValidator(), errors);
        Check<ModelRepositoryOptions>(section, new ModelRepositoryOptionsValidator(), errors);
        Check<SiloOptions>(section, new SiloOptionsValidator(), errors);
        if (errors.Count > 0)
        {
            throw new InvalidServerOptionsException(errors.Distinct().ToList());
        }
    }

    private static void Check<T>(IConfigurationSection section, IValidateOptions<T> validator, List<string> errors)
        where T : class, new()
    {
        var options = new T();
        try
        {
            section.Bind(options);
        }
        catch (InvalidOperationException e)
        {
            // A value of the wrong type ("--http-port eighty"): the binder names the key and the value.
            errors.Add(e.InnerException?.Message ?? e.Message);
            return;
        }

        if (validator.Validate(null, options) is { Failed: true } result)
        {
            errors.AddRange(result.Failures);
        }
    }

    /// <summary>A sentence for every argument that is not a known switch (or its value), naming the closest switch.</summary>
    public static IEnumerable<string> UnknownSwitches(string[] args)
    {
        for (var i = 0; i < args.Length; i++)
        {
            var arg = args[i];
            if (!arg.StartsWith('-'))
            {
                yield return $"'{arg}' is not a switch; settings are given as --name value";
                continue;
            }

            var equals = arg.IndexOf('=');
            var name = equals < 0 ? arg : arg[..equals];
            if (equals < 0)
            {
                // The next argument is this switch's value, whatever it looks like ("--http-port -1").
                i++;
            }

            // A configuration path (--KServe:HttpPort 9000) is the configuration's own syntax and binds as it says.
            if (SwitchMappings.ContainsKey(name) || name.Contains(':'))
            {
                continue;
            }

            yield return $"unknown switch {name}; did you mean {Closest(name)}?";
        }
    }

    // A switch cut short ("--drain") is closest to what it begins; otherwise the fewest edits away.
    private static string Closest(string name) =>
        SwitchMappings.Keys
            .OrderBy(known => known.StartsWith(name, StringComparison.Ordinal) ? 0 : 1)
            .ThenBy(known => Distance(name, known))
            .ThenBy(known => known, StringComparer.Ordinal)
            .First();

    // Levenshtein distance: the fewest inserted, deleted or replaced characters between the two.
    private static int Distance(string a, string b)
    {
        var previous = new int[b.Length + 1];
        var current = new int[b.Length + 1];
        for (var j = 0; j <= b.Length; j++)
        {
            previous[j] = j;
        }

        for (var i = 1; i <= a.Length; i++)
        {
            current[0] = i;
            for (var j = 1; j <= b.Length; j++)
            {
                var cost = a[i - 1] == b[j - 1] ? 0 : 1;
                current[j] = Math.Min(Math.Min(current[j - 1] + 1, previous[j] + 1), previous[j - 1] + cost);
            }

            (previous, current) = (current, previous);
        }

        return previous[b.Length];
    }
}
