using System.Globalization;
using System.IO.Compression;
using System.Text;
using Google.Protobuf;
using Orleans.KServe.FunctionalTests.Fuzz;
using Orleans.KServe.Grpc;
using Orleans.KServe.ModelTools;
using Xunit.Abstractions;

namespace Orleans.KServe.FunctionalTests;

/// <summary>
/// The server the fuzzers run against: the test repository plus <c>scratch</c>, a model the repository rpcs may
/// load and unload as they like, and a 1 MiB inflate limit so that compressed mutants reach it quickly.
/// </summary>
public sealed class FuzzServerFixture : ServerFixture
{
    protected override IEnumerable<string> ExtraArguments => ["--grpc-max-decompressed-bytes", (1024 * 1024).ToString(CultureInfo.InvariantCulture)];

    protected override void WriteMore(string folder)
    {
        DoubleModel.Build().Save(Path.Combine(folder, "scratch", "model.onnx"));
        File.WriteAllText(Path.Combine(folder, "scratch.yaml"), """
            apiVersion: serving.kserve.io/v1beta1
            kind: InferenceService
            metadata:
              name: scratch
            spec:
              predictor:
                model:
                  modelFormat: {name: onnx}
                  storageUri: file://scratch
            """);
    }
}

/// <summary>
/// Structured fuzzing of every rpc and every REST route, with a fixed seed and a fixed number of cases: every mutant
/// gets a 2xx or 4xx (501 and 503 where the route means them) or an accepted gRPC status, never a 500, UNKNOWN,
/// INTERNAL, a dropped connection or a hang; and every case that ever failed, kept in <c>Fuzz/Corpus</c>, answers
/// what it answers since its fix. A failing mutant is printed, and written under <c>fuzz-failures/</c> of the test
/// output, in the corpus's format, ready to be added to it.
/// </summary>
public sealed class FuzzTests(FuzzServerFixture server, ITestOutputHelper output) : IClassFixture<FuzzServerFixture>
{
    private const int Seed = 20261201;
    private const int CasesPerRpc = 150;
    private const int RestCases = 1500;

    private static ModelInferRequest TypedDouble()
    {
        var request = new ModelInferRequest { ModelName = "double", Id = "f", ModelVersion = "1" };
        var input = new ModelInferRequest.Types.InferInputTensor { Name = "input", Datatype = "FP32", Contents = new InferTensorContents() };
        input.Shape.Add([2, 2]);
        input.Contents.Fp32Contents.Add([1f, 2f, 3f, 4f]);
        input.Parameters["binary_data_size"] = new InferParameter { Int64Param = 16 };
        request.Inputs.Add(input);
        request.Outputs.Add(new ModelInferRequest.Types.InferRequestedOutputTensor { Name = "output" });
        request.Parameters["priority"] = new InferParameter { Int64Param = 1 };
        return request;
    }

    private static ModelInferRequest RawIdentity(string model, string datatype, byte[] raw, params long[] shape)
    {
        var request = new ModelInferRequest { ModelName = model };
        var input = new ModelInferRequest.Types.InferInputTensor { Name = model == "uppercase" ? "text" : "input", Datatype = datatype };
        input.Shape.Add(shape);
        request.Inputs.Add(input);
        request.RawInputContents.Add(ByteString.CopyFrom(raw));
        return request;
    }

    private static ModelInferRequest TypedText()
    {
        var request = new ModelInferRequest { ModelName = "uppercase" };
        var input = new ModelInferRequest.Types.InferInputTensor { Name = "text", Datatype = "BYTES", Contents = new InferTensorContents() };
        input.Shape.Add(2);
        input.Contents.BytesContents.Add([ByteString.CopyFromUtf8("hello"), ByteString.CopyFromUtf8("w\u00f6rld")]);
        request.Inputs.Add(input);
        return request;
    }

