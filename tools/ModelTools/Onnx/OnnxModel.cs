namespace Orleans.KServe.ModelTools.Onnx;

/// <summary>
/// An ONNX <c>ModelProto</c> under construction: a graph plus the operator sets it imports.
/// </summary>
public sealed class OnnxModel
{
    /// <summary>The default-domain operator set used by the generated models.</summary>
    public const long DefaultOpset = 17;

    /// <summary>IR version 8 is what ONNX 1.12–1.13 write for opset 17 / ai.onnx.ml 3.</summary>
    public const long DefaultIrVersion = 8;

    public const string MlDomain = "ai.onnx.ml";

    public OnnxModel(string graphName, long opset = DefaultOpset)
    {
        Graph = new OnnxGraph(graphName);
        Opsets.Add(new KeyValuePair<string, long>("", opset));
    }

    public long IrVersion { get; set; } = DefaultIrVersion;

    public string ProducerName { get; set; } = "Orleans.KServe.ModelTools";

    public string ProducerVersion { get; set; } = "1.0";

    public OnnxGraph Graph { get; }

    /// <summary>Operator set imports: domain ("" is the default ONNX domain) and version.</summary>
    public List<KeyValuePair<string, long>> Opsets { get; } = [];

    /// <summary>Free-form <c>metadata_props</c>.</summary>
    public List<KeyValuePair<string, string>> Metadata { get; } = [];

    public OnnxModel ImportOpset(string domain, long version)
    {
        Opsets.RemoveAll(o => o.Key == domain);
        Opsets.Add(new KeyValuePair<string, long>(domain, version));
        return this;
    }

    public byte[] ToByteArray()
    {
        var writer = new ProtoWriter(4096);
        writer.WriteInt64(1, IrVersion); // ir_version
        writer.WriteString(2, ProducerName); // producer_name
        writer.WriteString(3, ProducerVersion); // producer_version
        writer.WriteMessage(7, Graph.Write); // graph
        foreach (var opset in Opsets)
        {
            writer.WriteMessage(8, o => // opset_import: OperatorSetIdProto
            {
                o.WriteString(1, opset.Key);
                o.WriteInt64(2, opset.Value);
            });
        }

        foreach (var entry in Metadata)
        {
            writer.WriteMessage(14, e => // metadata_props: StringStringEntryProto
            {
                e.WriteString(1, entry.Key);
                e.WriteString(2, entry.Value);
            });
        }

        return writer.ToArray();
    }

    /// <summary>Writes the model to <paramref name="path"/> atomically (temporary file, then rename).</summary>
    public void Save(string path) => ModelFile.WriteAtomically(path, ToByteArray());
}
