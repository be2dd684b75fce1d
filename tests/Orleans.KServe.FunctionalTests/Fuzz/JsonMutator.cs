using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Orleans.KServe.FunctionalTests.Fuzz;

/// <summary>
/// Structured mutations of JSON request bodies: a node of the parsed document is replaced by another type, an
/// extreme number (shapes and sizes past every limit, 1e309, -0), a deep nest, a duplicate key, a string with bad
/// UTF-8 or a lone surrogate escape, or dropped; then, rarely, the text is cut or a byte changed.
/// </summary>
public static class JsonMutator
{
    private static readonly string[] Numbers =
    [
        "-1", "0", "1", "3", "65536", "2147483647", "2147483648", "4294967296", "9223372036854775807", "18446744073709551616",
        "1e300", "1e309", "-0", "1.5", "-2147483649", "0.0000001",
    ];

    private static readonly string[] Datatypes = ["BOOL", "UINT8", "INT64", "FP16", "FP32", "FP64", "BYTES", "BF16", "fp32", "", "X", "FP32 ", "INT128"];

    private static readonly byte[][] Strings =
    [
        [0xFF], [0xC0, 0xAF], [0xED, 0xA0, 0x80], [0xF8, 0x88, 0x80, 0x80, 0x80], "\\ud800"u8.ToArray(), "\\udfff\\ud800"u8.ToArray(),
        "\\u0000"u8.ToArray(), "\u00e9\u4e2d\U0001F600"u8.ToArray(),
    ];

    private static readonly JsonSerializerOptions Options = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping, MaxDepth = 512 };

    /// <summary>A mutant of <paramref name="seed"/>.</summary>
    public static byte[] Mutate(string seed, Random random)
    {
        var root = JsonNode.Parse(seed)!;
        var raw = new Dictionary<string, byte[]>();
        for (var rounds = 1 + random.Next(3); rounds > 0; rounds--)
        {
            var nodes = new List<(JsonNode? Parent, string? Key, int Index, JsonNode? Node)>();
            Collect(root, null, null, -1, nodes);
            var (parent, key, index, node) = nodes[random.Next(nodes.Count)];
            var replacement = Replacement(node, key, random, raw);
            if (parent is JsonObject obj && key is not null)
            {
                if (replacement is null && random.Next(4) == 0)
                {
                    obj.Remove(key);
                }
                else if (random.Next(10) == 0)
                {
                    // A second property of the same name, written by placeholder: JsonObject keeps one per name.
                    var token = Token(raw, Encoding.UTF8.GetBytes(key));
                    obj[token] = replacement?.DeepClone() ?? JsonValue.Create(1);
                }
                else
                {
                    obj[key] = replacement;
                }
            }
            else if (parent is JsonArray array && index >= 0)
            {
                array[index] = replacement;
            }
            else
            {
                root = replacement ?? JsonValue.Create(0)!;
            }
        }

        var bytes = Render(root, raw);
        if (random.Next(15) == 0 && bytes.Length > 0)
        {
            bytes = bytes[..random.Next(bytes.Length)];
        }
        else if (random.Next(15) == 0 && bytes.Length > 0)
        {
            bytes[random.Next(bytes.Length)] = (byte)random.Next(256);
        }

        return bytes;
    }

    private static void Collect(JsonNode? node, JsonNode? parent, string? key, int index, List<(JsonNode?, string?, int, JsonNode?)> nodes)
    {
        nodes.Add((parent, key, index, node));
        switch (node)
        {
            case JsonObject obj:
                foreach (var (name, child) in obj.ToList())
                {
                    Collect(child, obj, name, -1, nodes);
                }

                break;
            case JsonArray array:
                for (var i = 0; i < array.Count; i++)
                {
                    Collect(array[i], array, null, i, nodes);
                }

                break;
        }
    }

    private static JsonNode? Replacement(JsonNode? node, string? key, Random random, Dictionary<string, byte[]> raw)
    {
        switch (random.Next(key == "datatype" ? 3 : 8))
        {
            case 0 or 1 when key == "datatype":
                return JsonValue.Create(Datatypes[random.Next(Datatypes.Length)]);
            case 0:
                return RawValue(raw, Numbers[random.Next(Numbers.Length)]);
            case 1:
                // A string with bytes or escapes JSON allows but a UTF-8 string does not, or the other way round.
                var text = Strings[random.Next(Strings.Length)];
                return RawValue(raw, "\"" + Encoding.Latin1.GetString(text) + "\"", text);
            case 2:
                var nested = node?.DeepClone() ?? JsonValue.Create(1);
                for (var depth = random.Next(1, 80); depth > 0; depth--)
                {
                    nested = new JsonArray(nested);
                }

                return nested;
            case 3:
                return random.Next(4) switch { 0 => new JsonObject(), 1 => new JsonArray(), 2 => JsonValue.Create(true), _ => null };
            case 4 when node is JsonArray array:
                var grown = new JsonArray();
                var count = random.Next(3) == 0 ? 0 : array.Count * (1 + random.Next(3)) + random.Next(-1, 2);
                for (var i = 0; i < count; i++)
                {
                    grown.Add(array.Count > 0 ? array[i % array.Count]?.DeepClone() : JsonValue.Create(i));
                }

                return grown;
            case 5:
                return JsonValue.Create(new string('x', random.Next(0, 5000)));
            default:
                return node?.DeepClone();
        }
    }

    private static JsonNode RawValue(Dictionary<string, byte[]> raw, string text, byte[]? bytes = null)
    {
        var value = bytes is null ? Encoding.UTF8.GetBytes(text) : [(byte)'"', .. bytes, (byte)'"'];
        return JsonValue.Create(Token(raw, value))!;
    }

    // A placeholder string that Render swaps for raw bytes (numbers JSON cannot hold as values, bad UTF-8, duplicate keys).
    private static string Token(Dictionary<string, byte[]> raw, byte[] bytes)
    {
        var token = $"\u0001{raw.Count}\u0001";
        raw[JsonSerializer.Serialize(token, Options)] = bytes;
        return token;
    }

    private static byte[] Render(JsonNode root, Dictionary<string, byte[]> raw)
    {
        var text = root.ToJsonString(Options);
        var output = new List<byte>();
        var at = 0;
        while (at < text.Length)
        {
            var next = -1;
            string? found = null;
            foreach (var token in raw.Keys)
            {
                var i = text.IndexOf(token, at, StringComparison.Ordinal);
                if (i >= 0 && (next < 0 || i < next))
                {
                    (next, found) = (i, token);
                }
            }

            if (found is null)
            {
                output.AddRange(Encoding.UTF8.GetBytes(text[at..]));
                break;
            }

            output.AddRange(Encoding.UTF8.GetBytes(text[at..next]));
            var bytes = raw[found];

            // A duplicate key token stands where a property name stood: give it its quotes back.
            output.AddRange(bytes.Length > 0 && bytes[0] != (byte)'"' && !IsNumber(bytes) ? [(byte)'"', .. bytes, (byte)'"'] : bytes);
            at = next + found.Length;
        }

        return [.. output];
    }

    private static bool IsNumber(byte[] bytes) => bytes.Length > 0 && (bytes[0] == (byte)'-' || char.IsAsciiDigit((char)bytes[0]));
}
