using Microsoft.ML.OnnxRuntime;
using Orleans.KServe.ModelTools.Onnx;

namespace Orleans.KServe.ModelTools.Tests;

public sealed class OnnxWriterTests
{
    [Fact]
    public void VarintsFollowTheProtobufEncoding()
    {
        var writer = new ProtoWriter();
        writer.WriteInt64(1, 300);
        writer.WriteInt64(2, -1);
        writer.WriteInt32(3, -2);
        writer.WriteString(4, "hi");
        writer.WriteFloat(5, 1.0f);
        Assert.Equal(
            [
                0x08, 0xAC, 0x02,
                0x10, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01,
                0x18, 0xFE, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01,
                0x22, 0x02, (byte)'h', (byte)'i',
                0x2D, 0x00, 0x00, 0x80, 0x3F,
            ],
            writer.ToArray());
    }

    [Fact]
    public void ReaderWalksWhatTheWriterWrote()
    {
        var writer = new ProtoWriter();
        writer.WriteInt64(1, -5);
        writer.WriteMessage(7, nested =>
        {
            nested.WriteString(2, "name");
            nested.WritePackedInt64s(3, [1, 200, -3]);
        });
        writer.WriteFloat(9, 2.5f);
        var bytes = writer.ToArray();

        var reader = new ProtoReader(bytes);
        Assert.True(reader.TryReadField(out var first));
        Assert.Equal((1, WireType.Varint, -5L), (first.FieldNumber, first.WireType, first.AsInt64()));
        Assert.True(reader.TryReadField(out var message));
        Assert.Equal((7, WireType.LengthDelimited), (message.FieldNumber, message.WireType));
        var inner = new ProtoReader(message.Payload);
        Assert.True(inner.TryReadField(out var name));
        Assert.Equal("name", name.AsString());
        Assert.True(inner.TryReadField(out var packed));
        Assert.Equal(3, packed.FieldNumber);
        Assert.False(inner.TryReadField(out _));
        Assert.True(reader.TryReadField(out var last));
        Assert.Equal(2.5f, BitConverter.Int32BitsToSingle((int)last.Scalar));
        Assert.Equal(bytes.Length - last.Raw.Length, bytes.AsSpan().IndexOf(last.Raw));
        Assert.False(reader.TryReadField(out _));
    }

    [Fact]
    public void ReaderRejectsTruncatedData()
    {
        var writer = new ProtoWriter();
        writer.WriteString(1, "truncated");
        var bytes = writer.ToArray()[..^2];
        Assert.Throws<InvalidDataException>(() =>
        {
            var reader = new ProtoReader(bytes);
            reader.TryReadField(out _);
        });
    }

    [Fact]
    public void BuilderModelRunsInOnnxRuntime()
    {
        var model = new OnnxModel("affine");
        var graph = model.Graph;
        graph.AddInput("x", OnnxDataType.Float, "batch", 3);
        var w = graph.AddInitializer(OnnxTensor.FromFloats("w", [3, 2], [1, 2, 3, 4, 5, 6]));
        var b = graph.AddInitializer(OnnxTensor.FromFloats("b", [2], [0.5f, -0.5f]));
        var shape = graph.AddInitializer(OnnxTensor.FromInt64s("shape", [2], [-1, 2]));
        var y = graph.Apply("Add", "y", [graph.Apply("MatMul", "xw", ["x", w]), b]);
        graph.Apply("Reshape", "z", [y, shape]);
        graph.AddNode("Gemm", ["x", w, b], ["g"], attributes: [OnnxAttribute.Float("alpha", 2f), OnnxAttribute.Int("transA", 0)]);
        graph.AddOutput("z", OnnxDataType.Float, "batch", 2);
        graph.AddOutput("g", OnnxDataType.Float, "batch", 2);

        using var session = new InferenceSession(model.ToByteArray());
        using var runOptions = new RunOptions();
        using var value = OrtValue.CreateTensorValueFromMemory(new[] { 1f, 0f, 1f, 0f, 1f, 0f }, [2, 3]);
        using var results = session.Run(runOptions, ["x"], [value], ["z", "g"]);
        Assert.Equal([6.5f, 7.5f, 3.5f, 3.5f], results[0].GetTensorDataAsSpan<float>().ToArray());
        Assert.Equal([12.5f, 15.5f, 6.5f, 7.5f], results[1].GetTensorDataAsSpan<float>().ToArray());
    }

