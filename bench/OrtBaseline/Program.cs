using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Microsoft.ML.OnnxRuntime;

// Raw ONNX Runtime throughput for one model, batch B (default 1), N runners at once: the in-process ceiling for
// bench/grpc.sh's ResNet18 rows (batch 1) and bench/batching.sh's (batch = the batcher's maxBatchSize).
//
// Usage: dotnet Orleans.KServe.Bench.OrtBaseline.dll --model samples/models/resnet18/model.onnx
//            [--runners N] [--sessions shared|per-runner] [--intra-op-threads T] [--batch B] [--duration 10s] [--warmup 3s]
//            [--idle-ms M]
//
// With --batch B every Run gets B copies of the one input image on the batch dimension (what the server's batcher
// concatenates when B callers send that image), and images count B per Run.
//
// Session options are the server's (Grains/Runtime/Onnx/OnnxModelRuntime.cs): T intra-op threads
// (default 1, what the server gives each execution when it runs one execution per core), one
// inter-op thread, sequential execution, no spinning, ORT_ENABLE_ALL. Runners are dedicated
// threads, like the server's executor threads; by default one per core and all on one shared
// session, which is how the server runs a model (one InferenceSession per replica, Run called
// from each executor thread). --sessions per-runner gives each runner its own session instead.
//
// With --idle-ms M each runner blocks M ms after every Run (as an executor thread does while a lone request waits
// out the batcher's delay), so the latencies are those of a Run on a machine that was idle for M ms; compare them
// with a run without --idle-ms (back to back). images_per_s then counts the idle time too.
//
// Prints one line: ort-result: {"images_per_s": ..., "p50_ms": ..., "p99_ms": ..., "p50_us": ..., ...}
try
{
    var options = Settings.Parse(args);
    return Baseline.Run(options);
}
catch (ArgumentException e)
{
    Console.Error.WriteLine($"error: {e.Message}");
    Console.Error.WriteLine("usage: Orleans.KServe.Bench.OrtBaseline --model FILE [--runners N] [--sessions shared|per-runner] " +
        "[--intra-op-threads T] [--batch B] [--duration 10s] [--warmup 3s] [--idle-ms M]");
    return 2;
}
catch (OnnxRuntimeException e)
{
    Console.Error.WriteLine($"error: ONNX Runtime: {e.Message}");
    return 1;
}

/// <summary>The command line.</summary>
internal sealed record Settings(string Model, int Runners, bool SharedSession, int IntraOpThreads, int Batch, TimeSpan Duration, TimeSpan Warmup, int IdleMs)
{
    public static Settings Parse(string[] args)
    {
        var values = new Dictionary<string, string>();
        for (var i = 0; i < args.Length; i += 2)
        {
            if (!args[i].StartsWith("--", StringComparison.Ordinal) || i + 1 >= args.Length)
            {
                throw new ArgumentException($"expected --option value, found '{args[i]}'");
            }
            values[args[i][2..]] = args[i + 1];
        }

        var model = values.GetValueOrDefault("model") ?? throw new ArgumentException("--model is required");
        if (!File.Exists(model))
        {
            throw new ArgumentException($"--model '{model}' does not exist (build the server: it writes samples/models/)");
        }

        var sessions = values.GetValueOrDefault("sessions", "shared");
        if (sessions is not ("shared" or "per-runner"))
        {
            throw new ArgumentException($"--sessions '{sessions}' is not shared or per-runner");
        }

        return new Settings(
            model,
            Count(values, "runners", Environment.ProcessorCount),
            sessions == "shared",
            Count(values, "intra-op-threads", 1),
            Count(values, "batch", 1),
            ParseDuration(values, "duration", TimeSpan.FromSeconds(10), allowZero: false),
            ParseDuration(values, "warmup", TimeSpan.FromSeconds(3), allowZero: true),
            values.ContainsKey("idle-ms") ? Count(values, "idle-ms", 0) : 0);
    }

