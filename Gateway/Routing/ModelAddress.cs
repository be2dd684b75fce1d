using System.Collections.Frozen;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace Orleans.KServe.Gateway.Routing;

/// <summary>The namespace a request names its model in, when it names one (by path prefix or by Host).</summary>
public sealed class ModelNamespaceFeature(string @namespace)
{
    /// <summary>The namespace.</summary>
    public string Namespace { get; } = @namespace;
}

/// <summary>
/// How KServe users address a model of a namespace. By Host, in KServe's <c>domainTemplate</c> form (its default
/// <c>{name}-{namespace}.{domain}</c>) or Knative's <c>{name}.{namespace}.{domain}</c>; by path, in KServe's
/// <c>pathTemplate</c> form (<c>/serving/{namespace}/{name}</c>, a prefix stripped before the v1/v2 route); else by
/// its bare name, while that names one model.
/// </summary>
public sealed class ModelAddressing
{
    /// <summary>Knative's domain template, which KServe's serverless mode answers on.</summary>
    public const string KnativeDomainTemplate = "{name}.{namespace}.{domain}";

    private readonly string[] _domainTemplates;
    private readonly string _pathPrefix;
    private readonly string[] _pathSegments;

    /// <summary>Reads the templates from <paramref name="options"/>.</summary>
    public ModelAddressing(GatewayOptions options)
    {
        _domainTemplates = new[] { options.DomainTemplate, KnativeDomainTemplate }.Distinct(StringComparer.Ordinal).ToArray();
        var path = options.PathTemplate;
        var first = path.IndexOf('{', StringComparison.Ordinal);
        _pathPrefix = first < 0 ? path : path[..first];
        _pathSegments = path.Trim('/').Split('/');
    }

    /// <summary>
    /// The host prefix (everything before <c>{domain}</c>) of <paramref name="name"/> in <paramref name="namespace"/>
    /// for each domain template: a host that starts with one of them names that model.
    /// </summary>
    public IEnumerable<string> HostPrefixes(string @namespace, string name) =>
        _domainTemplates.Select(t => t[..t.IndexOf("{domain}", StringComparison.Ordinal)].Replace("{name}", name, StringComparison.Ordinal).Replace("{namespace}", @namespace, StringComparison.Ordinal));

    /// <summary>
    /// The namespace and name a Host names, given every host prefix of the table (<paramref name="prefixes"/>): each
    /// dot of the host is tried as the start of <c>{domain}</c>.
    /// </summary>
    public static (string Namespace, string Name)? FromHost(string host, FrozenDictionary<string, (string Namespace, string Name)> prefixes)
    {
        if (prefixes.Count == 0 || host.Length == 0)
        {
            return null;
        }

        var colon = host.LastIndexOf(':');
        var name = colon > 0 && host.IndexOf(']', StringComparison.Ordinal) < colon ? host.AsSpan(0, colon) : host.AsSpan();
        var lookup = prefixes.GetAlternateLookup<ReadOnlySpan<char>>();
        for (var dot = name.IndexOf('.'); dot > 0; dot = Next(name, dot))
        {
            if (lookup.TryGetValue(name[..(dot + 1)], out var found))
            {
                return found;
            }
        }

        return null;
    }

    private static int Next(ReadOnlySpan<char> host, int dot)
    {
        var next = host[(dot + 1)..].IndexOf('.');
        return next < 0 ? -1 : dot + 1 + next;
    }

    /// <summary>
    /// Strips a path-template prefix (<c>/serving/team-a/double/v2/models/double/infer</c> →
    /// <c>/v2/models/double/infer</c>) before routing, and records the namespace it named.
    /// </summary>
    public IApplicationBuilder UsePathTemplate(IApplicationBuilder app) => app.Use((context, next) =>
    {
        var path = context.Request.Path.Value;
        if (_pathPrefix.Length > 1 && path is not null && path.StartsWith(_pathPrefix, StringComparison.Ordinal) && TryStrip(path, out var @namespace, out var consumed))
        {
            context.Request.PathBase = context.Request.PathBase.Add(new PathString(path[..consumed]));
            context.Request.Path = new PathString(path[consumed..]);
            context.Features.Set(new ModelNamespaceFeature(@namespace));
        }

        return next(context);
    });

    private bool TryStrip(string path, out string @namespace, out int consumed)
    {
        @namespace = "";
        consumed = 0;
        var segments = path.Split('/');
        if (segments.Length < _pathSegments.Length + 1)
        {
            return false;
        }

        for (var i = 0; i < _pathSegments.Length; i++)
        {
            var template = _pathSegments[i];
            var segment = segments[i + 1];
            if (template == "{namespace}")
            {
                @namespace = segment;
            }
            else if (template != "{name}" && template != segment)
            {
                return false;
            }

            consumed += 1 + segment.Length;
        }

        return @namespace.Length > 0;
    }
}
