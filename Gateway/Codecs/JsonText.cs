using System.Text;
using System.Text.Unicode;
using Orleans.KServe.Contracts.Inference;

namespace Orleans.KServe.Gateway.Codecs;

/// <summary>JSON text as RFC 8259 defines it for exchange: UTF-8. The reader checks the syntax, not the encoding of strings.</summary>
internal static class JsonText
{
    /// <summary>Throws 400 naming the first byte that is not UTF-8; checks at memory speed when all is well.</summary>
    public static void EnsureUtf8(ReadOnlySpan<byte> json)
    {
        if (Utf8.IsValid(json))
        {
            return;
        }

        var offset = 0;
        while (offset < json.Length && Rune.DecodeFromUtf8(json[offset..], out _, out var consumed) == System.Buffers.OperationStatus.Done)
        {
            offset += consumed;
        }

        throw InferenceException.Invalid($"the JSON body is not valid UTF-8: byte {offset} (0x{json[offset]:X2}) does not begin a UTF-8 character");
    }
}