    /// <summary>Valid messages of every rpc, the fuzzers' starting points.</summary>
    private static readonly (string Rpc, IMessage[] Seeds)[] Rpcs =
    [
        ("ServerLive", [new ServerLiveRequest()]),
        ("ServerReady", [new ServerReadyRequest()]),
        ("ModelReady", [new ModelReadyRequest { Name = "double", Version = "1" }, new ModelReadyRequest { Name = "zipmap" }]),
        ("ServerMetadata", [new ServerMetadataRequest()]),
        ("ModelMetadata", [new ModelMetadataRequest { Name = "mlp" }, new ModelMetadataRequest { Name = "identity-int8", Version = "1" }]),
        ("ModelInfer", [TypedDouble(), TypedText(), RawIdentity("identity-int64", "INT64", new byte[16], 1, 2), RawIdentity("uppercase", "BYTES", [2, 0, 0, 0, (byte)'o', (byte)'k'], 1)]),
        ("ModelStreamInfer", [TypedDouble(), TypedText()]),
        ("ModelConfig", [new ModelConfigRequest { Name = "mlp" }]),
        ("ModelStatistics", [new ModelStatisticsRequest { Name = "double", Version = "1" }, new ModelStatisticsRequest()]),
        ("RepositoryIndex", [new RepositoryIndexRequest { Ready = true, RepositoryName = "r" }]),
        ("RepositoryModelLoad", [new RepositoryModelLoadRequest { ModelName = "scratch" }, new RepositoryModelLoadRequest { TritonModelName = "scratch" }]),
        ("RepositoryModelUnload", [new RepositoryModelUnloadRequest { ModelName = "scratch" }]),
    ];

    [Fact]
    public async Task Every_rpc_answers_structured_mutants_with_an_accepted_status()
    {
        var random = new Random(Seed);
        var cases = new List<FuzzCase>();
        foreach (var (rpc, seeds) in Rpcs)
        {
            for (var i = 0; i < CasesPerRpc; i++)
            {
                var message = seeds[random.Next(seeds.Length)].ToByteArray();
                var mutant = random.Next(10) == 0 ? message : ProtobufMutator.Mutate(message, random);
                var (body, encoding) = ProtobufMutator.Frame(mutant, random);
                cases.Add(encoding is null ? FuzzCase.Grpc(rpc, body) : FuzzCase.Grpc(rpc, body, ("grpc-encoding", encoding)));
            }
        }

        await RunAsync(cases);
    }

    private static readonly string[] Models =
    [
        "double", "mlp", "uppercase", "identity-bytes", "identity-fp16", "zipmap", "sklearn-iris", "external-data", "no-such-model", "scratch",
        "DOUBLE", "double%2F1", "a%2Fb", "..", "%2E%2E", "%C3%BC", "%FF", "double%00", "double;x=1", "double:predict", new string('m', 3000),
    ];

    private static readonly string[] ServingModels = ["double", "mlp", "uppercase", "identity-bytes", "identity-fp16", "identity-int8", "identity-bool"];

    private static readonly (string Method, string Path)[] InferRoutes =
        [("POST", "/v2/models/{m}/infer"), ("POST", "/v2/models/{m}/versions/{v}/infer"), ("POST", "/v1/models/{m}:predict")];

    private static readonly string[] RepositoryModels = ["scratch", "no-such-model", "..", "%FF", "scratch%00", new string('s', 3000)];

    private static readonly string[] Versions = ["1", "2", "0", "-1", "99999999999999999999", "x", "%20", "1.0"];

    /// <summary>Every REST route, with {m} for a model name and {v} for a version.</summary>
    private static readonly (string Method, string Path)[] Routes =
    [
        ("GET", "/"), ("GET", "/v2"), ("GET", "/v2/health/live"), ("GET", "/v2/health/ready"), ("GET", "/v2/models"),
        ("GET", "/v2/models/{m}"), ("GET", "/v2/models/{m}/versions/{v}"), ("GET", "/v2/models/{m}/ready"), ("GET", "/v2/models/{m}/versions/{v}/ready"),
        ("POST", "/v2/models/{m}/infer"), ("POST", "/v2/models/{m}/versions/{v}/infer"),
        ("GET", "/v2/models/stats"), ("GET", "/v2/models/{m}/stats"), ("GET", "/v2/models/{m}/versions/{v}/stats"),
        ("GET", "/v2/models/{m}/config"), ("GET", "/v2/models/{m}/versions/{v}/config"),
        ("POST", "/v2/repository/index"), ("GET", "/v2/repository/index"), ("POST", "/v2/repository/models/{m}/load"), ("POST", "/v2/repository/models/{m}/unload"),
        ("GET", "/v1/models"), ("GET", "/v1/models/{m}"), ("POST", "/v1/models/{m}:predict"), ("POST", "/v1/models/{m}:explain"),
        ("GET", "/metrics"),
    ];

