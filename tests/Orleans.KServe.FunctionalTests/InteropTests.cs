using System.Diagnostics;
using System.Text.Json.Nodes;

namespace Orleans.KServe.FunctionalTests;

/// <summary>
/// Clients from other stacks against the real server's ports: Debian's python3-grpcio with stubs generated at test
/// time from the project's own proto (tests/interop/run-python-client.sh), and curl sending hand-built gRPC frames
/// over h2c (tests/interop/curl-grpc-frame.sh). The tools come from ./test.sh's install section; when one is missing
/// the test fails and says so.
/// </summary>
[Collection(ServerCollection.Name)]
public sealed class InteropTests(ServerFixture server)
{
    /// <summary>The scripts' exit code for "a tool is missing".</summary>
    private const int ToolMissing = 3;

    [Fact]
    public async Task Python_grpcio_client_with_stubs_from_our_proto_gets_every_rpc_answered_as_specified()
    {
        var (code, output, errors) = await RunScriptAsync("run-python-client.sh", server.GrpcAddress.ToString(), server.BaseAddress.ToString());
        var result = Parse(code, output, errors);

        Assert.True(result["ok"]?.GetValue<bool>(), $"the Python client found mismatches:\n{errors}\n{output}");
        var results = result["results"]!;
        Assert.Equal([2f, 4f, 6f, 8f], Json.Floats(results["infer_double_fp32_contents"]));
        Assert.Equal([3f, -4f, 6.5f, 2e6f], Json.Floats(results["infer_double_raw_input_contents"]));
        Assert.Equal(3, results["stream_infer_3"]!.AsArray().Count);
        Assert.Equal("NOT_FOUND", results["error_unknown_model_not_found"]?["code"]?.GetValue<string>());
        Assert.Equal("INVALID_ARGUMENT", results["error_bad_shape_invalid_argument"]?["code"]?.GetValue<string>());
        Assert.Equal("UNAVAILABLE", results["error_failed_model_unavailable"]?["code"]?.GetValue<string>());
        Assert.Equal("0a06646f75626c65", results["kserve_repository_request_field1"]?["field1_bytes"]?.GetValue<string>());
        Assert.NotNull(results["rest_v2_infer_matches_grpc"]);
    }

    [Fact]
    public async Task Curl_with_a_hand_built_grpc_frame_over_h2c_gets_a_decodable_answer_and_grpc_status_trailers()
    {
        var (code, output, errors) = await RunScriptAsync("curl-grpc-frame.sh", server.GrpcAddress.ToString());
        var result = Parse(code, output, errors);

        Assert.True(result["ok"]?.GetValue<bool>(), $"curl's gRPC frames were not answered as expected:\n{errors}\n{output}");
        var ready = result["results"]!["model_ready_double"]!;
        Assert.Equal("00000000020801", ready["body_hex"]?.GetValue<string>());
        Assert.Equal("0", ready["grpc_status"]?.GetValue<string>());
        Assert.Equal("5", result["results"]!["model_ready_unknown"]?["grpc_status"]?.GetValue<string>());
    }

    private static JsonNode Parse(int code, string output, string errors)
    {
        Assert.False(code == ToolMissing, $"an interop tool is missing; run ./test.sh, which installs it:\n{errors}");
        Assert.True(code == 0, $"the script exited {code}:\n{errors}\n{output}");
        var last = output.Split('\n', StringSplitOptions.RemoveEmptyEntries).LastOrDefault();
        Assert.True(last is not null, $"the script printed nothing:\n{errors}");
        return JsonNode.Parse(last) ?? throw new Xunit.Sdk.XunitException($"the script printed {last}");
    }

    private static async Task<(int Code, string Output, string Errors)> RunScriptAsync(string script, params string[] args)
    {
        var path = Path.Combine(Repo.Root, "tests", "interop", script);
        Assert.True(File.Exists(path), $"{path} is missing");

        var info = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = Repo.Root };
        info.ArgumentList.Add(path);
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        Process process;
        try
        {
            process = Process.Start(info)!;
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new Xunit.Sdk.XunitException($"could not start bash ({e.Message}); run ./test.sh");
        }

        using (process)
        {
            var output = process.StandardOutput.ReadToEndAsync();
            var errors = process.StandardError.ReadToEndAsync();
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(120));
            try
            {
                await process.WaitForExitAsync(timeout.Token);
            }
            catch (OperationCanceledException)
            {
                process.Kill(entireProcessTree: true);
                await process.WaitForExitAsync();
                throw new Xunit.Sdk.XunitException($"{script} ran over 120 s:\n{await errors}\n{await output}");
            }

            return (process.ExitCode, await output, await errors);
        }
    }
}
