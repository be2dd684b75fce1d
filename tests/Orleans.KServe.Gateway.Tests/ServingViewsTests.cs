using System.Collections.Immutable;
using System.Reflection;
using Google.Protobuf.Reflection;
using Orleans.KServe.Contracts.Models;
using Orleans.KServe.Contracts.Tensors;
using Orleans.KServe.Gateway.Serving;

namespace Orleans.KServe.Gateway.Tests;

/// <summary>The views REST and gRPC both answer with, tested once here rather than per transport.</summary>
public sealed class ServingViewsTests
{
    [Theory]
    [InlineData(ModelState.Loaded, "READY")]
    [InlineData(ModelState.Loading, "LOADING")]
    [InlineData(ModelState.Pending, "LOADING")]
    [InlineData(ModelState.FailedToLoad, "UNAVAILABLE")]
    [InlineData(ModelState.Unloaded, "UNAVAILABLE")]
    [InlineData(ModelState.Retired, "UNAVAILABLE")]
    public void Each_model_state_has_its_triton_index_state(ModelState state, string expected)
    {
        Assert.Equal(expected, ServingViews.TritonState(state));
        Assert.Equal(state == ModelState.Loaded, ServingViews.Index("m", "1", new ModelStatus(state)).Ready);
    }

    [Fact]
    public void An_index_entry_leads_its_reason_with_the_typed_failure_reason()
    {
        var failed = new ModelStatus(ModelState.FailedToLoad, "ONNX Runtime cannot load 'model.onnx'") { FailureReason = FailureReasons.ModelLoadFailed };
        Assert.Equal(new IndexEntry("m", "2", "UNAVAILABLE", "ModelLoadFailed: ONNX Runtime cannot load 'model.onnx'", false), ServingViews.Index("m", "2", failed));
        Assert.Equal("unloaded through the repository extension", ServingViews.IndexReason(new ModelStatus(ModelState.Unloaded, "unloaded through the repository extension")));
        Assert.Equal("", ServingViews.IndexReason(new ModelStatus(ModelState.Loaded)));
    }

    [Fact]
    public void The_config_view_names_triton_types_and_keeps_the_policy_and_batching()
    {
        var batching = new BatchingSettings { MaxBatchSize = 8, MaxQueueDelayMicroseconds = 500, PreferredBatchSizes = [4, 8] };
        var config = new ModelConfiguration("text", "onnxruntime_onnx", "onnxruntime", 8,
            [new TensorMetadata("text", TensorDataType.Bytes, [3])], [new TensorMetadata("score", TensorDataType.FP32, [])], 2, ["1", "3"])
        {
            Batching = batching,
        };
        var policy = ModelVersionPolicy.SpecificOf([1, 3]);

        var view = ServingViews.Config(config, policy);

        Assert.Equal(("text", "onnxruntime_onnx", "onnxruntime", 8, 2), (view.Name, view.Platform, view.Backend, view.MaxBatchSize, view.InstanceCount));
        Assert.Same(policy, view.VersionPolicy);
        Assert.Same(batching, view.Batching);
        var input = Assert.Single(view.Inputs);
        Assert.Equal(("text", "TYPE_STRING", 13), (input.Name, input.DataType.ConfigName, input.DataType.Number));
        Assert.Equal([3L], input.Dims.ToArray());
        Assert.Equal(("TYPE_FP32", 11), (view.Outputs[0].DataType.ConfigName, view.Outputs[0].DataType.Number));
    }

    [Fact]
    public void Every_protocol_datatype_has_the_triton_type_of_the_grpc_enum()
    {
        var proto = typeof(Orleans.KServe.Grpc.DataType).GetFields(BindingFlags.Public | BindingFlags.Static)
            .ToDictionary(f => f.GetCustomAttribute<OriginalNameAttribute>()!.Name, f => (int)f.GetValue(null)!);
        foreach (var type in TensorDataTypes.All)
        {
            var triton = TritonTypes.Of(type);
            Assert.True(proto.TryGetValue(triton.ConfigName, out var number), $"{type}: {triton.ConfigName} is not in model_config.proto's DataType");
            Assert.Equal(number, triton.Number);
        }
    }

    [Fact]
    public void A_version_policy_writes_as_its_annotation_reads()
    {
        Assert.Equal("latest:1", ModelVersionPolicy.Default.ToString());
        Assert.Equal("latest:3", ModelVersionPolicy.LatestOf(3).ToString());
        Assert.Equal("all", ModelVersionPolicy.All.ToString());
        Assert.Equal("specific:1,3", ModelVersionPolicy.SpecificOf([1, 3]).ToString());
        Assert.True(ModelVersionPolicy.SpecificOf([1, 3]).SameAs(ModelVersionPolicy.SpecificOf(ImmutableArray.Create(1L, 3L))));
        Assert.False(ModelVersionPolicy.SpecificOf([1, 3]).SameAs(ModelVersionPolicy.SpecificOf([1])));
    }

    [Theory]
    [InlineData(ModelState.FailedToLoad, "not ready: it failed to load: why")]
    [InlineData(ModelState.Unloaded, "unloaded")]
    [InlineData(ModelState.Retired, "retired: a newer revision serves in its place")]
    [InlineData(ModelState.Loading, "loading")]
    public void A_model_that_is_not_ready_says_why(ModelState state, string expected) =>
        Assert.Equal(expected, ServingViews.NotReady(new ModelStatus(state, "why")));

    [Fact]
    public void The_server_describes_itself_with_the_extensions_it_serves()
    {
        Assert.Equal("orleans-kserve", ServerDescription.Name);
        Assert.Equal(["model_repository", "model_configuration", "statistics", "binary_tensor_data"], ServerDescription.Extensions);
        Assert.Matches(@"^\d+\.\d+\.\d+", ServerDescription.Version);
    }
}
