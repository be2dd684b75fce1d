using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text;
using Grpc.Core;

namespace Orleans.KServe.FunctionalTests.Fuzz;

/// <summary>
/// One request a fuzzer made, in the form the checked-in corpus keeps it: a text file of <c>key: value</c> lines
/// (a <c>#</c> line says what the case found). Transports: <c>rest</c> (an HTTP/1.1 request through HttpClient),
/// <c>grpc</c> (the body of an HTTP/2 gRPC call, frame headers included), <c>tcp</c> (raw bytes on the REST port).
/// </summary>
public sealed record FuzzCase(string Transport, string Method, string Target, IReadOnlyList<KeyValuePair<string, string>> Headers, byte[] Body)
{
    /// <summary>What the server must answer, for a corpus case: an HTTP status or a gRPC status name.</summary>
    public string? Expect { get; init; }

    /// <summary>What the case found, for a corpus case.</summary>
    public string? Note { get; init; }

    public static FuzzCase Rest(string method, string path, byte[] body, params (string Name, string Value)[] headers) =>
        new("rest", method, path, headers.Select(h => KeyValuePair.Create(h.Name, h.Value)).ToList(), body);

    public static FuzzCase Grpc(string rpc, byte[] body, params (string Name, string Value)[] headers) =>
        new("grpc", "POST", rpc, headers.Select(h => KeyValuePair.Create(h.Name, h.Value)).ToList(), body);

    public static FuzzCase Tcp(byte[] request) => new("tcp", "", "rest", [], request);

    /// <summary>The case as a corpus file.</summary>
    public string ToCorpus(string expect, string note)
    {
        var text = new StringBuilder();
        foreach (var line in note.Split('\n'))
        {
            text.Append("# ").AppendLine(line.TrimEnd());
        }

        text.AppendLine($"transport: {Transport}");
        if (Method.Length > 0)
        {
            text.AppendLine($"method: {Method}");
        }

        text.AppendLine($"target: {Target}");
        foreach (var (name, value) in Headers)
        {
            text.AppendLine($"header: {name}: {value}");
        }

        text.AppendLine($"body: {Convert.ToBase64String(Body)}");
        text.AppendLine($"expect: {expect}");
        return text.ToString();
    }

    /// <summary>Reads a corpus file.</summary>
    public static FuzzCase Parse(string text)
    {
        string transport = "", method = "", target = "", expect = "";
        var note = new StringBuilder();
        var headers = new List<KeyValuePair<string, string>>();
        var body = Array.Empty<byte>();
        foreach (var raw in text.Split('\n'))
        {
            var line = raw.TrimEnd('\r');
            if (line.StartsWith('#'))
            {
                note.AppendLine(line.TrimStart('#', ' '));
                continue;
            }

            var colon = line.IndexOf(':');
            if (colon < 0)
            {
                continue;
            }

            var (key, value) = (line[..colon], line[(colon + 1)..].Trim());
            switch (key)
            {
                case "transport": transport = value; break;
                case "method": method = value; break;
                case "target": target = value; break;
                case "body": body = Convert.FromBase64String(value); break;
                case "expect": expect = value; break;
                case "header":
                    var split = value.IndexOf(':');
                    headers.Add(KeyValuePair.Create(value[..split].Trim(), value[(split + 1)..].Trim()));
                    break;
                default: throw new FormatException($"unknown corpus key '{key}'");
            }
        }

        return new FuzzCase(transport, method, target, headers, body) { Expect = expect, Note = note.ToString().Trim() };
    }
}

/// <summary>Sends fuzz cases to one server and says what came back: an HTTP status, a gRPC status name, or <c>dropped: …</c>.</summary>
public sealed class FuzzClient(Uri rest, Uri grpc) : IDisposable
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(30);
    private readonly HttpClient _http = new() { BaseAddress = rest, Timeout = Deadline };
    private readonly RawGrpc _grpc = new(grpc);

    /// <summary>The gRPC statuses a client's mistake may get; never UNKNOWN, INTERNAL or a dropped call.</summary>
    public static readonly IReadOnlySet<string> AcceptedGrpc = new HashSet<string>
    {
        nameof(StatusCode.OK), nameof(StatusCode.InvalidArgument), nameof(StatusCode.NotFound), nameof(StatusCode.Unavailable),
        nameof(StatusCode.ResourceExhausted), nameof(StatusCode.Unimplemented),
    };

    /// <summary>True when <paramref name="outcome"/> is an answer a client's mistake may get: 2xx, 4xx, 501, 503 or an accepted gRPC status.</summary>
    public static bool Accepted(string outcome) =>
        int.TryParse(outcome, out var status) ? status is < 500 or 501 or 503 : AcceptedGrpc.Contains(outcome);

    public async Task<string> SendAsync(FuzzCase c)
    {
        try
        {
            return c.Transport switch
            {
                "rest" => await RestAsync(c),
                "grpc" => await GrpcAsync(c),
                "tcp" => await TcpAsync(c),
                _ => throw new FormatException($"unknown transport '{c.Transport}'"),
            };
        }
        catch (Exception e) when (e is HttpRequestException or IOException or TaskCanceledException or TimeoutException or SocketException or InvalidOperationException)
        {
            return $"dropped: {e.GetType().Name}: {e.Message}";
        }
    }

    private async Task<string> RestAsync(FuzzCase c)
    {
        using var request = new HttpRequestMessage(new HttpMethod(c.Method), c.Target);
        var content = new ByteArrayContent(c.Body);
        foreach (var (name, value) in c.Headers)
        {
            if (name.StartsWith("Content-", StringComparison.OrdinalIgnoreCase) || name.Equals("Inference-Header-Content-Length", StringComparison.OrdinalIgnoreCase))
            {
                content.Headers.TryAddWithoutValidation(name, value);
            }
            else
            {
                request.Headers.TryAddWithoutValidation(name, value);
            }
        }

        if (c.Body.Length > 0 || c.Method is "POST" or "PUT")
        {
            request.Content = content;
        }

        using var response = await _http.SendAsync(request);
        await response.Content.ReadAsByteArrayAsync();
        return ((int)response.StatusCode).ToString(System.Globalization.CultureInfo.InvariantCulture);
    }

    private async Task<string> GrpcAsync(FuzzCase c)
    {
        var encoding = c.Headers.FirstOrDefault(h => h.Key == "grpc-encoding").Value;
        var (status, _, _) = await _grpc.CallAsync(c.Target, c.Body, encoding);
        return status.ToString();
    }

    private static async Task<string> TcpAsync(FuzzCase c, Uri rest)
    {
        using var socket = new TcpClient();
        await socket.ConnectAsync(rest.Host, rest.Port);
        var stream = socket.GetStream();
        await stream.WriteAsync(c.Body);
        var buffer = new byte[256];
        var read = await stream.ReadAsync(buffer).AsTask().WaitAsync(Deadline);
        var head = Encoding.ASCII.GetString(buffer, 0, read);
        return head.StartsWith("HTTP/1.1 ", StringComparison.Ordinal) ? head[9..12] : $"dropped: answered '{head}'";
    }

    private Task<string> TcpAsync(FuzzCase c) => TcpAsync(c, _http.BaseAddress!);

    public void Dispose()
    {
        _http.Dispose();
        _grpc.Dispose();
    }
}
