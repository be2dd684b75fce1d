using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Orleans.KServe.Bench.Client;
using Orleans.KServe.Grpc;

// The benchmark client of bench/grpc.sh. Commands (one JSON result line each, on stdout):
//
//   bodies --out DIR
//       writes the request bodies the load generators send: grpc-{typed,raw}-{small,64k}.body and
//       grpc-raw-resnet18.body (gRPC frames), rest-binary-{small,64k,resnet18}.body with
//       .header-length beside each (REST binary: JSON header + tensor bytes)
//   body --payload small|64k|resnet18|1mib|mlp --form grpc-raw|grpc-typed|rest-binary --out FILE [--model NAME]
//       writes one body for a model of another name (bench/batching.sh: mlp-batched, resnet18-batched, ...);
//       a REST binary body gets FILE's .header-length beside it (REST bodies name no model)
//   ready --url http://HOST:PORT [--timeout SECONDS]
//       waits until the gRPC ServerReady rpc answers ready
//   check grpc --url http://HOST:PORT --body FILE [--calls N] [--concurrency C]
//   check rest-binary --url http://HOST:PORT/v2/models/M/infer --body FILE --header-length N [--calls N] [--concurrency C]
//       sends the body N times, C at a time, and checks every answer (HTTP status, grpc-status,
//       every output value); prints check-result: {..., "failed": F, "response_bytes": B}; exit 1 if F > 0.
//       --distribution OUTPUT also requires that output to hold probabilities: every value in [0, 1] and
//       every row (last dimension) summing to 1 within 1e-3 (mlp's softmax)
//   timeline --urls http://A,http://B --concurrency C --seconds S --out FILE [--timeout SECONDS]
//       C clients infer on `double` over REST JSON for S seconds, round robin over the front ends; writes one CSV
//       line per call to FILE (sent_ms,latency_ms,status; status 0 = no HTTP answer, 1 = a 2xx with a wrong answer) and prints timeline-result: {...} with
//       started_unix_ms, the wall-clock time of sent_ms 0
//   roundtrip --url http://HOST:PORT/v2/models/double/infer [--repeat N] [--warmup N]
//       times 1 MiB of FP32 (shape [131072, 2]) through `double` in REST binary and REST JSON, alternating
//       which goes first; prints roundtrip-result: {...}
try
{
    return args.FirstOrDefault() switch
    {
        "bodies" => Commands.Bodies(new Options(args[1..])),
        "body" => Commands.Body(new Options(args[1..])),
        "ready" => await Commands.ReadyAsync(new Options(args[1..])),
        "check" when args.Length > 1 => await Commands.CheckAsync(args[1], new Options(args[2..])),
        "roundtrip" => await Commands.RoundTripAsync(new Options(args[1..])),
        "timeline" => await Timeline.RunAsync(new Options(args[1..])),
        _ => Usage(),
    };
}
catch (UsageException e)
{
    Console.Error.WriteLine($"error: {e.Message}");
    return Usage();
}
catch (CheckException e)
{
    Console.Error.WriteLine($"error: {e.Message}");
    return 1;
}

static int Usage()
{
    Console.Error.WriteLine("usage: Orleans.KServe.Bench.Client bodies|body|ready|check grpc|check rest-binary|roundtrip|timeline [options] (see bench/README.md)");
    return 2;
}

/// <summary>A command line mistake.</summary>
internal sealed class UsageException(string message) : Exception(message);

/// <summary><c>--name value</c> pairs.</summary>
internal sealed class Options
{
    private readonly Dictionary<string, string> _values = [];

    public Options(string[] args)
    {
        for (var i = 0; i < args.Length; i += 2)
        {
            if (!args[i].StartsWith("--", StringComparison.Ordinal) || i + 1 >= args.Length)
            {
                throw new UsageException($"expected --option value, found '{args[i]}'");
            }
            _values[args[i][2..]] = args[i + 1];
        }
    }

    public string Required(string name) =>
        _values.TryGetValue(name, out var value) ? value : throw new UsageException($"--{name} is required");

    public string? Optional(string name) => _values.GetValueOrDefault(name);

    public int Int(string name, int fallback, int minimum = 1)
    {
        if (!_values.TryGetValue(name, out var text))
        {
            return fallback;
        }
        return int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var value) && value >= minimum
            ? value
            : throw new UsageException($"--{name} '{text}' is not a whole number ≥ {minimum}");
    }

    public Uri Url(string name) =>
        Uri.TryCreate(Required(name), UriKind.Absolute, out var url) && url.Scheme == Uri.UriSchemeHttp
            ? url
            : throw new UsageException($"--{name} '{Required(name)}' is not an http:// URL");
}

internal static class Commands
{
    public static int Bodies(Options options)
    {
        var folder = options.Required("out");
        Directory.CreateDirectory(folder);
        foreach (var payload in Payload.ForLoad())
        {
            // ResNet18 goes over raw gRPC only: typed contents are for small tensors.
            var contents = payload.Model == "double" ? new[] { "typed", "raw" } : ["raw"];
            foreach (var kind in contents)
            {
                Write(folder, $"grpc-{kind}-{payload.Name}.body", GrpcExchange.Frame(payload.GrpcRequest(raw: kind == "raw")), null);
            }

            var (body, headerLength) = payload.RestBinaryBody();
            Write(folder, $"rest-binary-{payload.Name}.body", body, headerLength);
        }
        return 0;
    }