    [Fact]
    public void RewriterMakesOnlyTheBatchDimensionSymbolic()
    {
        // An IR 3 style graph: the initializer is also listed as a graph input, and value_info
        // pins the intermediate value to batch 4.
        var model = new OnnxModel("fixed", opset: 8) { IrVersion = 3 };
        var graph = model.Graph;
        graph.AddInput("x", OnnxDataType.Float, 4, 3);
        graph.AddInput("bias", OnnxDataType.Float, 3);
        graph.AddInitializer(OnnxTensor.FromFloats("bias", [3], [1, 2, 3]));
        graph.Apply("Relu", "y", [graph.Apply("Add", "sum", ["x", "bias"])]);
        graph.AddOutput("y", OnnxDataType.Float, 4, 3);
        graph.ValueInfo.Add(new OnnxValueInfo("sum", OnnxType.Tensor(OnnxDataType.Float, 4, 3)));
        var original = model.ToByteArray();

        var result = OnnxBatchRewriter.MakeBatchDynamic(original);
        Assert.Equal(["x"], result.RewrittenInputs);
        Assert.Equal(["y"], result.RewrittenOutputs);
        Assert.Equal(1, result.RemovedValueInfoCount);

        var summary = OnnxInspector.Read(result.Model);
        Assert.Equal(["x: tensor(float)[batch,3]", "bias: tensor(float)[3]"], summary.Inputs.Select(i => i.ToString()));
        Assert.Equal(["y: tensor(float)[batch,3]"], summary.Outputs.Select(o => o.ToString()));
        Assert.Equal(0, summary.ValueInfoCount);
        Assert.Equal(3, summary.IrVersion);

        using var session = new InferenceSession(result.Model);
        using var runOptions = new RunOptions();
        using var value = OrtValue.CreateTensorValueFromMemory(new[] { -5f, 0f, 1f, 1f, -1f, -4f }, [2, 3]);
        using var results = session.Run(runOptions, ["x"], [value], ["y"]);
        Assert.Equal([0f, 2f, 4f, 2f, 1f, 0f], results[0].GetTensorDataAsSpan<float>().ToArray());
    }

    [Fact]
    public void RewriterRejectsSomethingThatIsNotAModel()
    {
        Assert.Throws<InvalidDataException>(() => OnnxBatchRewriter.MakeBatchDynamic("not an onnx model at all"u8));
    }

    [Fact]
    public void ConcurrentAtomicWritesLeaveOneCompleteFile()
    {
        var folder = Path.Combine(Path.GetTempPath(), $"kserve-atomic-{Guid.NewGuid():N}");
        try
        {
            var path = Path.Combine(folder, "nested", "model.onnx");
            var payloads = Enumerable.Range(0, 8).Select(i => Enumerable.Repeat((byte)i, 1 << 20).ToArray()).ToArray();
            Parallel.For(0, 32, i => ModelFile.WriteAtomically(path, payloads[i % payloads.Length]));
            var written = File.ReadAllBytes(path);
            Assert.Contains(payloads, p => p.AsSpan().SequenceEqual(written));
            Assert.Equal(["model.onnx"], Directory.GetFiles(Path.GetDirectoryName(path)!).Select(Path.GetFileName));
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public void CommandLineRejectsBadArguments()
    {
        var output = new StringWriter();
        var errors = new StringWriter();
        Assert.Equal(2, ModelToolsCommand.Run([], output, errors));
        Assert.Equal(2, ModelToolsCommand.Run(["generate", "samples"], output, errors));
        Assert.Equal(2, ModelToolsCommand.Run(["generate", "test", "--bogus", "x"], output, errors));
        Assert.Equal(2, ModelToolsCommand.Run(["generate", "test", "--out"], output, errors));
        Assert.Equal(2, ModelToolsCommand.Run(["generate", "everything", "--out", "x"], output, errors));
        Assert.Contains("Usage", errors.ToString(), StringComparison.Ordinal);
    }
}
