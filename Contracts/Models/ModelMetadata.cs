using System.Collections.Immutable;
using Orleans.KServe.Contracts.Tensors;

namespace Orleans.KServe.Contracts.Models;

/// <summary>Name, datatype and shape of one model input or output; -1 marks a variable dimension.</summary>
[GenerateSerializer, Immutable]
[Alias("Orleans.KServe.Contracts.TensorMetadata")]
public sealed record TensorMetadata(
    [property: Id(0)] string Name,
    [property: Id(1)] TensorDataType DataType,
    [property: Id(2)] ImmutableArray<long> Shape);

/// <summary>What the v2 model metadata endpoint reports.</summary>
[GenerateSerializer, Immutable]
[Alias("Orleans.KServe.Contracts.ModelMetadata")]
public sealed record ModelMetadata(
    [property: Id(0)] string Name,
    [property: Id(1)] ImmutableArray<string> Versions,
    [property: Id(2)] string Platform,
    [property: Id(3)] ImmutableArray<TensorMetadata> Inputs,
    [property: Id(4)] ImmutableArray<TensorMetadata> Outputs)
{
    /// <summary>Finds an input by name.</summary>
    public TensorMetadata? FindInput(string name)
    {
        foreach (var input in Inputs)
        {
            if (input.Name == name)
            {
                return input;
            }
        }

        return null;
    }

    /// <summary>Finds an output by name.</summary>
    public TensorMetadata? FindOutput(string name)
    {
        foreach (var output in Outputs)
        {
            if (output.Name == name)
            {
                return output;
            }
        }

        return null;
    }
}