    private static int Count(Dictionary<string, string> values, string name, int fallback)
    {
        if (!values.TryGetValue(name, out var text))
        {
            return fallback;
        }
        return int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var value) && value > 0
            ? value
            : throw new ArgumentException($"--{name} '{text}' is not a positive whole number");
    }

    /// <summary>Seconds, as a number with an optional unit s, m or h (the form wrk and h2load take).</summary>
    private static TimeSpan ParseDuration(Dictionary<string, string> values, string name, TimeSpan fallback, bool allowZero)
    {
        if (!values.TryGetValue(name, out var text))
        {
            return fallback;
        }
        var hasUnit = text.Length > 0 && char.IsLetter(text[^1]);
        var unit = hasUnit ? text[^1] : 's';
        var number = hasUnit ? text[..^1] : text;
        var scale = unit switch { 's' => 1, 'm' => 60, 'h' => 3600, _ => 0 };
        if (scale == 0 || !double.TryParse(number, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var amount) ||
            amount < 0 || (amount == 0 && !allowZero))
        {
            throw new ArgumentException($"--{name} '{text}' is not a duration (e.g. 10s)");
        }
        return TimeSpan.FromSeconds(amount * scale);
    }
}

internal static class Baseline
{
    // 0: warming up, 1: measuring, 2: stop.
    private static volatile int _phase;

    public static int Run(Settings settings)
    {
        var sessions = new List<InferenceSession>();
        try
        {
            for (var i = 0; i < (settings.SharedSession ? 1 : settings.Runners); i++)
            {
                sessions.Add(Open(settings.Model, settings.IntraOpThreads));
            }

            var session = sessions[0];
            var inputName = session.InputNames[0];
            var dimensions = session.InputMetadata[inputName].Dimensions;
            // A dynamic first dimension becomes the batch (1 by default); any other dynamic dimension is an error,
            // and so is a batch other than 1 for a model whose first dimension is fixed.
            var shape = dimensions.Select((d, i) => d > 0 ? d : i == 0 ? (long)settings.Batch : throw new ArgumentException(
                $"input '{inputName}' has a dynamic dimension {i}; only the batch dimension may be dynamic")).ToArray();
            if (settings.Batch != 1 && (shape.Length == 0 || dimensions[0] > 0))
            {
                throw new ArgumentException($"input '{inputName}' has no variable batch dimension; --batch {settings.Batch} cannot apply");
            }
            var elements = (int)shape.Aggregate(1L, (a, b) => a * b);
            // The same values bench/Client sends to the server for ResNet18 (seed 18, [0, 1)), once per row of the batch.
            var random = new Random(18);
            var rows = shape.Length == 0 ? 1 : (int)shape[0];
            var row = elements / rows;
            var input = new float[elements];
            for (var i = 0; i < row; i++)
            {
                input[i] = random.NextSingle();
            }
            for (var r = 1; r < rows; r++)
            {
                Array.Copy(input, 0, input, r * row, row);
            }

            var outputNames = session.OutputNames.ToArray();
            var checksum = Checksum(session, inputName, input, shape, outputNames);

            var runners = new Runner[settings.Runners];
            for (var i = 0; i < runners.Length; i++)
            {
                runners[i] = new Runner(sessions[settings.SharedSession ? 0 : i], inputName, input, shape, outputNames, settings.IdleMs);
            }
            foreach (var runner in runners)
            {
                runner.Start();
            }

            Thread.Sleep(settings.Warmup);
            var started = Stopwatch.GetTimestamp();
            _phase = 1;
            Thread.Sleep(settings.Duration);
            _phase = 2;
            var elapsed = Stopwatch.GetElapsedTime(started);
            foreach (var runner in runners)
            {
                runner.Join();
            }

            var failure = runners.Select(r => r.Failure).FirstOrDefault(f => f is not null);
            if (failure is not null)
            {
                Console.Error.WriteLine($"error: a run failed: {failure.Message}");
                return 1;
            }

            // A run counts when it finished inside the measured window (a run that started in the warm-up and
            // finished in the window counts; one still going at the end does not).
            var latencies = runners.SelectMany(r => r.Latencies).Order().ToArray();
            var images = latencies.Length * shape[0];
            Write(settings, shape, latencies, images, elapsed, checksum);
            return 0;
        }
        finally
        {
            foreach (var session in sessions)
            {
                session.Dispose();
            }
        }
    }

