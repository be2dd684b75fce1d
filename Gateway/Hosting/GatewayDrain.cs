using System.Collections.Concurrent;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Orleans.KServe.Gateway;

/// <summary>
/// What a server behind Kubernetes endpoints or a load balancer must do when it is told to stop (SIGTERM): readiness
/// answers 503 at once, while the server keeps serving for <see cref="GatewayOptions.DrainDelay"/> so that every
/// balancer notices and sends its traffic elsewhere; meanwhile every HTTP/1.1 answer carries
/// <c>Connection: close</c> (each kept-alive connection ends after its next answer instead of being cut while a
/// request may be on its way) and every HTTP/2 connection gets a GOAWAY (its client opens no new streams on it).
/// Only then do the listeners close and the calls in flight finish (the host's shutdown timeout).
/// </summary>
public sealed partial class GatewayDrain(GatewayOptions options, IHostApplicationLifetime lifetime, ILogger<GatewayDrain> logger) : IHostedLifecycleService
{
    private readonly ConcurrentDictionary<string, ConnectionContext> _http2 = new(StringComparer.Ordinal);
    private volatile bool _draining;

    /// <summary>True once the stop has begun: readiness is 503 from then on.</summary>
    public bool Draining => _draining;

    /// <inheritdoc />
    public Task StoppingAsync(CancellationToken cancellationToken)
    {
        _draining = true;
        var closed = 0;
        foreach (var connection in _http2.Values)
        {
            if (connection.Features.Get<IConnectionLifetimeNotificationFeature>() is { } lifetime)
            {
                lifetime.RequestClose();
                closed++;
            }
        }

        LogDraining(options.DrainDelay.TotalSeconds, closed);
        return options.DrainDelay > TimeSpan.Zero ? Task.Delay(options.DrainDelay, cancellationToken) : Task.CompletedTask;
    }

    /// <summary>Keeps track of the HTTP/2 connections of <paramref name="listen"/>, so that a drain can send each a GOAWAY.</summary>
    public static ListenOptions TrackConnections(ListenOptions listen)
    {
        listen.Use(next =>
        {
            var drain = listen.ApplicationServices.GetRequiredService<GatewayDrain>();
            return async connection =>
            {
                drain._http2[connection.ConnectionId] = connection;
                try
                {
                    await next(connection);
                }
                finally
                {
                    drain._http2.TryRemove(connection.ConnectionId, out _);
                }
            };
        });
        return listen;
    }

    /// <summary>Adds <c>Connection: close</c> to every HTTP/1.1 answer that leaves while the server drains.</summary>
    public static IApplicationBuilder UseDrain(IApplicationBuilder app)
    {
        var drain = app.ApplicationServices.GetRequiredService<GatewayDrain>();
        return app.Use((context, next) =>
        {
            if (drain._draining && HttpProtocol.IsHttp11(context.Request.Protocol))
            {
                // At the last moment: an error path may clear the headers the handler set.
                context.Response.OnStarting(static state => CloseAfter((HttpResponse)state), context.Response);
            }

            return next(context);
        });
    }

    private static Task CloseAfter(HttpResponse response)
    {
        response.Headers.Connection = "close";
        return Task.CompletedTask;
    }

    /// <inheritdoc />
    public Task StartingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <inheritdoc />
    public Task StartAsync(CancellationToken cancellationToken)
    {
        // SIGTERM signals the stop before the host runs it: readiness turns at the signal, not at the drain.
        lifetime.ApplicationStopping.Register(static state => ((GatewayDrain)state!)._draining = true, this);
        return Task.CompletedTask;
    }

    /// <inheritdoc />
    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <inheritdoc />
    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <inheritdoc />
    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    [LoggerMessage(1, LogLevel.Information, "Draining: readiness answers 503; serving {Seconds} s more before the listeners close (GOAWAY sent on {Http2} HTTP/2 connections)")]
    private partial void LogDraining(double seconds, int http2);
}