    public static int Body(Options options)
    {
        var payload = Payload.Named(options.Required("payload"));
        if (options.Optional("model") is { } model)
        {
            if (model.Length == 0)
            {
                throw new UsageException("--model is empty");
            }
            payload = payload with { Model = model };
        }

        var file = Path.GetFullPath(options.Required("out"));
        var folder = Path.GetDirectoryName(file)!;
        Directory.CreateDirectory(folder);
        var name = Path.GetFileName(file);
        switch (options.Required("form"))
        {
            case "grpc-raw":
                Write(folder, name, GrpcExchange.Frame(payload.GrpcRequest(raw: true)), null);
                break;
            case "grpc-typed":
                Write(folder, name, GrpcExchange.Frame(payload.GrpcRequest(raw: false)), null);
                break;
            case "rest-binary":
            {
                var (body, headerLength) = payload.RestBinaryBody();
                Write(folder, name, body, headerLength);
                break;
            }
            case var form:
                throw new UsageException($"unknown --form '{form}' (grpc-raw, grpc-typed, rest-binary)");
        }
        return 0;
    }

    private static void Write(string folder, string name, byte[] body, int? headerLength)
    {
        var path = Path.Combine(folder, name);
        File.WriteAllBytes(path, body);
        if (headerLength is { } length)
        {
            File.WriteAllText(Path.ChangeExtension(path, ".header-length"), length.ToString(CultureInfo.InvariantCulture));
        }
        Console.Out.WriteLine($"{path}: {body.Length} bytes{(headerLength is null ? "" : $", JSON header {headerLength} bytes")}");
    }

    public static async Task<int> ReadyAsync(Options options)
    {
        var url = options.Url("url");
        var deadline = Stopwatch.StartNew();
        var timeout = TimeSpan.FromSeconds(options.Int("timeout", 60));
        using var client = GrpcExchange.CreateClient();
        client.Timeout = TimeSpan.FromSeconds(2);
        var frame = GrpcExchange.Frame(new ServerReadyRequest());
        string last = "no answer yet";
        while (deadline.Elapsed < timeout)
        {
            try
            {
                var (message, _) = await GrpcExchange.CallAsync(client, url, GrpcExchange.ServerReadyPath, frame);
                if (ServerReadyResponse.Parser.ParseFrom(message).Ready)
                {
                    return 0;
                }
                last = "ready: false";
            }
            catch (Exception e) when (e is CheckException or HttpRequestException or TaskCanceledException)
            {
                last = e.Message;
            }
            await Task.Delay(200);
        }
        Console.Error.WriteLine($"error: {url} did not answer ServerReady with ready: true within {timeout.TotalSeconds:0} s (last: {last})");
        return 1;
    }

    public static async Task<int> CheckAsync(string transport, Options options)
    {
        var calls = options.Int("calls", 1);
        var concurrency = Math.Min(calls, options.Int("concurrency", 1));
        var url = options.Url("url");
        var body = File.ReadAllBytes(options.Required("body"));
        var distribution = options.Optional("distribution");

        // The checks every answer gets beyond its transport's: optionally, one output must hold probabilities.
        void Verify(Expectation expectation, string? id, List<OutputTensor> outputs)
        {
            expectation.Verify(id, outputs);
            if (distribution is not null)
            {
                Expectation.VerifyDistribution(outputs, distribution);
            }
        }

        Func<Task<int>> call;
        HttpClient client;
        switch (transport)
        {
            case "grpc":
            {
                var expectation = GrpcExchange.Expect(body);
                client = GrpcExchange.CreateClient();
                call = async () =>
                {
                    var (message, bodyBytes) = await GrpcExchange.CallAsync(client, url, GrpcExchange.ModelInferPath, body);
                    var (id, outputs) = GrpcExchange.Read(message, expectation.Raw);
                    Verify(expectation, id, outputs);
                    return bodyBytes;
                };
                break;
            }
            case "rest-binary":
            {
                var headerLength = options.Int("header-length", 0, minimum: 0);
                var expectation = RestExchange.Expect(RestExchange.ModelOf(url), body, headerLength);
                client = RestExchange.CreateClient();
                call = async () =>
                {
                    var (answer, answerHeaderLength) = await RestExchange.PostAsync(client, url, body, headerLength);
                    var (id, outputs) = RestExchange.Read(answer, answerHeaderLength, binaryRequired: true);
                    Verify(expectation, id, outputs);
                    return answer.Length;
                };
                break;
            }
            default:
                throw new UsageException($"unknown transport '{transport}' (grpc, rest-binary)");
        }

        var remaining = calls;
        var failed = 0;
        var smallest = int.MaxValue;
        var largest = 0;
        string? firstError = null;
        var gate = new object();
        async Task Worker()
        {
            while (Interlocked.Decrement(ref remaining) >= 0)
            {
                try
                {
                    var bytes = await call();
                    lock (gate)
                    {
                        smallest = Math.Min(smallest, bytes);
                        largest = Math.Max(largest, bytes);
                    }
                }
                catch (Exception e) when (e is CheckException or HttpRequestException or TaskCanceledException or Google.Protobuf.InvalidProtocolBufferException)
                {
                    lock (gate)
                    {
                        failed++;
                        firstError ??= e.Message;
                    }
                }
            }
        }

        using (client)
        {
            await Task.WhenAll(Enumerable.Range(0, concurrency).Select(_ => Task.Run(Worker)));
        }

        WriteResult("check-result", json =>
        {
            json.WriteString("transport", transport);
            json.WriteNumber("calls", calls);
            json.WriteNumber("concurrency", concurrency);
            json.WriteNumber("failed", failed);
            json.WriteNumber("response_bytes", failed == calls ? 0 : smallest);
            json.WriteNumber("response_bytes_max", largest);
            if (firstError is null)
            {
                json.WriteNull("first_error");
            }
            else
            {
                json.WriteString("first_error", firstError);
            }
        });
        if (failed > 0)
        {
            Console.Error.WriteLine($"error: {failed} of {calls} calls failed; the first: {firstError}");
            return 1;
        }
        return 0;
    }