    private static readonly string[] V2Seeds =
    [
        """{"id":"a","inputs":[{"name":"input","shape":[2,2],"datatype":"FP32","data":[[1,2],[3,4]]}],"outputs":[{"name":"output","parameters":{"binary_data":true}}]}""",
        """{"inputs":[{"name":"text","shape":[2],"datatype":"BYTES","data":["hello","w\u00f6rld"]}],"parameters":{"binary_data_output":true}}""",
        """{"inputs":[{"name":"input","shape":[2,1],"datatype":"INT8","data":[-1,7]}],"parameters":{"priority":1,"timeout":1000}}""",
        """{"inputs":[{"name":"input","shape":[1,2],"datatype":"FP16","data":[0.5,2]}]}""",
        """{"inputs":[{"name":"input","shape":[1,2],"datatype":"BOOL","data":[true,false]}]}""",
    ];

    private static readonly string[] V1Seeds =
    [
        """{"instances":[[1,2],[3,4]]}""",
        """{"instances":["hello","w\u00f6rld"]}""",
        """{"inputs":{"input":[[1,2]]}}""",
        """{"instances":[{"input":[1,2]}]}""",
    ];

    private static readonly string[] ContentTypes = ["application/json", "application/octet-stream", "text/plain", "application/json; charset=latin1", ""];

    [Fact]
    public async Task Every_rest_route_answers_structured_mutants_without_a_server_error()
    {
        var random = new Random(Seed);
        var cases = new List<FuzzCase>();
        for (var i = 0; i < RestCases; i++)
        {
            // Half the cases are inferences on models that serve, where the bodies are read; the rest spread over every route.
            var (method, template) = random.Next(2) == 0 ? InferRoutes[random.Next(InferRoutes.Length)] : Routes[random.Next(Routes.Length)];

            // Loads and unloads leave the models the other cases use alone.
            var models = template.StartsWith("/v2/repository/models", StringComparison.Ordinal) ? RepositoryModels
                : random.Next(3) != 0 ? ServingModels : Models;
            var path = template.Replace("{m}", models[random.Next(models.Length)]).Replace("{v}", Versions[random.Next(Versions.Length)]);
            if (random.Next(12) == 0)
            {
                method = new[] { "GET", "POST", "PUT", "DELETE", "PATCH" }[random.Next(5)];
            }

            var headers = new List<(string, string)>();
            var body = Array.Empty<byte>();
            if (template.EndsWith("/infer", StringComparison.Ordinal))
            {
                body = random.Next(4) == 0 ? BinaryMutant(random, headers) : JsonMutator.Mutate(V2Seeds[random.Next(V2Seeds.Length)], random);
            }
            else if (template.EndsWith(":predict", StringComparison.Ordinal) || template.EndsWith(":explain", StringComparison.Ordinal))
            {
                body = JsonMutator.Mutate(V1Seeds[random.Next(V1Seeds.Length)], random);
            }
            else if (method == "POST" && random.Next(2) == 0)
            {
                body = JsonMutator.Mutate("""{"ready":true,"parameters":{"unload_dependents":false}}""", random);
            }

            if (body.Length > 0 || method == "POST")
            {
                var type = ContentTypes[random.Next(ContentTypes.Length)];
                if (type.Length > 0 && !headers.Any(h => h.Item1 == "Content-Type"))
                {
                    headers.Add(("Content-Type", type));
                }

                body = Encode(body, random, headers);
            }

            if (random.Next(4) == 0)
            {
                headers.Add(("Accept-Encoding", new[] { "gzip", "deflate", "br", "gzip;q=0", "*", "identity" }[random.Next(6)]));
            }

            cases.Add(FuzzCase.Rest(method, path, body, [.. headers]));
        }

        await RunAsync(cases);
    }

