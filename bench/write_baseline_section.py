#!/usr/bin/env python3
"""Writes a section of docs/performance.md comparing this revision's server with a baseline revision's.

Reads the runs file bench/rest.sh or bench/grpc.sh writes with BENCH_BASELINE_REV set: one JSON object per timed
run of the server or the baseline, with its scenario (and labels such as payload and contents), concurrency, round,
requests, rps, p50_us, p99_us and server_cpu_s (the target process's user + system CPU seconds during the run, from
/proc). For every scenario and concurrency it takes the median over the rounds of the server CPU per call and of
the throughput and latencies, and says whether this revision's CPU per call is within 3 % of the baseline's.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

LIMIT = 1.03
LABELS = ("payload", "contents")


def load(path: Path) -> list[dict]:
    runs = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not runs:
        sys.exit(f"{path}: no runs")
    return runs


def cell(run: dict) -> tuple:
    return (run.get("scenario", ""),) + tuple(run.get(label, "") for label in LABELS) + (int(run["concurrency"]),)


def cpu_per_call_us(run: dict) -> float:
    requests = float(run.get("requests") or float(run["rps"]) * float(run.get("duration_s", 0) or 0))
    return float(run["server_cpu_s"]) * 1e6 / requests if requests > 0 else float("nan")


def medians(group: list[dict]) -> dict:
    return {
        "rounds": len(group),
        "cpu": statistics.median(cpu_per_call_us(r) for r in group),
        "rps": statistics.median(float(r["rps"]) for r in group),
        "p50": statistics.median(float(r["p50_us"]) for r in group) / 1000,
        "p99": statistics.median(float(r["p99_us"]) for r in group) / 1000,
    }


def render(args: argparse.Namespace, runs: list[dict]) -> str:
    groups: dict[tuple, dict[str, list[dict]]] = {}
    for run in runs:
        groups.setdefault(cell(run), {}).setdefault(run["target"], []).append(run)

    rows, worst, verdicts = [], 0.0, []
    for key in sorted(groups, key=lambda k: tuple(str(x) for x in k[:-1]) + (k[-1],)):
        pair = groups[key]
        if "server" not in pair or "baseline" not in pair:
            continue
        now, then = medians(pair["server"]), medians(pair["baseline"])
        ratio = now["cpu"] / then["cpu"] if then["cpu"] > 0 else float("nan")
        worst = max(worst, ratio)
        verdicts.append(ratio <= LIMIT)
        label = " ".join(str(x) for x in key[:-1] if x)
        rows.append(
            f"| {label} | {key[-1]} | {min(now['rounds'], then['rounds'])} "
            f"| {then['cpu']:.1f} µs | {now['cpu']:.1f} µs | {(ratio - 1) * 100:+.1f} % "
            f"| {then['rps']:,.0f} | {now['rps']:,.0f} "
            f"| {then['p50']:.2f} / {then['p99']:.2f} ms | {now['p50']:.2f} / {now['p99']:.2f} ms |")
    if not rows:
        sys.exit("no scenario has runs of both the server and the baseline")

    met = all(verdicts)
    lines = [
        f"<!-- bench:{args.section}:begin -->",
        f"## {args.title}",
        "",
        f"Run {args.date} on {args.machine}. This revision: {args.revision}; baseline: {args.baseline}, built from its own",
        "worktree and served from the same models. Both servers run for the whole run and take the same load in turn within",
        "every round; the server's CPU per call is its process's user + system CPU time during the run (from /proc) over",
        "the calls it answered. Medians over the rounds.",
        "",
        "Reproduce with:",
        "",
        "```",
        args.command,
        "```",
        "",
        f"Load: `{args.load}`.",
        "",
        "| scenario | concurrency | rounds | CPU per call, baseline | CPU per call, this revision | change | req/s, baseline | req/s, this revision | p50 / p99, baseline | p50 / p99, this revision |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |",
        *rows,
        "",
        f"Target: this revision's server CPU per call at most {(LIMIT - 1) * 100:.0f} % above the baseline's in every row: "
        f"**{'met' if met else 'not met'}** (the largest change is {(worst - 1) * 100:+.1f} %).",
        f"<!-- bench:{args.section}:end -->",
    ]
    return "\n".join(lines) + "\n"


def write(path: Path, section: str, text: str) -> None:
    begin, end = f"<!-- bench:{section}:begin -->", f"<!-- bench:{section}:end -->"
    old = path.read_text(encoding="utf-8") if path.exists() else ""
    if begin in old and end in old:
        head, rest = old.split(begin, 1)
        _, tail = rest.split(end, 1)
        new = head + text.rstrip("\n") + tail
    else:
        new = (old.rstrip("\n") + "\n\n" if old else "") + text
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(new)
    os.replace(tmp, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    for name in ("runs", "output", "section", "title", "date", "machine", "revision", "baseline", "command", "load"):
        parser.add_argument(f"--{name}", required=True)
    args = parser.parse_args()
    write(Path(args.output), args.section, render(args, load(Path(args.runs))))


if __name__ == "__main__":
    main()
