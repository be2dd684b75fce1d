using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Orleans.KServe.ModelTools.Onnx;

namespace Orleans.KServe.ModelTools.Tests;

[Collection(GeneratedModelsCollection.Name)]
public sealed class SampleModelTests(GeneratedModelsFixture models)
{
    [Theory]
    [InlineData(1)]
    [InlineData(5)]
    public void DoubleModelDoublesItsInput(int batch)
    {
        using var session = GeneratedModelsFixture.Open(models.Sample(SampleModels.DoubleFolder));
        var input = session.InputMetadata["input"];
        Assert.Equal(TensorElementType.Float, input.ElementDataType);
        Assert.Equal([-1, 2], input.Dimensions);
        Assert.Equal("batch", input.SymbolicDimensions[0]);
        Assert.Equal([-1, 2], session.OutputMetadata["output"].Dimensions);

        var data = Enumerable.Range(0, batch * 2).Select(i => (i * 0.75f) - 3.1f).ToArray();
        using var value = OrtValue.CreateTensorValueFromMemory(data, [batch, 2]);
        using var runOptions = new RunOptions();
        using var results = session.Run(runOptions, ["input"], [value], ["output"]);
        var output = results[0];
        Assert.Equal([batch, 2], output.GetTensorTypeAndShape().Shape);
        Assert.Equal(data.Select(x => x * 2).ToArray(), output.GetTensorDataAsSpan<float>().ToArray());
    }

    [Fact]
    public void MlpMatchesAnIndependentDoublePrecisionForwardPass()
    {
        using var session = GeneratedModelsFixture.Open(models.Sample(SampleModels.MlpFolder));
        Assert.Equal([-1, MlpModel.InputSize], session.InputMetadata["input"].Dimensions);
        Assert.Equal([-1, MlpModel.Classes], session.OutputMetadata["probabilities"].Dimensions);
        Assert.Equal(TensorElementType.Int64, session.OutputMetadata["label"].ElementDataType);
        Assert.Equal([-1], session.OutputMetadata["label"].Dimensions);

        const int batch = 6;
        var random = new Random(20240611);
        var inputs = new float[batch * MlpModel.InputSize];
        for (var i = 0; i < inputs.Length; i++)
        {
            inputs[i] = (float)((random.NextDouble() * 2) - 1);
        }

        // Row 0 is all zeros: only the biases drive it. Row 1 is the extreme corner.
        Array.Fill(inputs, 0f, 0, MlpModel.InputSize);
        Array.Fill(inputs, 1f, MlpModel.InputSize, MlpModel.InputSize);

        using var value = OrtValue.CreateTensorValueFromMemory(inputs, [batch, MlpModel.InputSize]);
        using var runOptions = new RunOptions();
        using var results = session.Run(runOptions, ["input"], [value], ["probabilities", "label"]);
        Assert.Equal([batch, MlpModel.Classes], results[0].GetTensorTypeAndShape().Shape);
        Assert.Equal([batch], results[1].GetTensorTypeAndShape().Shape);
        var probabilities = results[0].GetTensorDataAsSpan<float>().ToArray();
        var labels = results[1].GetTensorDataAsSpan<long>().ToArray();

        var reference = ReferenceForward(inputs, batch);
        for (var b = 0; b < batch; b++)
        {
            var expected = reference[b];
            var actual = probabilities.AsSpan(b * MlpModel.Classes, MlpModel.Classes);
            for (var c = 0; c < MlpModel.Classes; c++)
            {
                var tolerance = 1e-4 * Math.Abs(expected[c]) + 1e-7;
                Assert.True(Math.Abs(actual[c] - expected[c]) <= tolerance, $"row {b} class {c}: ORT {actual[c]}, reference {expected[c]}");
            }

            double sum = 0;
            foreach (var p in actual)
            {
                sum += p;
            }

            Assert.InRange(sum, 1 - 1e-5, 1 + 1e-5);

            // Not saturated, not flat: the weights are scaled to keep the logits of order one.
            // (Row 0 only sees the biases, so it is allowed to be nearly uniform.)
            Assert.InRange(expected.Max(), b == 0 ? 0.1 : 0.2, 0.99);
            Assert.True(expected.Min() > 1e-4, $"row {b}: smallest probability {expected.Min()}");

            var best = Array.IndexOf(expected, expected.Max());
            var runnerUp = expected.Where((_, i) => i != best).Max();
            if (expected[best] - runnerUp > 1e-4)
            {
                Assert.Equal(best, labels[b]);
            }
            else
            {
                Assert.True(Math.Abs(expected[labels[b]] - expected[best]) <= 1e-4);
            }
        }
    }

