#!/usr/bin/env python3
"""Writes the dynamic batching section of docs/performance.md from bench/batching.sh's results.

Reads the runs file (one JSON object per timed run: scenario, model, transport or path, batching, concurrency,
round, the load generator's figures and the rows and executions the model's statistics counted during the run),
takes the median of every rate and latency over the rounds, reads the models' statistics at the end of the run,
and replaces the text between the bench:<section> markers of the output file, leaving the rest of the file alone.
A missing file is created holding only the section; a file without the markers gets the section appended.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

DASH = "–"
THROUGHPUT_TARGET_CONCURRENCY = 64
THROUGHPUT_TARGET_SPEEDUP = 2.0
LATENCY_TARGET_CONCURRENCY = 1
RESNET_TARGET_RATIO = 0.90
TRANSPORT_LABELS = {"rest-binary": "REST binary", "grpc": "raw gRPC"}
TRANSPORT_ORDER = ["rest-binary", "grpc"]


def load_runs(path: Path) -> list[dict]:
    runs = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            line = line.strip()
            if not line:
                continue
            try:
                runs.append(json.loads(line))
            except json.JSONDecodeError as exc:
                sys.exit(f"{path}:{number}: not JSON: {exc}")
    return runs


def load_stats(paths: list[Path]) -> list[dict]:
    models = []
    for path in paths:
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            sys.exit(f"{path}: cannot read the model statistics: {exc}")
        models.extend(document.get("model_stats", []))
    return models


def rate(run: dict) -> float:
    return float(run["images_per_s"] if "images_per_s" in run else run["rps"])


def select(runs: list[dict], **labels) -> list[dict]:
    return [r for r in runs if all(r.get(k) == v for k, v in labels.items())]


def medians(runs: list[dict]) -> dict | None:
    """Medians of rate and latencies over the rounds; errors, rows and executions summed."""
    if not runs:
        return None
    rows = sum(int(r.get("rows", 0)) for r in runs)
    executions = sum(int(r.get("executions", 0)) for r in runs)
    return {
        "rounds": len(runs),
        "rate": statistics.median(rate(r) for r in runs),
        "p50_us": statistics.median(float(r["p50_us"]) for r in runs),
        "p99_us": statistics.median(float(r["p99_us"]) for r in runs),
        "errors": sum(int(r.get("errors", 0)) for r in runs),
        "rows_per_execution": rows / executions if executions > 0 else None,
        "server_us": per_call(runs, "server_cpu_s"),
        "client_us": per_call(runs, "client_cpu_s"),
    }


def per_call(runs: list[dict], field: str) -> float | None:
    """Median over the rounds of CPU microseconds per answered request (None where a run did not record it)."""
    values = [float(r[field]) * 1e6 / int(r["requests"]) for r in runs if field in r and int(r.get("requests", 0)) > 0]
    return statistics.median(values) if len(values) == len(runs) else None


def fmt_us(value: float | None) -> str:
    return DASH if value is None else f"{value:,.0f} µs"


def fmt_rate(value: float | None, digits: int = 0) -> str:
    return DASH if value is None else f"{value:,.{digits}f}"


def fmt_ms(micros: float | None) -> str:
    if micros is None:
        return DASH
    return f"{micros / 1000:.1f} ms" if micros >= 100_000 else f"{micros / 1000:.2f} ms"


def fmt_ratio(ratio: float | None) -> str:
    return DASH if ratio is None else f"{ratio * 100:.0f} %"


def fmt_times(ratio: float | None) -> str:
    return DASH if ratio is None else f"{ratio:.2f}×"


def fmt_rows(value: float | None) -> str:
    return DASH if value is None else f"{value:.1f}"


def transports(runs: list[dict]) -> list[str]:
    present = {r["transport"] for r in select(runs, scenario="mlp")}
    return [t for t in TRANSPORT_ORDER if t in present] + sorted(present - set(TRANSPORT_ORDER))


def pair(runs: list[dict], transport: str, concurrency: int) -> tuple[dict | None, dict | None]:
    cell = select(runs, scenario="mlp", transport=transport, concurrency=concurrency)
    return medians(select(cell, batching="off")), medians(select(cell, batching="on"))


def mlp_table(runs: list[dict], transport: str) -> list[str]:
    lines = [
        "| Concurrency | Off req/s | Off p50 | Off p99 | On req/s | On p50 | On p99 | On/off throughput | "
        "Rows per execution (on) | Server CPU per call (off / on) | Load generator CPU per call (off / on) | "
        "Errors (off / on) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    concurrencies = sorted({int(r["concurrency"]) for r in select(runs, scenario="mlp", transport=transport)})
    for concurrency in concurrencies:
        off, on = pair(runs, transport, concurrency)
        ratio = on["rate"] / off["rate"] if off and on and off["rate"] > 0 else None
        lines.append("| " + " | ".join([
            str(concurrency),
            fmt_rate(off and off["rate"]), fmt_ms(off and off["p50_us"]), fmt_ms(off and off["p99_us"]),
            fmt_rate(on and on["rate"]), fmt_ms(on and on["p50_us"]), fmt_ms(on and on["p99_us"]),
            fmt_times(ratio),
            fmt_rows(on and on["rows_per_execution"]),
            f"{fmt_us(off and off['server_us'])} / {fmt_us(on and on['server_us'])}",
            f"{fmt_us(off and off['client_us'])} / {fmt_us(on and on['client_us'])}",
            f"{off['errors'] if off else DASH} / {on['errors'] if on else DASH}",
        ]) + " |")
    return lines


def throughput_verdict(runs: list[dict]) -> str:
    goal = (f"Batching on ≥ {THROUGHPUT_TARGET_SPEEDUP:.0f}× the MLP's throughput with batching off at concurrency "
            f"{THROUGHPUT_TARGET_CONCURRENCY}")
    parts, met, evaluated = [], True, False
    for transport in transports(runs):
        off, on = pair(runs, transport, THROUGHPUT_TARGET_CONCURRENCY)
        if not off or not on or off["rate"] <= 0:
            continue
        evaluated = True
        ratio = on["rate"] / off["rate"]
        errors = on["errors"] + off["errors"]
        met = met and ratio >= THROUGHPUT_TARGET_SPEEDUP and errors == 0
        note = f", {errors} error(s)" if errors else ""
        if off["server_us"] and on["server_us"]:
            note += (f"; server CPU per call {fmt_us(off['server_us'])} vs {fmt_us(on['server_us'])} = "
                     f"{off['server_us'] / on['server_us']:.2f}×, load generator {fmt_us(off['client_us'])} vs "
                     f"{fmt_us(on['client_us'])}")
        parts.append(f"{TRANSPORT_LABELS.get(transport, transport)} {ratio:.2f}× ({fmt_rate(on['rate'])} vs "
                     f"{fmt_rate(off['rate'])} req/s{note})")
    if not evaluated:
        return f"- {goal}: **not evaluated** (needs the mlp scenario at concurrency {THROUGHPUT_TARGET_CONCURRENCY})."
    return f"- {goal}: **{'met' if met else 'not met'}**; " + "; ".join(parts) + "."


def latency_verdict(runs: list[dict], max_latency_ms: float) -> str:
    goal = (f"p99 at concurrency {LATENCY_TARGET_CONCURRENCY} with batching on ≤ maxLatency ({max_latency_ms:g} ms) + "
            "the p99 with batching off")
    parts, met, evaluated = [], True, False
    for transport in transports(runs):
        off, on = pair(runs, transport, LATENCY_TARGET_CONCURRENCY)
        if not off or not on:
            continue
        evaluated = True
        limit_us = max_latency_ms * 1000 + off["p99_us"]
        errors = on["errors"] + off["errors"]
        met = met and on["p99_us"] <= limit_us and errors == 0
        note = f", {errors} error(s)" if errors else ""
        parts.append(f"{TRANSPORT_LABELS.get(transport, transport)} {fmt_ms(on['p99_us'])} vs a limit of "
                     f"{fmt_ms(limit_us)} ({max_latency_ms:g} ms + {fmt_ms(off['p99_us'])}){note}")
    if not evaluated:
        return f"- {goal}: **not evaluated** (needs the mlp scenario at concurrency {LATENCY_TARGET_CONCURRENCY})."
    return f"- {goal}: **{'met' if met else 'not met'}**; " + "; ".join(parts) + "."


def resnet_runs(runs: list[dict]) -> tuple[dict | None, list[tuple[int, dict]]]:
    resnet = select(runs, scenario="resnet18")
    ort = medians(select(resnet, path="ort"))
    server = select(resnet, path="grpc")
    cells = [(c, medians(select(server, concurrency=c))) for c in sorted({int(r["concurrency"]) for r in server})]
    return ort, cells


def resnet_verdict(runs: list[dict], max_batch: int) -> str:
    goal = (f"ResNet18 with batching over raw gRPC ≥ {RESNET_TARGET_RATIO * 100:.0f} % of raw ONNX Runtime's "
            f"images/s at the same batch size ({max_batch})")
    ort, cells = resnet_runs(runs)
    if not ort or not cells or ort["rate"] <= 0:
        return f"- {goal}: **not evaluated** (the resnet18 scenario did not run)."
    best_c, best = max(cells, key=lambda cell: cell[1]["rate"])
    ratio = best["rate"] / ort["rate"]
    met = ratio >= RESNET_TARGET_RATIO and best["errors"] == 0
    errors = f", {best['errors']} error(s)" if best["errors"] else ""
    return (f"- {goal}: **{'met' if met else 'not met'}**; {fmt_ratio(ratio)} at the best concurrency measured, "
            f"{best_c} ({fmt_rate(best['rate'], 1)} vs {fmt_rate(ort['rate'], 1)} images/s, "
            f"{fmt_rows(best['rows_per_execution'])} rows per execution{errors}).")


def resnet_table(runs: list[dict]) -> list[str]:
    ort, cells = resnet_runs(runs)
    ort_runs = select(runs, scenario="resnet18", path="ort")
    lines = [
        "| Path | Concurrency | Rows per execution | Images/s | p50 | p99 | Of raw ONNX Runtime | Errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    if ort:
        first = ort_runs[0]
        lines.append("| " + " | ".join([
            "raw ONNX Runtime, in-process (latency: one `Run` of the batch)",
            f"{first.get('runners', '?')} runners", str(first.get("batch", "?")),
            fmt_rate(ort["rate"], 1), fmt_ms(ort["p50_us"]), fmt_ms(ort["p99_us"]), "100 %", str(ort["errors"]),
        ]) + " |")
    for concurrency, m in cells:
        ratio = m["rate"] / ort["rate"] if ort and ort["rate"] > 0 else None
        lines.append("| " + " | ".join([
            "server, raw gRPC (latency: one request)", str(concurrency), fmt_rows(m["rows_per_execution"]),
            fmt_rate(m["rate"], 1), fmt_ms(m["p50_us"]), fmt_ms(m["p99_us"]), fmt_ratio(ratio), str(m["errors"]),
        ]) + " |")
    return lines


def stats_lines(models: list[dict]) -> list[str]:
    lines = []
    for model in models:
        rows = int(model.get("inference_count", 0))
        executions = int(model.get("execution_count", 0))
        mean = f"{rows / executions:.2f}" if executions else DASH
        sizes = sorted(((int(b["batch_size"]), int(b.get("compute_infer", {}).get("count", 0)))
                        for b in model.get("batch_stats", [])), key=lambda item: item[0])
        queue = model.get("inference_stats", {}).get("queue", {})
        queue_count, queue_ns = int(queue.get("count", 0)), int(queue.get("ns", 0))
        text = (f"- `{model.get('name', '?')}`: inference_count {rows:,}, execution_count {executions:,} "
                f"({mean} rows per execution)")
        if queue_count:
            text += f"; mean queue time {queue_ns / queue_count / 1e6:.2f} ms"
        if sizes:
            shown = ", ".join(f"{size}: {count:,}" for size, count in sizes if count)
            text += f"; executions per batch size: {shown}"
        lines.append(text + ".")
    return lines


def every_round(runs: list[dict]) -> list[str]:
    lines = [
        "| Scenario | Transport / path | Model | Concurrency | Round | Rate (/s) | p50 | p99 | Requests | "
        "Rows / executions | Errors |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]

    def key(r: dict):
        scenario = 0 if r["scenario"] == "mlp" else 1
        transport = TRANSPORT_ORDER.index(r["transport"]) if r.get("transport") in TRANSPORT_ORDER else 0
        path = 0 if r.get("path") == "ort" else 1
        return scenario, transport, path, int(r["concurrency"]), int(r["round"]), r.get("batching", "")

    for r in sorted(runs, key=key):
        if r["scenario"] == "mlp":
            what = TRANSPORT_LABELS.get(r["transport"], r["transport"])
        else:
            what = "raw ONNX Runtime" if r.get("path") == "ort" else "raw gRPC"
        count = r.get("requests", r.get("runs", 0))
        if "executions" in r:
            batches = f"{int(r['rows']):,} / {int(r['executions']):,}"
        else:
            batches = f"{int(r.get('images', 0)):,} / {int(r.get('runs', 0)):,}"
        model = str(r.get("model", ""))
        lines.append("| " + " | ".join([
            r["scenario"], what, f"`{model}`",
            str(r["concurrency"]), str(r["round"]),
            fmt_rate(rate(r), 1 if rate(r) < 1000 else 0), fmt_ms(float(r["p50_us"])), fmt_ms(float(r["p99_us"])),
            f"{int(count):,}", batches, str(r.get("errors", 0)),
        ]) + " |")
    return lines


def render(args: argparse.Namespace, runs: list[dict], models: list[dict], begin: str, end: str) -> str:
    scenarios = {r["scenario"] for r in runs}
    rounds = max((int(r["round"]) for r in runs), default=0)
    lines = [
        begin,
        f"## {args.title}",
        "",
        "_Written by `bench/batching.sh` (see `bench/README.md`); the text between the "
        f"`bench:{args.section}` markers is replaced on every run._",
        "",
        f"- **Date:** {args.date}",
        f"- **Machine:** {args.machine}",
        f"- **Revision:** {args.revision}",
        f"- **Command:** `{args.command}`",
        f"- **Method:** {args.method}",
        f"- **Server:** `{args.server_command}`, with a model repository the script writes (KServe InferenceService "
        "YAML pointing at `samples/models/mlp` and `samples/models/resnet18`):",
    ]
    if "mlp" in scenarios:
        lines.append(f"  `mlp-unbatched` (no batcher) and `mlp-batched` (batcher maxBatchSize {args.mlp_max_batch}, "
                     f"maxLatency {args.mlp_max_latency_ms:g} ms), the same ONNX file and session options"
                     + (";" if "resnet18" in scenarios else "."))
    if "resnet18" in scenarios:
        lines.append(f"  `resnet18-batched` (batcher maxBatchSize {args.resnet_max_batch}, maxLatency "
                     f"{args.resnet_max_latency_ms:g} ms).")
    lines.append("- **Requests:** the MLP gets one row per request, FP32 [1, 64], asking for `probabilities` "
                 "(FP32 [1, 10]): the batcher batches across callers. ResNet18 gets one 3×224×224 FP32 image per "
                 "request. REST binary sends the JSON header plus the tensor's bytes and asks for the output in binary; "
                 "raw gRPC sends `raw_input_contents`.")
    uses_grpc = "resnet18" in scenarios or any(r.get("transport") == "grpc" for r in runs)
    uses_rest = any(r.get("transport") == "rest-binary" for r in runs)
    if uses_grpc:
        lines.append(f"- **gRPC load:** `{args.h2load_command}`: one HTTP/2 connection per unit of concurrency, "
                     "one call at a time on each.")
    if uses_rest:
        lines.append(f"- **REST binary load:** `{args.wrk_command}`: one connection per unit of concurrency.")
    if args.ort_command:
        lines.append(f"- **Raw ONNX Runtime:** `{args.ort_command}`: the server's session options (intra-op threads "
                     "as the server gives each execution, 1 inter-op thread, sequential, no spinning, ORT_ENABLE_ALL), "
                     "as many runner threads calling `Run` back to back on one shared session as the batched model's "
                     "instance count, each `Run` on a batch of the batcher's maxBatchSize copies of the image.")
    lines.append(
        "- **Errors:** h2load does not read grpc-status, so a gRPC error is counted as an answer without its full body "
        "(errors = 2xx answers − data bytes ÷ answer length, plus h2load's failed and timed-out requests); wrk counts "
        "statuses outside 2xx and answers of the wrong length, plus socket errors and timeouts. Before the timed runs "
        f"`bench/Client` sends every body {args.check_calls} times (ResNet18: a tenth), 8 at a time, and checks each "
        "answer (status, grpc-status, datatype, shape, finite values, MLP probabilities in [0, 1] summing to 1); after "
        "them, 20 times again.")
    lines.append("- **Rows per execution:** the model's `inference_count` (rows) over its `execution_count` (model "
                 "runs) during the timed runs, from `GET /v2/models/<model>/stats` before and after each run.")
    lines.append("- **CPU per call:** the server's user + system time over a run (`/proc/<pid>/stat`) and the load "
                 "generator's (the script's account of the children it waited for, bash `times`), each divided by the "
                 "run's answered requests. Both share the machine's CPUs, so what the load generator spends per call "
                 "is taken from the server on both sides of a ratio: the server's CPU ratio is what batching saves "
                 "the server itself.")

    lines += ["", "### Targets", ""]
    if "mlp" in scenarios:
        lines += [throughput_verdict(runs), latency_verdict(runs, args.mlp_max_latency_ms)]
    lines.append(resnet_verdict(runs, args.resnet_max_batch))

    if "mlp" in scenarios:
        for transport in transports(runs):
            lines += [
                "",
                f"### MLP over {TRANSPORT_LABELS.get(transport, transport)}: batching off vs on",
                "",
                f"Medians of {rounds} round(s); off is `mlp-unbatched`, on is `mlp-batched` (maxBatchSize "
                f"{args.mlp_max_batch}, maxLatency {args.mlp_max_latency_ms:g} ms). "
                + ("Latencies are nearest-rank over every call of a run (h2load's per-request log)."
                   if transport == "grpc" else "Latencies are wrk's."),
                "",
                *mlp_table(runs, transport),
            ]
    if "resnet18" in scenarios:
        lines += [
            "",
            f"### ResNet18 with batching (maxBatchSize {args.resnet_max_batch}, maxLatency "
            f"{args.resnet_max_latency_ms:g} ms) over raw gRPC vs raw ONNX Runtime",
            "",
            f"Medians of {rounds} round(s). Raw ONNX Runtime runs in its own process while the server sits idle; "
            "images/s counts every row of every batch.",
            "",
            *resnet_table(runs),
        ]
    if models:
        lines += ["", "### Batches formed over the whole run (checks and warm-ups included)", "",
                  *stats_lines(models)]
    if runs:
        lines += ["", "<details><summary>Every round</summary>", "", *every_round(runs), "", "</details>"]
    lines.append(end)
    return "\n".join(lines) + "\n"


def splice(existing: str | None, section: str, begin: str, end: str) -> str:
    if existing is None:
        return section
    start, stop = existing.find(begin), existing.find(end)
    if start == -1 and stop == -1:
        separator = "" if existing == "" or existing.endswith("\n\n") else ("\n" if existing.endswith("\n") else "\n\n")
        return existing + separator + section
    if start == -1 or stop == -1 or stop < start:
        sys.exit(f"the output file has a broken pair of markers ({begin} ... {end}); fix it by hand")
    if existing.find(begin, start + 1) != -1 or existing.find(end, stop + 1) != -1:
        sys.exit(f"the output file has more than one {begin} section; fix it by hand")
    after = existing[stop + len(end):]
    return existing[:start] + section + (after[1:] if after.startswith("\n") else after)


def write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.chmod(temp, mode)
        os.replace(temp, path)
    except BaseException:
        os.unlink(temp)
        raise


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, required=True, help="JSON lines, one per timed run")
    parser.add_argument("--stats", type=Path, action="append", default=[],
                        help="GET /v2/models/<model>/stats at the end of the run (repeatable)")
    parser.add_argument("--output", type=Path, required=True, help="markdown file to update")
    parser.add_argument("--date", required=True)
    parser.add_argument("--machine", required=True)
    parser.add_argument("--revision", required=True)
    parser.add_argument("--command", required=True, help="the command that reproduces the run")
    parser.add_argument("--method", required=True, help="one line on warm-up and alternation")
    parser.add_argument("--h2load-command", default="")
    parser.add_argument("--wrk-command", default="")
    parser.add_argument("--server-command", default="")
    parser.add_argument("--ort-command", default="")
    parser.add_argument("--mlp-max-batch", type=int, default=32)
    parser.add_argument("--mlp-max-latency-ms", type=float, default=2)
    parser.add_argument("--resnet-max-batch", type=int, default=8)
    parser.add_argument("--resnet-max-latency-ms", type=float, default=5)
    parser.add_argument("--check-calls", default="?")
    parser.add_argument("--section", default="batching", help="marker name: bench:<section>:begin/end")
    parser.add_argument("--title", default="Dynamic batching")
    args = parser.parse_args()
    begin, end = f"<!-- bench:{args.section}:begin -->", f"<!-- bench:{args.section}:end -->"

    runs = load_runs(args.runs)
    if not runs:
        sys.exit(f"{args.runs}: no runs: nothing to write")
    models = load_stats(args.stats)
    section = render(args, runs, models, begin, end)
    existing = args.output.read_text(encoding="utf-8") if args.output.exists() else None
    write_atomically(args.output, splice(existing, section, begin, end))


if __name__ == "__main__":
    main()
