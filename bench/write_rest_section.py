#!/usr/bin/env python3
"""Writes the REST benchmark section of docs/performance.md from bench/rest.sh's results.

Reads the runs file (one JSON object per wrk run: target, concurrency, round and the fields of
bench/wrk/infer.lua's `wrk-result:` line), takes the median of every metric over the rounds,
and replaces the text between the bench:rest markers in the output file, leaving the rest of
the file alone. If the file does not exist it is created holding only the section; if it has
no markers the section is appended.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

BEGIN = "<!-- bench:rest:begin -->"
END = "<!-- bench:rest:end -->"
SECTION = "rest"
TITLE = "REST v2 infer: server vs bare Kestrel floor"
TARGET_CONCURRENCY = 32
TARGET_RATIO = 0.75
DASH = "–"


def error_count(run: dict) -> int:
    return sum(int(run.get(key, 0)) for key in
               ("non2xx", "connect_errors", "read_errors", "write_errors", "timeouts"))


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
    if not runs:
        sys.exit(f"{path}: no runs")
    return runs


def summarize(runs: list[dict]) -> dict[tuple[str, int], dict]:
    """Median req/s, p50 and p99 per (target, concurrency), errors summed over the rounds."""
    groups: dict[tuple[str, int], list[dict]] = {}
    for run in runs:
        groups.setdefault((run["target"], int(run["concurrency"])), []).append(run)
    return {
        key: {
            "rounds": len(group),
            "rps": statistics.median(float(r["rps"]) for r in group),
            "p50_us": statistics.median(float(r["p50_us"]) for r in group),
            "p99_us": statistics.median(float(r["p99_us"]) for r in group),
            "errors": sum(error_count(r) for r in group),
        }
        for key, group in groups.items()
    }


def fmt_rps(value: float | None) -> str:
    return DASH if value is None else f"{value:,.0f}"


def fmt_ms(micros: float | None) -> str:
    return DASH if micros is None else f"{micros / 1000:.2f} ms"


def fmt_ratio(ratio: float | None) -> str:
    return DASH if ratio is None else f"{ratio * 100:.0f} %"


def verdict(medians: dict, concurrencies: list[int], targets: list[str]) -> str:
    goal = (f"server ≥ {TARGET_RATIO * 100:.0f} % of floor throughput "
            f"at concurrency {TARGET_CONCURRENCY}")
    if "floor" not in targets or "server" not in targets:
        return (f"**Target** ({goal}): **not evaluated**: only "
                f"{', '.join(targets)} was benchmarked in this run.")
    if TARGET_CONCURRENCY not in concurrencies:
        return (f"**Target** ({goal}): **not evaluated**: concurrency "
                f"{TARGET_CONCURRENCY} was not part of this run.")
    floor = medians[("floor", TARGET_CONCURRENCY)]
    server = medians[("server", TARGET_CONCURRENCY)]
    ratio = server["rps"] / floor["rps"] if floor["rps"] > 0 else 0.0
    measured = (f"server {fmt_rps(server['rps'])} req/s vs floor {fmt_rps(floor['rps'])} req/s, "
                f"{fmt_ratio(ratio)}")
    if server["errors"] > 0:
        return (f"**Target** ({goal}): **not met**: the server had {server['errors']} "
                f"error(s) at concurrency {TARGET_CONCURRENCY} ({measured}).")
    if ratio >= TARGET_RATIO:
        return f"**Target** ({goal}): **met** ({measured})."
    return f"**Target** ({goal}): **not met** ({measured})."


def render(args: argparse.Namespace, runs: list[dict]) -> str:
    targets = [t for t in ("floor", "server") if any(r["target"] == t for r in runs)]
    concurrencies = sorted({int(r["concurrency"]) for r in runs})
    medians = summarize(runs)
    rounds = max(m["rounds"] for m in medians.values())

    def cell(target: str, concurrency: int) -> dict | None:
        return medians.get((target, concurrency))

    lines = [
        BEGIN,
        f"## {TITLE}",
        "",
        "_Written by `bench/rest.sh` (see `bench/README.md`); the text between the "
        f"`bench:{SECTION}` markers is replaced on every run._",
        "",
        f"- **Date:** {args.date}",
        f"- **Machine:** {args.machine}",
        f"- **Revision:** {args.revision}",
        f"- **Command:** `{args.command}`",
        f"- **Load:** `{args.wrk_command}`: each request POSTs a 2×2 FP32 tensor "
        "(`bench/wrk/infer.lua`); one connection per unit of concurrency.",
        f"- **Method:** {args.method}",
    ]
    for target, command in (("floor", args.floor_command), ("server", args.server_command)):
        if target in targets and command:
            lines.append(f"- **{target.capitalize()}:** `{command}`")
    lines += [
        "",
        f"Medians of {rounds} round(s); latencies are wrk's p50/p99; errors are non-2xx "
        "responses plus socket errors and timeouts, summed over the rounds.",
        "",
        "| Concurrency | Floor req/s | Floor p50 | Floor p99 | Server req/s | Server p50 | "
        "Server p99 | Server/floor throughput | Errors (floor / server) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for concurrency in concurrencies:
        floor, server = cell("floor", concurrency), cell("server", concurrency)
        ratio = (server["rps"] / floor["rps"]
                 if floor and server and floor["rps"] > 0 else None)
        lines.append("| " + " | ".join([
            str(concurrency),
            fmt_rps(floor and floor["rps"]),
            fmt_ms(floor and floor["p50_us"]),
            fmt_ms(floor and floor["p99_us"]),
            fmt_rps(server and server["rps"]),
            fmt_ms(server and server["p50_us"]),
            fmt_ms(server and server["p99_us"]),
            fmt_ratio(ratio),
            f"{floor['errors'] if floor else DASH} / {server['errors'] if server else DASH}",
        ]) + " |")
    lines += [
        "",
        verdict(medians, concurrencies, targets),
        "",
        "<details><summary>Every round</summary>",
        "",
        "| Concurrency | Round | Target | req/s | p50 | p99 | Requests | Errors |",
        "|---:|---:|---|---:|---:|---:|---:|---:|",
    ]
    for run in sorted(runs, key=lambda r: (int(r["concurrency"]), int(r["round"]),
                                           targets.index(r["target"]))):
        lines.append("| " + " | ".join([
            str(run["concurrency"]), str(run["round"]), run["target"],
            fmt_rps(float(run["rps"])), fmt_ms(float(run["p50_us"])),
            fmt_ms(float(run["p99_us"])), f"{int(run['requests']):,}", str(error_count(run)),
        ]) + " |")
    lines += ["", "</details>", END]
    return "\n".join(lines) + "\n"


def splice(existing: str | None, section: str) -> str:
    if existing is None:
        return section
    begin, end = existing.find(BEGIN), existing.find(END)
    if begin == -1 and end == -1:
        if existing == "" or existing.endswith("\n\n"):
            separator = ""
        elif existing.endswith("\n"):
            separator = "\n"
        else:
            separator = "\n\n"
        return existing + separator + section
    if begin == -1 or end == -1 or end < begin:
        sys.exit(f"the output file has a broken pair of markers ({BEGIN} ... {END}); fix it by hand")
    if existing.find(BEGIN, begin + 1) != -1 or existing.find(END, end + 1) != -1:
        sys.exit(f"the output file has more than one bench:{SECTION} section; fix it by hand")
    after = existing[end + len(END):]
    if after.startswith("\n"):
        after = after[1:]
    return existing[:begin] + section + after


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
    global BEGIN, END, SECTION, TITLE
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, required=True, help="JSON lines, one per wrk run")
    parser.add_argument("--output", type=Path, required=True, help="markdown file to update")
    parser.add_argument("--date", required=True)
    parser.add_argument("--machine", required=True)
    parser.add_argument("--revision", required=True)
    parser.add_argument("--command", required=True, help="the command that reproduces the run")
    parser.add_argument("--wrk-command", required=True)
    parser.add_argument("--method", required=True, help="one line on warm-up and alternation")
    parser.add_argument("--floor-command", default="")
    parser.add_argument("--server-command", default="")
    parser.add_argument("--section", default="rest", help="marker name: bench:<section>:begin/end")
    parser.add_argument("--title", default=TITLE)
    args = parser.parse_args()
    SECTION, TITLE = args.section, args.title
    BEGIN, END = f"<!-- bench:{SECTION}:begin -->", f"<!-- bench:{SECTION}:end -->"

    section = render(args, load_runs(args.runs))
    existing = args.output.read_text(encoding="utf-8") if args.output.exists() else None
    write_atomically(args.output, splice(existing, section))


if __name__ == "__main__":
    main()
