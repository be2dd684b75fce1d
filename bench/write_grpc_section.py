#!/usr/bin/env python3
"""Writes the gRPC / REST binary benchmark section of docs/performance.md from bench/grpc.sh's results.

Reads the runs file (one JSON object per timed run: scenario, target, concurrency, round and the
load generator's figures), takes the median of every metric over the rounds, reads the 1 MiB
round-trip result, and replaces the text between the bench:<section> markers of the output file,
leaving the rest of the file alone. A missing file is created holding only the section; a file
without the markers gets the section appended.
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
GRPC_TARGET_CONCURRENCY = 32
GRPC_TARGET_RATIO = 0.75
ROUNDTRIP_TARGET_SPEEDUP = 5.0
RESNET_TARGET_RATIO = 0.90
PAYLOAD_LABELS = {
    "small": "2×2 (16 B)",
    "64k": "8192×2 (64 KiB)",
}
PAYLOAD_ORDER = ["small", "64k"]
CONTENTS_ORDER = ["typed", "raw"]
PATH_LABELS = {
    "ort": "raw ONNX Runtime, in-process",
    "grpc-raw": "server, raw gRPC",
    "rest-binary": "server, REST binary",
}


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


def load_roundtrip(path: str) -> dict | None:
    if not path:
        return None
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.startswith("roundtrip-result: "):
            return json.loads(line[len("roundtrip-result: "):])
    sys.exit(f"{path}: no roundtrip-result line")


def rate(run: dict) -> float:
    return float(run["images_per_s"] if "images_per_s" in run else run["rps"])


def medians(runs: list[dict]) -> dict | None:
    if not runs:
        return None
    return {
        "rounds": len(runs),
        "rate": statistics.median(rate(r) for r in runs),
        "p50_us": statistics.median(float(r["p50_us"]) for r in runs),
        "p99_us": statistics.median(float(r["p99_us"]) for r in runs),
        "errors": sum(int(r.get("errors", 0)) for r in runs),
    }


def select(runs: list[dict], **labels) -> list[dict]:
    return [r for r in runs if all(r.get(k) == v for k, v in labels.items())]


def fmt_rate(value: float | None, digits: int = 0) -> str:
    return DASH if value is None else f"{value:,.{digits}f}"


def fmt_ms(micros: float | None) -> str:
    if micros is None:
        return DASH
    return f"{micros / 1000:.1f} ms" if micros >= 100_000 else f"{micros / 1000:.2f} ms"


def fmt_ratio(ratio: float | None) -> str:
    return DASH if ratio is None else f"{ratio * 100:.0f} %"


def ordered(values, order: list) -> list:
    present = set(values)
    return [v for v in order if v in present] + sorted(present - set(order), key=str)


def pair_table(runs: list[dict], scenario: str, with_contents: bool) -> list[str]:
    """One row per input (and contents) and concurrency: floor, server and their ratio."""
    scenario_runs = select(runs, scenario=scenario)
    header = "| Input | " + ("Contents | " if with_contents else "") + (
        "Concurrency | Floor req/s | Floor p50 | Floor p99 | Server req/s | Server p50 | Server p99 | "
        "Server/floor | Errors (floor / server) |")
    align = "|---|" + ("---|" if with_contents else "") + "---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    lines = [header, align]
    for payload in ordered({r["payload"] for r in scenario_runs}, PAYLOAD_ORDER):
        contents_list = (ordered({r["contents"] for r in select(scenario_runs, payload=payload)}, CONTENTS_ORDER)
                         if with_contents else [None])
        for contents in contents_list:
            labels = {"payload": payload}
            if contents is not None:
                labels["contents"] = contents
            cell_runs = select(scenario_runs, **labels)
            for concurrency in sorted({int(r["concurrency"]) for r in cell_runs}):
                floor = medians(select(cell_runs, target="floor", concurrency=concurrency))
                server = medians(select(cell_runs, target="server", concurrency=concurrency))
                ratio = server["rate"] / floor["rate"] if floor and server and floor["rate"] > 0 else None
                row = [PAYLOAD_LABELS.get(payload, payload)]
                if with_contents:
                    row.append(contents)
                row += [
                    str(concurrency),
                    fmt_rate(floor and floor["rate"]), fmt_ms(floor and floor["p50_us"]), fmt_ms(floor and floor["p99_us"]),
                    fmt_rate(server and server["rate"]), fmt_ms(server and server["p50_us"]), fmt_ms(server and server["p99_us"]),
                    fmt_ratio(ratio),
                    f"{floor['errors'] if floor else DASH} / {server['errors'] if server else DASH}",
                ]
                lines.append("| " + " | ".join(row) + " |")
    return lines


def grpc_verdict(runs: list[dict]) -> str:
    goal = (f"gRPC raw ≥ {GRPC_TARGET_RATIO * 100:.0f} % of the gRPC floor's throughput at concurrency "
            f"{GRPC_TARGET_CONCURRENCY}")
    raw = select(runs, scenario="grpc", contents="raw", concurrency=GRPC_TARGET_CONCURRENCY)
    payloads = ordered({r["payload"] for r in raw}, PAYLOAD_ORDER)
    parts, met, evaluated = [], True, False
    for payload in payloads:
        floor = medians(select(raw, payload=payload, target="floor"))
        server = medians(select(raw, payload=payload, target="server"))
        if not floor or not server or floor["rate"] <= 0:
            continue
        evaluated = True
        ratio = server["rate"] / floor["rate"]
        errors = f", {server['errors']} server error(s)" if server["errors"] else ""
        parts.append(f"{PAYLOAD_LABELS.get(payload, payload)}: {fmt_ratio(ratio)} "
                     f"({fmt_rate(server['rate'])} vs {fmt_rate(floor['rate'])} req/s{errors})")
        met = met and ratio >= GRPC_TARGET_RATIO and server["errors"] == 0
    if not evaluated:
        return f"- {goal}: **not evaluated** (needs raw contents, both targets and concurrency {GRPC_TARGET_CONCURRENCY})."
    return f"- {goal}: **{'met' if met else 'not met'}**; " + "; ".join(parts) + "."


def roundtrip_verdict(roundtrip: dict | None) -> str:
    goal = f"1 MiB FP32 round trip ≥ {ROUNDTRIP_TARGET_SPEEDUP:.0f}× faster in REST binary than in REST JSON"
    if not roundtrip:
        return f"- {goal}: **not evaluated** (the roundtrip scenario did not run)."
    json_ms = roundtrip["json"]["median_exchange_ms"]
    binary_ms = roundtrip["binary"]["median_exchange_ms"]
    speedup = json_ms / binary_ms if binary_ms > 0 else 0.0
    decode = (roundtrip["json"]["median_with_decode_ms"] / roundtrip["binary"]["median_with_decode_ms"]
              if roundtrip["binary"]["median_with_decode_ms"] > 0 else 0.0)
    return (f"- {goal}: **{'met' if speedup >= ROUNDTRIP_TARGET_SPEEDUP else 'not met'}**; "
            f"{speedup:.1f}× (JSON {json_ms:.1f} ms vs binary {binary_ms:.1f} ms, medians; "
            f"{decode:.1f}× counting the client's decode of the answer).")


def resnet_verdict(runs: list[dict]) -> str:
    goal = f"ResNet18 over raw gRPC ≥ {RESNET_TARGET_RATIO * 100:.0f} % of raw ONNX Runtime's throughput"
    ort = medians(select(runs, scenario="resnet18", path="ort"))
    grpc = select(runs, scenario="resnet18", path="grpc-raw")
    if not ort or not grpc or ort["rate"] <= 0:
        return f"- {goal}: **not evaluated** (the resnet18 scenario did not run)."
    best_c, best = None, None
    for concurrency in sorted({int(r["concurrency"]) for r in grpc}):
        m = medians(select(grpc, concurrency=concurrency))
        if best is None or m["rate"] > best["rate"]:
            best_c, best = concurrency, m
    ratio = best["rate"] / ort["rate"]
    errors = f", {best['errors']} error(s)" if best["errors"] else ""
    met = ratio >= RESNET_TARGET_RATIO and best["errors"] == 0
    return (f"- {goal}: **{'met' if met else 'not met'}**; {fmt_ratio(ratio)} at the best concurrency measured, "
            f"{best_c} ({fmt_rate(best['rate'], 1)} vs {fmt_rate(ort['rate'], 1)} images/s{errors}).")


def resnet_table(runs: list[dict]) -> list[str]:
    resnet = select(runs, scenario="resnet18")
    ort = medians(select(resnet, path="ort"))
    lines = [
        "| Path | Concurrency | Images/s | p50 | p99 | Of raw ONNX Runtime | Errors |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for path in ("ort", "grpc-raw", "rest-binary"):
        path_runs = select(resnet, path=path)
        for concurrency in sorted({int(r["concurrency"]) for r in path_runs}):
            m = medians(select(path_runs, concurrency=concurrency))
            ratio = m["rate"] / ort["rate"] if ort and ort["rate"] > 0 else None
            label = f"{concurrency} runners" if path == "ort" else str(concurrency)
            lines.append("| " + " | ".join([
                PATH_LABELS[path], label, fmt_rate(m["rate"], 1), fmt_ms(m["p50_us"]), fmt_ms(m["p99_us"]),
                fmt_ratio(ratio), str(m["errors"]),
            ]) + " |")
    return lines


def roundtrip_table(roundtrip: dict) -> list[str]:
    lines = [
        "| Form | Request body | Response body | Median round trip | Median with client decode |",
        "|---|---:|---:|---:|---:|",
    ]
    for form, label in (("json", "REST JSON"), ("binary", "REST binary")):
        r = roundtrip[form]
        lines.append(f"| {label} | {r['request_bytes']:,} B | {r['response_bytes']:,} B | "
                     f"{r['median_exchange_ms']:.1f} ms | {r['median_with_decode_ms']:.1f} ms |")
    return lines


def every_round(runs: list[dict]) -> list[str]:
    lines = [
        "| Scenario | Input / path | Concurrency | Round | Target | Rate (/s) | p50 | p99 | Requests | Errors |",
        "|---|---|---:|---:|---|---:|---:|---:|---:|---:|",
    ]
    scenario_order = ["grpc", "rest-binary", "resnet18"]
    path_order = list(PATH_LABELS)

    def key(r: dict):
        return (scenario_order.index(r["scenario"]) if r["scenario"] in scenario_order else 99,
                PAYLOAD_ORDER.index(r["payload"]) if r.get("payload") in PAYLOAD_ORDER else 0,
                CONTENTS_ORDER.index(r["contents"]) if r.get("contents") in CONTENTS_ORDER else 0,
                path_order.index(r["path"]) if r.get("path") in path_order else 0,
                int(r["concurrency"]), int(r["round"]), r["target"])

    for r in sorted(runs, key=key):
        if r["scenario"] == "resnet18":
            what = PATH_LABELS.get(r.get("path", ""), r.get("path", ""))
        else:
            what = PAYLOAD_LABELS.get(r["payload"], r["payload"])
            if r.get("contents"):
                what += f", {r['contents']}"
        count = r.get("requests", r.get("runs", 0))
        lines.append("| " + " | ".join([
            r["scenario"], what, str(r["concurrency"]), str(r["round"]), r["target"],
            fmt_rate(rate(r), 1 if rate(r) < 1000 else 0), fmt_ms(float(r["p50_us"])), fmt_ms(float(r["p99_us"])),
            f"{int(count):,}", str(r.get("errors", 0)),
        ]) + " |")
    return lines


def render(args: argparse.Namespace, runs: list[dict], roundtrip: dict | None, begin: str, end: str) -> str:
    scenarios = {r["scenario"] for r in runs}
    rounds = max((int(r["round"]) for r in runs), default=0)
    lines = [
        begin,
        f"## {args.title}",
        "",
        "_Written by `bench/grpc.sh` (see `bench/README.md`); the text between the "
        f"`bench:{args.section}` markers is replaced on every run._",
        "",
        f"- **Date:** {args.date}",
        f"- **Machine:** {args.machine}",
        f"- **Revision:** {args.revision}",
        f"- **Command:** `{args.command}`",
        f"- **Method:** {args.method}",
    ]
    if scenarios & {"grpc", "resnet18"}:
        lines.append(f"- **gRPC load:** `{args.h2load_command}`: one HTTP/2 connection per unit of concurrency, "
                     "one call at a time on each; the body is a gRPC frame written by `bench/Client`.")
    if scenarios & {"rest-binary", "resnet18"}:
        lines.append(f"- **REST binary load:** `{args.wrk_command}`: one connection per unit of concurrency; "
                     "the body is a JSON header plus the tensor's bytes, the output asked for with `binary_data`.")
    lines.append(
        "- **Errors:** h2load does not read grpc-status, so a gRPC error is counted as an answer without "
        "its full body: a failed unary call is answered trailers-only, and every correct answer to the same request "
        "has the same length, so errors = 2xx answers − data bytes ÷ answer length (plus h2load's failed and timed-out "
        "requests). wrk counts statuses outside 2xx and 2xx answers of the wrong length, plus socket errors and "
        f"timeouts. Before the timed runs `bench/Client` sends every body {args.check_calls} times to its target and "
        "checks each answer (HTTP status, grpc-status, every output value); after them, 20 times again.")
    for label, command in (("gRPC floor", args.grpc_floor_command), ("REST floor", args.rest_floor_command),
                           ("Server", args.server_command), ("Raw ONNX Runtime", args.ort_command)):
        if command:
            lines.append(f"- **{label}:** `{command}`")

    lines += ["", "### Targets", "", grpc_verdict(runs), roundtrip_verdict(roundtrip), resnet_verdict(runs)]

    if "grpc" in scenarios:
        lines += [
            "",
            "### gRPC ModelInfer on `double`: server vs bare grpc-dotnet floor",
            "",
            f"Medians of {rounds} round(s); latencies are nearest-rank p50/p99 over every call of a run (h2load's "
            "per-request log). Typed contents are answered typed (`fp32_contents`), raw ones raw "
            "(`raw_output_contents`).",
            "",
            *pair_table(runs, "grpc", with_contents=True),
        ]
    if "rest-binary" in scenarios:
        lines += [
            "",
            "### REST binary tensor data on `double`: server vs bare Kestrel floor",
            "",
            f"Medians of {rounds} round(s); latencies are wrk's p50/p99.",
            "",
            *pair_table(runs, "rest-binary", with_contents=False),
        ]
    if "resnet18" in scenarios:
        lines += [
            "",
            "### ResNet18, batch 1 (one 3×224×224 FP32 image, 588 KiB): server vs raw ONNX Runtime",
            "",
            f"Medians of {rounds} round(s). Raw ONNX Runtime runs in its own process with the server's session "
            "options (1 intra-op thread, 1 inter-op thread, sequential, no spinning, ORT_ENABLE_ALL) and as many "
            "runner threads calling `Run` back to back as the server has executor threads by default (one per core), "
            "on one shared session as in the server; its latency is `Run` alone.",
            "",
            *resnet_table(runs),
        ]
    if roundtrip:
        lines += [
            "",
            "### 1 MiB FP32 round trip through `double`: REST binary vs REST JSON",
            "",
            f"One client, one call at a time, medians of {roundtrip['repeat']} round trips of each form after "
            f"{roundtrip['warmup']} warm-ups, alternating which form goes first. Input: 262,144 values in [0, 1) with "
            "full float precision, shape [131072, 2]. A round trip is from sending the prebuilt request to having the "
            "whole answer; \"with client decode\" adds reading the answer into a float array. Every answer is "
            "checked outside the timing.",
            "",
            *roundtrip_table(roundtrip),
        ]
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
    parser.add_argument("--roundtrip", default="", help="bench/Client roundtrip output; empty if it did not run")
    parser.add_argument("--output", type=Path, required=True, help="markdown file to update")
    parser.add_argument("--date", required=True)
    parser.add_argument("--machine", required=True)
    parser.add_argument("--revision", required=True)
    parser.add_argument("--command", required=True, help="the command that reproduces the run")
    parser.add_argument("--method", required=True, help="one line on warm-up and alternation")
    parser.add_argument("--h2load-command", default="")
    parser.add_argument("--wrk-command", default="")
    parser.add_argument("--grpc-floor-command", default="")
    parser.add_argument("--rest-floor-command", default="")
    parser.add_argument("--server-command", default="")
    parser.add_argument("--ort-command", default="")
    parser.add_argument("--check-calls", default="?")
    parser.add_argument("--section", default="grpc", help="marker name: bench:<section>:begin/end")
    parser.add_argument("--title", default="gRPC and REST binary benchmarks")
    args = parser.parse_args()
    begin, end = f"<!-- bench:{args.section}:begin -->", f"<!-- bench:{args.section}:end -->"

    runs = load_runs(args.runs)
    roundtrip = load_roundtrip(args.roundtrip)
    if not runs and not roundtrip:
        sys.exit(f"{args.runs}: no runs and no round trip: nothing to write")
    section = render(args, runs, roundtrip, begin, end)
    existing = args.output.read_text(encoding="utf-8") if args.output.exists() else None
    write_atomically(args.output, splice(existing, section, begin, end))


if __name__ == "__main__":
    main()