    // A binary-extension body: a JSON header whose sizes may lie, and data that may be cut or padded.
    private static byte[] BinaryMutant(Random random, List<(string, string)> headers)
    {
        var text = random.Next(2) == 0;
        var payload = text ? [5, 0, 0, 0, .. "hello"u8.ToArray(), 2, 0, 0, 0, 0xC3, 0xA9] : new byte[8];
        var declared = random.Next(4) == 0 ? new[] { -1, 0, payload.Length - 1, payload.Length + 1, int.MaxValue }[random.Next(5)] : payload.Length;
        if (random.Next(3) == 0 && payload.Length > 0)
        {
            payload[random.Next(payload.Length)] = (byte)random.Next(256);
        }

        var json = JsonMutator.Mutate(
            $$$"""{"inputs":[{"name":"{{{(text ? "text" : "input")}}}","shape":{{{(text ? "[2]" : "[1,2]")}}},"datatype":"{{{(text ? "BYTES" : "FP32")}}}","parameters":{"binary_data_size":{{{declared}}}}}]}""",
            random);
        var length = random.Next(6) switch { 0 => json.Length + 1 + random.Next(100), 1 => Math.Max(0, json.Length - 1 - random.Next(10)), 2 => -1, _ => json.Length };
        headers.Add(("Inference-Header-Content-Length", length.ToString(CultureInfo.InvariantCulture)));
        headers.Add(("Content-Type", "application/octet-stream"));
        return [.. json, .. payload];
    }

    // Sometimes a Content-Encoding, with the body compressed by it, or not.
    private static byte[] Encode(byte[] body, Random random, List<(string, string)> headers)
    {
        switch (random.Next(10))
        {
            case 0:
                headers.Add(("Content-Encoding", "gzip"));
                using (var output = new MemoryStream())
                {
                    using (var gzip = new GZipStream(output, CompressionLevel.Fastest, true))
                    {
                        gzip.Write(body);
                    }

                    var compressed = output.ToArray();
                    if (random.Next(3) == 0 && compressed.Length > 0)
                    {
                        compressed[random.Next(compressed.Length)] ^= 0x5A;
                    }

                    return compressed;
                }

            case 1:
                headers.Add(("Content-Encoding", new[] { "deflate", "br", "gzip, gzip", "x-unknown" }[random.Next(4)]));
                return body;
            default:
                return body;
        }
    }

    [Fact]
    public async Task Every_case_that_ever_failed_answers_as_it_does_since_its_fix()
    {
        var folder = Path.Combine(Repo.Root, "tests", "Orleans.KServe.FunctionalTests", "Fuzz", "Corpus");
        var files = Directory.GetFiles(folder, "*.case").Order(StringComparer.Ordinal).ToList();
        Assert.True(files.Count >= 8, $"the corpus in {folder} lost its cases");
        using var client = new FuzzClient(server.BaseAddress, server.GrpcAddress);
        var wrong = new List<string>();
        foreach (var file in files)
        {
            var c = FuzzCase.Parse(File.ReadAllText(file));
            var outcome = await client.SendAsync(c);
            if (outcome != c.Expect)
            {
                wrong.Add($"{Path.GetFileName(file)}: expected {c.Expect}, got {outcome} ({c.Note})");
            }
        }

        Assert.True(wrong.Count == 0, string.Join("\n", wrong));
    }

    private async Task RunAsync(List<FuzzCase> cases)
    {
        using var client = new FuzzClient(server.BaseAddress, server.GrpcAddress);
        var failures = new List<(FuzzCase Case, string Outcome)>();
        var outcomes = new Dictionary<string, int>();
        foreach (var c in cases)
        {
            var outcome = await client.SendAsync(c);
            outcomes[outcome] = outcomes.GetValueOrDefault(outcome) + 1;
            if (!FuzzClient.Accepted(outcome))
            {
                failures.Add((c, outcome));
            }
        }

        output.WriteLine($"{cases.Count} cases: " + string.Join(", ", outcomes.OrderByDescending(o => o.Value).Select(o => $"{o.Key} × {o.Value}")));
        if (failures.Count > 0)
        {
            var folder = Path.Combine(AppContext.BaseDirectory, "fuzz-failures");
            Directory.CreateDirectory(folder);
            var text = new StringBuilder();
            for (var i = 0; i < failures.Count; i++)
            {
                var (c, outcome) = failures[i];
                var corpus = c.ToCorpus("<the status it should get>", $"{c.Target} answered {outcome}");
                File.WriteAllText(Path.Combine(folder, $"{c.Transport}-{i:D4}.case"), corpus);
                if (i < 5)
                {
                    text.AppendLine(corpus);
                }
            }

            Assert.Fail($"{failures.Count} of {cases.Count} mutants got an answer no client mistake may get (all written to {folder}); the first:\n{text}");
        }

        // And the server still serves.
        var (status, _) = await server.PostJsonAsync("/v2/models/double/infer", """{"inputs":[{"name":"input","shape":[1,2],"datatype":"FP32","data":[1,2]}]}""");
        Assert.Equal(200, status);
    }
}
