using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace Orleans.KServe.Grains.Telemetry;

/// <summary>
/// Per-model metrics under the names KServe and Triton users look for. The meter is <see cref="MeterName"/>; the
/// Prometheus exporter adds <c>_total</c> to counters.
/// </summary>
public sealed class InferenceMetrics : IDisposable
{
    /// <summary>The meter every Orleans.KServe instrument belongs to.</summary>
    public const string MeterName = "Orleans.KServe";

    private readonly Meter _meter;
    private readonly Histogram<double> _predictSeconds;
    private readonly Counter<long> _success;
    private readonly Counter<long> _failure;
    private readonly Counter<long> _inferenceCount;
    private readonly Counter<long> _execCount;
    private readonly Counter<double> _computeInferMicros;
    private readonly Counter<double> _queueMicros;
    private readonly Histogram<long> _batchSize;
    private readonly Counter<long> _activations;
    private readonly Counter<long> _reactivations;

    /// <summary>Creates the instruments on a meter from <paramref name="meterFactory"/>.</summary>
    public InferenceMetrics(IMeterFactory meterFactory)
    {
        _meter = meterFactory.Create(MeterName);
        _predictSeconds = _meter.CreateHistogram<double>(
            "request_predict_seconds", "s", "Time to serve one predict request (KServe).",
            advice: new InstrumentAdvice<double>
            {
                HistogramBucketBoundaries = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
            });
        _success = _meter.CreateCounter<long>("nv_inference_request_success", description: "Successful inference requests (Triton).");
        _failure = _meter.CreateCounter<long>("nv_inference_request_failure", description: "Failed inference requests (Triton).");
        _inferenceCount = _meter.CreateCounter<long>("nv_inference_count", description: "Inferences performed; a request of batch N counts N (Triton).");
        _execCount = _meter.CreateCounter<long>("nv_inference_exec_count", description: "Model executions; batching makes this smaller than the inference count (Triton).");
        _computeInferMicros = _meter.CreateCounter<double>("nv_inference_compute_infer_duration_us", description: "Cumulative time executing the model, in microseconds (Triton).");
        _queueMicros = _meter.CreateCounter<double>("nv_inference_queue_duration_us", description: "Cumulative time requests waited before their execution, in microseconds (Triton).");
        _batchSize = _meter.CreateHistogram<long>(
            "kserve_batch_size", description: "Rows per model execution (batch size).",
            advice: new InstrumentAdvice<long> { HistogramBucketBoundaries = [1, 2, 4, 8, 16, 32, 64, 128, 256] });
        _activations = _meter.CreateCounter<long>("kserve_replica_activations", description: "Model replicas activated on this silo.");
        _reactivations = _meter.CreateCounter<long>(
            "kserve_replica_reactivations", description: "Replicas of a revision already serving activated again on this silo (after their silo was lost or left).");
    }

    /// <summary>Records a replica's activation on this silo; <paramref name="again"/> when its revision already served (a re-activation).</summary>
    public void RecordActivation(string model, string version, bool again)
    {
        var modelTag = new KeyValuePair<string, object?>("model", model);
        var versionTag = new KeyValuePair<string, object?>("version", version);
        _activations.Add(1, modelTag, versionTag);
        if (again)
        {
            _reactivations.Add(1, modelTag, versionTag);
        }
    }

    /// <summary>Records one request's outcome.</summary>
    public void RecordRequest(string model, string version, bool success, long inferences, TimeSpan elapsed)
    {
        var modelTag = new KeyValuePair<string, object?>("model", model);
        var versionTag = new KeyValuePair<string, object?>("version", version);
        _predictSeconds.Record(elapsed.TotalSeconds, new KeyValuePair<string, object?>("model_name", model));
        if (success)
        {
            _success.Add(1, modelTag, versionTag);
            _inferenceCount.Add(inferences, modelTag, versionTag);
        }
        else
        {
            _failure.Add(1, modelTag, versionTag);
        }
    }

    /// <summary>Records one model execution.</summary>
    public void RecordExecution(string model, string version, TimeSpan compute)
    {
        var modelTag = new KeyValuePair<string, object?>("model", model);
        var versionTag = new KeyValuePair<string, object?>("version", version);
        _execCount.Add(1, modelTag, versionTag);
        _computeInferMicros.Add(compute.TotalMicroseconds, modelTag, versionTag);
    }

    /// <summary>Records how long one request waited before its execution.</summary>
    public void RecordQueue(string model, string version, TimeSpan waited) =>
        _queueMicros.Add(waited.TotalMicroseconds, new("model", model), new("version", version));

    /// <summary>Records the rows of one execution.</summary>
    public void RecordBatch(string model, long rows) => _batchSize.Record(rows, new KeyValuePair<string, object?>("model_name", model));

    /// <summary>Elapsed time since a <see cref="Stopwatch.GetTimestamp"/> value.</summary>
    public static TimeSpan Since(long timestamp) => Stopwatch.GetElapsedTime(timestamp);

    /// <inheritdoc />
    public void Dispose() => _meter.Dispose();
}
