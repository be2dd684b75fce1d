using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Orleans.KServe.FunctionalTests;

/// <summary>The lines a child process wrote, collected from its output events, for failure messages.</summary>
public sealed class OutputLog
{
    private readonly StringBuilder _text = new();

    /// <summary>Adds a line (an output event's data; null at the end of the stream is ignored).</summary>
    public void Append(string? line)
    {
        if (line is not null)
        {
            lock (_text)
            {
                _text.AppendLine(line);
            }
        }
    }

    /// <inheritdoc />
    public override string ToString()
    {
        lock (_text)
        {
            return _text.ToString();
        }
    }

    /// <summary>A port of 127.0.0.1 free a moment ago (the caller retries when another process took it since).</summary>
    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
