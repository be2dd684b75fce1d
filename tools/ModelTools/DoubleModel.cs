using Orleans.KServe.ModelTools.Onnx;

namespace Orleans.KServe.ModelTools;

/// <summary>The smallest useful sample: <c>output = input × 2</c> on FP32 [batch, 2].</summary>
public static class DoubleModel
{
    public const string InputName = "input";
    public const string OutputName = "output";
    public const int Width = 2;

    public static OnnxModel Build() => Build(2.0f);

    /// <summary>The same model multiplying by <paramref name="factor"/> (swap tests tell two artifacts apart by it).</summary>
    public static OnnxModel Build(float factor)
    {
        var model = new OnnxModel(factor == 2.0f ? "double" : "scale");
        var graph = model.Graph;
        graph.AddInput(InputName, OnnxDataType.Float, "batch", Width);
        var two = graph.AddInitializer(OnnxTensor.Scalar(factor == 2.0f ? "two" : "factor", factor));
        graph.Apply("Mul", OutputName, [InputName, two]);
        graph.AddOutput(OutputName, OnnxDataType.Float, "batch", Width);
        return model;
    }
}
