using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Orleans.KServe.ModelTools;
using Orleans.KServe.Gateway;
using Orleans.KServe.Silo;

namespace Orleans.KServe.FunctionalTests;

/// <summary>Paths of the repository the tests run in.</summary>
public static class Repo
{
    public static string Root { get; } = FindRoot();

    public static string SampleModels => Path.Combine(Root, "samples", "models");

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Orleans.KServe.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("the tests run outside the repository");
    }
}

/// <summary>
/// A real server (one silo with the gateway co-hosted, real Kestrel on 127.0.0.1 with an ephemeral port) over a
/// model repository the fixture writes: the sample models plus models and resources that cannot be served.
/// </summary>
public class ServerFixture : IAsyncLifetime
{
    private WebApplication? _app;

    public string Repository { get; } = Directory.CreateTempSubdirectory("kserve-functional-").FullName;

    public HttpClient Http { get; private set; } = null!;

    public Uri BaseAddress { get; private set; } = null!;

    public Uri GrpcAddress { get; private set; } = null!;

    /// <summary>Lets a derived fixture add resources to the repository before the server starts.</summary>
    protected virtual void WriteMore(string folder)
    {
    }

    /// <summary>Extra server arguments a derived fixture adds.</summary>
    protected virtual IEnumerable<string> ExtraArguments => [];

    /// <summary>False for a fixture that serves only what <see cref="WriteMore"/> writes.</summary>
    protected virtual bool WriteSamples => true;

    public WebApplication App => _app!;

    public virtual async Task InitializeAsync()
    {
        if (WriteSamples)
        {
            WriteRepository(Repository);
        }

        WriteMore(Repository);
        _app = SiloHost.Build(
        [
            "--http-port", "0", "--grpc-port", "0", "--silo-port", "0", "--gateway-port", "0", "--model-repository", Repository,
            "--max-request-body-bytes", (8 * 1024 * 1024).ToString(), "--drain-delay", "0", .. ExtraArguments,
        ]);
        await _app.StartAsync();
        var endpoints = _app.Services.GetRequiredService<ServerEndpoints>();
        BaseAddress = endpoints.HttpAddress;
        GrpcAddress = endpoints.GrpcAddress;
        Http = new HttpClient { BaseAddress = BaseAddress, Timeout = TimeSpan.FromSeconds(60) };
        await WaitReadyAsync();
    }

    private Task WaitReadyAsync() => Wait.UntilAsync(async () =>
    {
        using var response = await Http.GetAsync("/v2/health/ready");
        return response.IsSuccessStatusCode;
    }, $"the server at {BaseAddress} to be ready", TimeSpan.FromSeconds(60));

    public virtual async Task DisposeAsync()
    {
        Http?.Dispose();
        if (_app is not null)
        {
            await _app.StopAsync();
            await _app.DisposeAsync();
        }

        Directory.Delete(Repository, recursive: true);
    }