    public static async Task<int> RoundTripAsync(Options options)
    {
        var url = options.Url("url");
        var repeat = options.Int("repeat", 15);
        var warmup = options.Int("warmup", 3, minimum: 0);
        var payload = Payload.OneMiB();
        var expectation = new Expectation(RestExchange.ModelOf(url), payload.Shape, payload.Values, Raw: true);
        var jsonBody = payload.RestJsonBody();
        var (binaryBody, headerLength) = payload.RestBinaryBody();
        var forms = new[]
        {
            new RoundTripForm("binary", binaryBody, headerLength),
            new RoundTripForm("json", jsonBody, null),
        };

        using var client = RestExchange.CreateClient();
        for (var i = 0; i < warmup + repeat; i++)
        {
            // Alternate which form goes first, so that neither always follows the other.
            foreach (var form in i % 2 == 0 ? forms : forms.Reverse())
            {
                var started = Stopwatch.GetTimestamp();
                var (answer, answerHeaderLength) = await RestExchange.PostAsync(client, url, form.Body, form.HeaderLength);
                var exchanged = Stopwatch.GetTimestamp();
                var (id, outputs) = RestExchange.Read(answer, answerHeaderLength, binaryRequired: form.HeaderLength is not null);
                var decoded = Stopwatch.GetTimestamp();
                expectation.Verify(id, outputs);
                form.ResponseBytes = answer.Length;
                if (i >= warmup)
                {
                    form.ExchangeMs.Add(Stopwatch.GetElapsedTime(started, exchanged).TotalMilliseconds);
                    form.WithDecodeMs.Add(Stopwatch.GetElapsedTime(started, decoded).TotalMilliseconds);
                }
            }
        }

        WriteResult("roundtrip-result", json =>
        {
            json.WriteNumber("elements", payload.Values.Length);
            json.WriteNumber("tensor_bytes", payload.Values.Length * sizeof(float));
            json.WriteNumber("repeat", repeat);
            json.WriteNumber("warmup", warmup);
            foreach (var form in forms)
            {
                json.WriteStartObject(form.Name);
                json.WriteNumber("request_bytes", form.Body.Length);
                json.WriteNumber("response_bytes", form.ResponseBytes);
                json.WriteNumber("median_exchange_ms", Median(form.ExchangeMs));
                json.WriteNumber("median_with_decode_ms", Median(form.WithDecodeMs));
                WriteArray(json, "exchange_ms", form.ExchangeMs);
                WriteArray(json, "with_decode_ms", form.WithDecodeMs);
                json.WriteEndObject();
            }
        });
        return 0;
    }

    private static double Median(List<double> values)
    {
        var sorted = values.Order().ToArray();
        var middle = sorted.Length / 2;
        return sorted.Length % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
    }

    private static void WriteArray(Utf8JsonWriter json, string name, List<double> values)
    {
        json.WriteStartArray(name);
        foreach (var value in values)
        {
            json.WriteNumberValue(Math.Round(value, 3));
        }
        json.WriteEndArray();
    }

    private static void WriteResult(string label, Action<Utf8JsonWriter> write)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            write(json);
            json.WriteEndObject();
        }
        Console.Out.WriteLine($"{label}: {Encoding.UTF8.GetString(buffer.ToArray())}");
    }

    private sealed class RoundTripForm(string name, byte[] body, int? headerLength)
    {
        public string Name { get; } = name;

        public byte[] Body { get; } = body;

        public int? HeaderLength { get; } = headerLength;

        public int ResponseBytes { get; set; }

        public List<double> ExchangeMs { get; } = [];

        public List<double> WithDecodeMs { get; } = [];
    }
}