    /// <summary>The server's session options (OnnxModelRuntime.Open).</summary>
    private static InferenceSession Open(string path, int intraOpThreads)
    {
        using var options = new SessionOptions
        {
            IntraOpNumThreads = intraOpThreads,
            InterOpNumThreads = 1,
            ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
            GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
        };
        options.AddSessionConfigEntry("session.intra_op.allow_spinning", "0");
        options.AddSessionConfigEntry("session.inter_op.allow_spinning", "0");
        return new InferenceSession(path, options);
    }

    /// <summary>Sum of the first output of one run: lets a reader see that the runs compute something real.</summary>
    private static double Checksum(InferenceSession session, string inputName, float[] input, long[] shape, string[] outputNames)
    {
        using var value = OrtValue.CreateTensorValueFromMemory(input, shape);
        using var runOptions = new RunOptions();
        using var results = session.Run(runOptions, [inputName], [value], outputNames);
        var sum = 0.0;
        foreach (var x in results[0].GetTensorDataAsSpan<float>())
        {
            sum += x;
        }
        return sum;
    }

    private static void Write(Settings settings, long[] shape, double[] latencies, long images, TimeSpan elapsed, double checksum)
    {
        double Percentile(double p) => latencies.Length == 0 ? 0 : latencies[Math.Min(latencies.Length - 1, (int)Math.Ceiling(p / 100 * latencies.Length) - 1)];

        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteString("model", settings.Model);
            json.WriteNumber("runners", settings.Runners);
            json.WriteString("sessions", settings.SharedSession ? "shared" : "per-runner");
            json.WriteNumber("intra_op_threads", settings.IntraOpThreads);
            json.WriteNumber("batch", shape[0]);
            json.WriteNumber("idle_ms", settings.IdleMs);
            json.WriteNumber("runs", latencies.Length);
            json.WriteNumber("images", images);
            json.WriteNumber("seconds", Math.Round(elapsed.TotalSeconds, 3));
            json.WriteNumber("images_per_s", Math.Round(images / elapsed.TotalSeconds, 2));
            json.WriteNumber("p50_ms", Math.Round(Percentile(50), 3));
            json.WriteNumber("p99_ms", Math.Round(Percentile(99), 3));
            json.WriteNumber("p50_us", Math.Round(Percentile(50) * 1000));
            json.WriteNumber("p99_us", Math.Round(Percentile(99) * 1000));
            json.WriteNumber("errors", 0);
            json.WriteNumber("output_sum", checksum);
            json.WriteEndObject();
        }
        Console.Out.WriteLine($"ort-result: {Encoding.UTF8.GetString(buffer.ToArray())}");
    }

    /// <summary>One dedicated thread calling Run back to back with its own input value.</summary>
    private sealed class Runner(InferenceSession session, string inputName, float[] input, long[] shape, string[] outputNames, int idleMs)
    {
        private Thread? _thread;

        public List<double> Latencies { get; } = [];

        public Exception? Failure { get; private set; }

        public void Start()
        {
            _thread = new Thread(Loop) { IsBackground = true, Name = "ort-runner" };
            _thread.Start();
        }

        public void Join() => _thread!.Join();

        private void Loop()
        {
            try
            {
                using var value = OrtValue.CreateTensorValueFromMemory((float[])input.Clone(), shape);
                using var runOptions = new RunOptions();
                string[] inputNames = [inputName];
                OrtValue[] inputs = [value];
                while (_phase != 2)
                {
                    var started = Stopwatch.GetTimestamp();
                    using (session.Run(runOptions, inputNames, inputs, outputNames))
                    {
                    }
                    var finished = Stopwatch.GetTimestamp();
                    if (_phase == 1)
                    {
                        Latencies.Add(Stopwatch.GetElapsedTime(started, finished).TotalMilliseconds);
                    }

                    if (idleMs > 0)
                    {
                        // The thread blocks, as an executor thread does between lone batches: that is the measurement.
                        Thread.Sleep(idleMs);
                    }
                }
            }
            catch (OnnxRuntimeException e)
            {
                Failure = e;
            }
        }
    }
}