    /// <summary>The sample resources (pointing at the built sample models) plus failure cases.</summary>
    public static void WriteRepository(string folder)
    {
        var models = Repo.SampleModels;
        File.WriteAllText(Path.Combine(folder, "samples.yaml"), $$"""
            apiVersion: serving.kserve.io/v1beta1
            kind: InferenceService
            metadata:
              name: double
            spec:
              predictor:
                model:
                  modelFormat:
                    name: onnx
                  storageUri: file://{{models}}/double
            ---
            apiVersion: serving.kserve.io/v1beta1
            kind: InferenceService
            metadata:
              name: mlp
            spec:
              predictor:
                model:
                  modelFormat:
                    name: onnx
                  protocolVersion: v2
                  storageUri: file://{{models}}/mlp
            ---
            apiVersion: serving.kserve.io/v1beta1
            kind: InferenceService
            metadata:
              name: resnet18
            spec:
              predictor:
                onnx:
                  storageUri: file://{{models}}/resnet18/model.onnx
            ---
            apiVersion: serving.kserve.io/v1beta1
            kind: InferenceService
            metadata:
              name: uppercase
            spec:
              predictor:
                model:
                  modelFormat: {name: onnx}
                  storageUri: file://{{models}}/uppercase
            """);

        // Relative file:// paths resolve against the YAML's own folder.
        var bad = Path.Combine(folder, "broken-models");
        Directory.CreateDirectory(bad);
        TestModels.BuildZipMap().Save(Path.Combine(bad, "zipmap", "model.onnx"));
        TestModels.BuildExternalData().Save(Path.Combine(bad, "external-data", "model.onnx"));
        File.WriteAllText(Path.Combine(bad, "unservable.yaml"), """
            apiVersion: serving.kserve.io/v1beta1
            kind: InferenceService
            metadata:
              name: zipmap
            spec:
              predictor:
                onnx:
                  storageUri: file://zipmap
            ---
            apiVersion: serving.kserve.io/v1beta1
            kind: InferenceService
            metadata:
              name: external-data
            spec:
              predictor:
                model:
                  modelFormat: {name: onnx}
                  storageUri: file://external-data
            ---
            apiVersion: serving.kserve.io/v1beta1
            kind: InferenceService
            metadata:
              name: sklearn-iris
            spec:
              predictor:
                sklearn:
                  storageUri: gs://kfserving-examples/models/sklearn/1.0/model
            """);
        // One identity model per datatype, in Triton's <version>/model.onnx layout.
        var identities = new System.Text.StringBuilder();
        foreach (var datatype in TestModels.IdentityDatatypes)
        {
            TestModels.BuildIdentity(datatype.ElementType).Save(Path.Combine(folder, "identity", datatype.FolderName, "1", "model.onnx"));
            identities.Append($$"""
                apiVersion: serving.kserve.io/v1beta1
                kind: InferenceService
                metadata:
                  name: {{datatype.FolderName}}
                spec:
                  predictor:
                    model:
                      modelFormat:
                        name: onnx
                      storageUri: file://{{datatype.FolderName}}
                ---

                """);
        }

        File.WriteAllText(Path.Combine(folder, "identity", "identities.yaml"), identities.ToString());
        File.WriteAllText(Path.Combine(folder, "broken.yaml"), "apiVersion: serving.kserve.io/v1beta1\nkind: InferenceService\nmetadata: [unclosed\n");
    }

    public async Task<(int Status, JsonNode? Body)> PostJsonAsync(string path, string json)
    {
        using var response = await Http.PostAsync(path, new StringContent(json, Encoding.UTF8, "application/json"));
        return ((int)response.StatusCode, await ReadBodyAsync(response));
    }

    public async Task<(int Status, JsonNode? Body)> GetJsonAsync(string path)
    {
        using var response = await Http.GetAsync(path);
        return ((int)response.StatusCode, await ReadBodyAsync(response));
    }

    private static async Task<JsonNode?> ReadBodyAsync(HttpResponseMessage response)
    {
        var text = await response.Content.ReadAsStringAsync();
        if (text.Length == 0)
        {
            return null;
        }

        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        return JsonNode.Parse(text);
    }
}

[CollectionDefinition(Name)]
public sealed class ServerCollection : ICollectionFixture<ServerFixture>
{
    public const string Name = "server";
}

/// <summary>JSON helpers for assertions.</summary>
public static class Json
{
    public static float[] Floats(JsonNode? node) => node!.AsArray().Select(n => n!.GetValue<float>()).ToArray();

    public static string Error(JsonNode? body) => body?["error"]?.GetValue<string>() ?? throw new Xunit.Sdk.XunitException($"no error in {body?.ToJsonString()}");

    public static string Array(IEnumerable<float> values) => "[" + string.Join(",", values.Select(v => v.ToString("R", System.Globalization.CultureInfo.InvariantCulture))) + "]";
}