    [Fact]
    public void MlpWeightsAreDeterministicAndBounded()
    {
        for (var layer = 0; layer < MlpModel.Layers; layer++)
        {
            var limit = Math.Sqrt(6.0 / MlpModel.LayerInputSize(layer)) * (layer == MlpModel.HiddenLayers ? MlpModel.OutputGain : 1);
            var sample = Enumerable.Range(0, 200).Select(i => MlpModel.Weight(layer, i % MlpModel.LayerInputSize(layer), (i * 7) % MlpModel.LayerOutputSize(layer))).ToArray();
            Assert.All(sample, w => Assert.InRange(Math.Abs(w), 0, limit));
            Assert.True(sample.Distinct().Count() > 190, "weights should not repeat");
            Assert.InRange(sample.Average(), -limit / 4, limit / 4);
            Assert.Equal(MlpModel.Weight(layer, 3, 5), MlpModel.Weight(layer, 3, 5));
            Assert.All(Enumerable.Range(0, MlpModel.LayerOutputSize(layer)), c => Assert.InRange(Math.Abs(MlpModel.Bias(layer, c)), 0, MlpModel.BiasRange));
        }

        Assert.NotEqual(MlpModel.Weight(1, 2, 3), MlpModel.Weight(1, 3, 2));
        Assert.NotEqual(MlpModel.Weight(1, 2, 3), MlpModel.Weight(2, 2, 3));
        Assert.Throws<ArgumentOutOfRangeException>(() => MlpModel.Weight(0, MlpModel.InputSize, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => MlpModel.Weight(4, 0, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => MlpModel.Bias(3, MlpModel.Classes));
    }

    [Fact]
    public void MlpModelFileDeclaresTheExpectedGraph()
    {
        var summary = OnnxInspector.ReadFile(models.Sample(SampleModels.MlpFolder));
        Assert.Equal(["input"], summary.RealInputs.Select(i => i.Name));
        Assert.Equal("tensor(float)[batch,64]", summary.RealInputs[0].Type);
        Assert.Equal(["probabilities: tensor(float)[batch,10]", "label: tensor(int64)[batch]"], summary.Outputs.Select(o => o.ToString()));
        Assert.Equal(8, summary.InitializerNames.Count);
        Assert.Equal(["MatMul", "Add", "Relu", "MatMul", "Add", "Relu", "MatMul", "Add", "Relu", "MatMul", "Add", "Softmax", "ArgMax"], summary.OpTypes);
    }

    /// <summary>
    /// Naive double-precision forward pass straight from MlpModel.Weight/Bias, one row at a
    /// time; each layer's weights are fetched once and reused for every row.
    /// </summary>
    private static double[][] ReferenceForward(float[] inputs, int batch)
    {
        var activations = new double[batch][];
        for (var b = 0; b < batch; b++)
        {
            activations[b] = inputs.AsSpan(b * MlpModel.InputSize, MlpModel.InputSize).ToArray().Select(x => (double)x).ToArray();
        }

        for (var layer = 0; layer < MlpModel.Layers; layer++)
        {
            var fanIn = MlpModel.LayerInputSize(layer);
            var fanOut = MlpModel.LayerOutputSize(layer);
            var weights = new double[fanIn, fanOut];
            for (var row = 0; row < fanIn; row++)
            {
                for (var col = 0; col < fanOut; col++)
                {
                    weights[row, col] = MlpModel.Weight(layer, row, col);
                }
            }

            for (var b = 0; b < batch; b++)
            {
                Assert.Equal(fanIn, activations[b].Length);
                var next = new double[fanOut];
                for (var col = 0; col < fanOut; col++)
                {
                    double sum = MlpModel.Bias(layer, col);
                    for (var row = 0; row < fanIn; row++)
                    {
                        sum += activations[b][row] * weights[row, col];
                    }

                    next[col] = layer < MlpModel.HiddenLayers ? Math.Max(0, sum) : sum;
                }

                activations[b] = next;
            }
        }

        return activations.Select(logits =>
        {
            var max = logits.Max();
            var exps = logits.Select(l => Math.Exp(l - max)).ToArray();
            var total = exps.Sum();
            return exps.Select(e => e / total).ToArray();
        }).ToArray();
    }
}
