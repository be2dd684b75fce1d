#!/usr/bin/env python3
"""Turns one h2load run (its printed summary and its --log-file) into one JSON line for bench/grpc.sh.

h2load reports HTTP status codes only, and a gRPC call that fails still answers HTTP 200: its
status travels in the grpc-status trailer, which h2load never looks at. Errors are therefore
counted in three parts:

- failed + timeout, from h2load's summary: streams that were reset or answered with a status
  outside 2xx ("failed" includes "errored"), and connections that timed out;
- grpc_errors: calls answered 200 without the full answer. A failing unary call is answered
  "trailers-only" (grpc-status in the headers, no DATA), and every correct answer to the same
  request has the same length (bench/Client's check measures it: --response-bytes), so
  grpc_errors = 2xx answers - data bytes received // response length (at least 1 when the data
  bytes are not exactly 2xx answers x response length: some answer had another length);
- the checks bench/grpc.sh runs with bench/Client before and after the timed runs, which read
  grpc-status and compare every output value.

Latency percentiles come from the per-request log (third column: microseconds from the start of
a request to the end of its answer); h2load's summary has only min/mean/max.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from pathlib import Path


def number(pattern: str, text: str, what: str, cast=int):
    match = re.search(pattern, text, re.MULTILINE)
    if not match:
        sys.exit(f"h2load_result.py: no '{what}' in the h2load output")
    return cast(match.group(1))


def percentile(sorted_values: list[int], p: float) -> int:
    """Nearest-rank percentile."""
    if not sorted_values:
        return 0
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--summary", type=Path, required=True, help="what h2load printed")
    parser.add_argument("--log", type=Path, required=True, help="h2load's --log-file")
    parser.add_argument("--response-bytes", type=int, required=True,
                        help="body length (gRPC frame included) of every correct answer")
    args = parser.parse_args()
    if args.response_bytes <= 0:
        sys.exit("h2load_result.py: --response-bytes must be positive")

    text = args.summary.read_text(encoding="utf-8", errors="replace")
    duration = number(r"^finished in ([0-9.]+)s,", text, "finished in", float)
    rps = number(r"^finished in [0-9.]+s, ([0-9.]+) req/s", text, "req/s", float)
    requests = re.search(
        r"^requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, "
        r"(\d+) errored, (\d+) timeout", text, re.MULTILINE)
    if not requests:
        sys.exit("h2load_result.py: no 'requests:' line in the h2load output")
    _, _, done, succeeded, failed, errored, timeouts = (int(x) for x in requests.groups())
    status_2xx = number(r"^status codes: (\d+) 2xx", text, "status codes")
    data_bytes = number(r"^traffic: .*, [0-9.]+[KMGT]?B \((\d+)\) data", text, "traffic")

    full_answers = data_bytes // args.response_bytes
    grpc_errors = max(0, status_2xx - full_answers)
    # Bytes that are not exactly one answer per 2xx: some answer had another length, which is a
    # wrong answer even when the count above comes out at zero.
    if grpc_errors == 0 and data_bytes != status_2xx * args.response_bytes:
        grpc_errors = 1

    latencies = []
    with args.log.open(encoding="utf-8") as handle:
        for line in handle:
            fields = line.split("\t")
            if len(fields) >= 3:
                latencies.append(int(fields[2]))
    latencies.sort()

    result = {
        "requests": done,
        "duration_s": duration,
        "rps": rps,
        "succeeded_2xx": succeeded,
        "status_2xx": status_2xx,
        "failed": failed,
        "errored": errored,
        "timeouts": timeouts,
        "data_bytes": data_bytes,
        "response_bytes": args.response_bytes,
        "grpc_errors": grpc_errors,
        "errors": failed + timeouts + grpc_errors,
        "logged": len(latencies),
        "mean_us": round(sum(latencies) / len(latencies), 1) if latencies else 0,
        "p50_us": percentile(latencies, 50),
        "p90_us": percentile(latencies, 90),
        "p99_us": percentile(latencies, 99),
        "max_us": latencies[-1] if latencies else 0,
    }
    print(json.dumps(result, separators=(",", ":")))


if __name__ == "__main__":
    main()
