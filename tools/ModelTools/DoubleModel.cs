using Orleans.KServe.ModelTools.Onnx;

namespace Orleans.KServe.ModelTools;

/// <summary>The smallest useful sample: <c>output = input × 2</c> on FP32 [batch, 2].</summary>
public static class DoubleModel
{
    public const string InputName = "input";
    public const string OutputName = "output";
    public const int Width = 2;

    public static OnnxModel Build()
    {
        var model = new OnnxModel("double");
        var graph = model.Graph;
        graph.AddInput(InputName, OnnxDataType.Float, "batch", Width);
        var two = graph.AddInitializer(OnnxTensor.Scalar("two", 2.0f));
        graph.Apply("Mul", OutputName, [InputName, two]);
        graph.AddOutput(OutputName, OnnxDataType.Float, "batch", Width);
        return model;
    }
}
