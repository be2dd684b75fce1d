using Orleans.KServe.ModelTools.Onnx;

namespace Orleans.KServe.ModelTools;

/// <summary>
/// A fixed multi-layer perceptron classifier: <c>input</c> FP32 [batch, 64] → three ReLU
/// layers of width 1024 → 10 logits → <c>probabilities</c> (Softmax, FP32 [batch, 10]) and
/// <c>label</c> (ArgMax, INT64 [batch]).
/// The weights come from a hash of their indices, so anyone can recompute the forward pass
/// from <see cref="Weight"/> and <see cref="Bias"/> without reading the model file.
/// </summary>
public static class MlpModel
{
    public const int InputSize = 64;
    public const int HiddenSize = 1024;
    public const int HiddenLayers = 3;
    public const int Classes = 10;

    /// <summary>Number of weight layers (hidden layers plus the output layer).</summary>
    public const int Layers = HiddenLayers + 1;

    public const string InputName = "input";
    public const string ProbabilitiesName = "probabilities";
    public const string LabelName = "label";
    public const string BatchDim = "batch";

    /// <summary>Extra scale of the output layer's weights (see <see cref="Weight"/>).</summary>
    public const double OutputGain = 2.0;

    /// <summary>Biases are uniform in ±this value.</summary>
    public const double BiasRange = 0.1;

    private const ulong Seed = 0x4B5365727665ul; // "KServe"
    private const ulong WeightStream = 1;
    private const ulong BiasStream = 2;

    /// <summary>Rows of layer <paramref name="layer"/>'s weight matrix (its fan-in).</summary>
    public static int LayerInputSize(int layer)
    {
        CheckLayer(layer);
        return layer == 0 ? InputSize : HiddenSize;
    }

    /// <summary>Columns of layer <paramref name="layer"/>'s weight matrix (its fan-out).</summary>
    public static int LayerOutputSize(int layer)
    {
        CheckLayer(layer);
        return layer == HiddenLayers ? Classes : HiddenSize;
    }

    /// <summary>
    /// Element [<paramref name="row"/>, <paramref name="col"/>] of layer <paramref name="layer"/>'s
    /// weight matrix, laid out [fanIn, fanOut] so that a layer computes <c>x · W + b</c>.
    /// Layers 0–2 are hidden (ReLU) layers; layer 3 produces the logits. Values are uniform
    /// in ±sqrt(6 / fanIn) (He initialisation), which keeps activations of order one through
    /// the ReLU stack; the output layer is further scaled by <see cref="OutputGain"/> so the
    /// logits spread by a unit or two for inputs in [-1, 1]: the softmax is neither flat nor
    /// saturated (the largest probability is typically 0.2–0.6).
    /// </summary>
    public static float Weight(int layer, int row, int col)
    {
        var fanIn = LayerInputSize(layer);
        var fanOut = LayerOutputSize(layer);
        if ((uint)row >= (uint)fanIn || (uint)col >= (uint)fanOut)
        {
            throw new ArgumentOutOfRangeException(nameof(row), $"Layer {layer} weights are [{fanIn}, {fanOut}]; [{row}, {col}] is outside.");
        }

        var limit = Math.Sqrt(6.0 / fanIn) * (layer == HiddenLayers ? OutputGain : 1.0);
        return (float)(Uniform(WeightStream, layer, row, col) * limit);
    }

    /// <summary>Element <paramref name="col"/> of layer <paramref name="layer"/>'s bias, uniform in ±<see cref="BiasRange"/>.</summary>
    public static float Bias(int layer, int col)
    {
        var fanOut = LayerOutputSize(layer);
        if ((uint)col >= (uint)fanOut)
        {
            throw new ArgumentOutOfRangeException(nameof(col), $"Layer {layer} has {fanOut} outputs; {col} is outside.");
        }

        return (float)(Uniform(BiasStream, layer, 0, col) * BiasRange);
    }

    /// <summary>Builds the ONNX model.</summary>
    public static OnnxModel Build()
    {
        var model = new OnnxModel("mlp");
        var graph = model.Graph;
        graph.AddInput(InputName, OnnxDataType.Float, BatchDim, InputSize);

        var x = InputName;
        for (var layer = 0; layer < Layers; layer++)
        {
            var fanIn = LayerInputSize(layer);
            var fanOut = LayerOutputSize(layer);
            var weights = new float[fanIn * fanOut];
            for (var row = 0; row < fanIn; row++)
            {
                for (var col = 0; col < fanOut; col++)
                {
                    weights[(row * fanOut) + col] = Weight(layer, row, col);
                }
            }

            var biases = new float[fanOut];
            for (var col = 0; col < fanOut; col++)
            {
                biases[col] = Bias(layer, col);
            }

            var prefix = layer == HiddenLayers ? "output" : $"hidden{layer}";
            var w = graph.AddInitializer(OnnxTensor.FromFloats($"{prefix}.weight", [fanIn, fanOut], weights));
            var b = graph.AddInitializer(OnnxTensor.FromFloats($"{prefix}.bias", [fanOut], biases));
            var product = graph.Apply("MatMul", $"{prefix}.matmul", [x, w]);
            var sum = graph.Apply("Add", layer == HiddenLayers ? "logits" : $"{prefix}.add", [product, b]);
            x = layer == HiddenLayers ? sum : graph.Apply("Relu", $"{prefix}.relu", [sum]);
        }

        graph.Apply("Softmax", ProbabilitiesName, [x], OnnxAttribute.Int("axis", 1));
        graph.Apply("ArgMax", LabelName, [ProbabilitiesName], OnnxAttribute.Int("axis", 1), OnnxAttribute.Int("keepdims", 0));
        graph.AddOutput(ProbabilitiesName, OnnxDataType.Float, BatchDim, Classes);
        graph.AddOutput(LabelName, OnnxDataType.Int64, BatchDim);
        return model;
    }

    /// <summary>A value uniform in [-1, 1) derived from the indices alone.</summary>
    private static double Uniform(ulong stream, int layer, int row, int col)
    {
        var h = Mix(Seed ^ stream);
        h = Mix(h ^ (uint)layer);
        h = Mix(h ^ (uint)row);
        h = Mix(h ^ (uint)col);
        var unit = (h >> 11) * (1.0 / (1ul << 53)); // [0, 1)
        return (2.0 * unit) - 1.0;
    }

    /// <summary>A 64-bit finaliser (splitmix64 style): every input bit affects every output bit.</summary>
    private static ulong Mix(ulong x)
    {
        unchecked
        {
            x += 0x9E3779B97F4A7C15ul;
            x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ul;
            x = (x ^ (x >> 27)) * 0x94D049BB133111EBul;
            return x ^ (x >> 31);
        }
    }

    private static void CheckLayer(int layer)
    {
        if ((uint)layer >= Layers)
        {
            throw new ArgumentOutOfRangeException(nameof(layer), layer, $"Layers are 0..{Layers - 1}.");
        }
    }
}
