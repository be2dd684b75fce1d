#!/usr/bin/env bash
# Silo cluster benchmark, one run, two parts (see bench/README.md); writes its tables between the bench:cluster
# markers of docs/performance.md.
#
# 1. Cross-silo cost. redis-server and two silo processes (role all). The `double` replica is activated on silo A.
#    wrk sends v2 REST infer to A's front end (the replica is local: the local fast path) and to B's (every call
#    crosses to A over Orleans' messaging), alternating, BENCH_ROUNDS rounds each. Per target: median p50, p99,
#    requests/s and the CPU of every process of the cluster (redis and both silos, from /proc) per call.
# 2. Kill and freeze. redis-server and three silos; BENCH_FAULT_CLIENTS clients (the bench client's `timeline`)
#    for BENCH_FAULT_SECONDS seconds through the front ends of the two silos that do not hold the replica; at
#    BENCH_FAULT_AT seconds the replica's silo gets SIGKILL (first run) or SIGSTOP (second run). Per run: calls,
#    failures, p99 before and during recovery, and how long until calls sent after the fault were answered again,
#    against the bound the probe settings give (docs/cluster.md).
set -euo pipefail
shopt -s inherit_errexit

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

ROUNDS=${BENCH_ROUNDS:-5}
DURATION=${BENCH_DURATION:-10s}
CONCURRENCY=${BENCH_CONCURRENCY:-8}
FAULT_CLIENTS=${BENCH_FAULT_CLIENTS:-32}
FAULT_SECONDS=${BENCH_FAULT_SECONDS:-60}
FAULT_AT=${BENCH_FAULT_AT:-20}
FAULTS=${BENCH_FAULTS:-kill stop}
BUILD=${BENCH_BUILD:-1}
OUTPUT=${BENCH_OUTPUT:-docs/performance.md}
RESULTS_DIR=${BENCH_RESULTS_DIR:-bench/results/cluster-$(date -u +%Y%m%dT%H%M%SZ)}

SERVER_DLL=Silo/bin/Release/net10.0/linux-x64/Orleans.KServe.Silo.dll
CLIENT_DLL=bench/Client/bin/Release/net10.0/linux-x64/Orleans.KServe.Bench.Client.dll
LUA=bench/wrk/infer.lua
BODY='{"id":"bench","inputs":[{"name":"input","shape":[2,2],"datatype":"FP32","data":[1,2,3,4]}]}'

log() { printf '[cluster.sh %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "BENCH_ROUNDS: '$ROUNDS' is not a positive integer"
[[ $CONCURRENCY =~ ^[1-9][0-9]*$ ]] || die "BENCH_CONCURRENCY: '$CONCURRENCY' is not a positive integer"
[[ $FAULT_CLIENTS =~ ^[1-9][0-9]*$ ]] || die "BENCH_FAULT_CLIENTS: '$FAULT_CLIENTS' is not a positive integer"
[[ $FAULT_SECONDS =~ ^[1-9][0-9]*$ && $FAULT_AT =~ ^[1-9][0-9]*$ ]] || die "BENCH_FAULT_SECONDS and BENCH_FAULT_AT are whole seconds"
((FAULT_AT < FAULT_SECONDS)) || die "BENCH_FAULT_AT ($FAULT_AT) must be before the end (BENCH_FAULT_SECONDS=$FAULT_SECONDS)"
for tool in wrk redis-server redis-cli python3 dotnet curl; do
    command -v "$tool" >/dev/null || die "$tool is needed (Debian: wrk, redis-server, python3, curl)"
done

mkdir -p "$RESULTS_DIR"
WORK=$(mktemp -d)
PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do kill -CONT "$pid" 2>/dev/null || true; kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT

if [[ $BUILD == 1 ]]; then
    log "building the server and the bench client"
    dotnet build Silo -c Release --nologo -v quiet >"$RESULTS_DIR/build.log" 2>&1 || { cat "$RESULTS_DIR/build.log" >&2; die "build failed"; }
    dotnet build bench/Client -c Release --nologo -v quiet >>"$RESULTS_DIR/build.log" 2>&1 || { cat "$RESULTS_DIR/build.log" >&2; die "build failed"; }
fi

mkdir -p "$WORK/models/double"
cp samples/models/double/model.onnx "$WORK/models/double/model.onnx"
cat >"$WORK/models/double.yaml" <<YAML
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: double
spec:
  predictor:
    model:
      modelFormat: {name: onnx}
      storageUri: file://$WORK/models/double
YAML

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'; }

# start_cluster NAME COUNT: redis and COUNT silos; sets REDIS_PID, SILO_PIDS[], SILO_URLS[]
start_cluster() {
    local name=$1 count=$2 port i line
    port=$(free_port)
    mkdir -p "$WORK/$name/redis"
    redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$WORK/$name/redis" >"$RESULTS_DIR/$name-redis.log" 2>&1 &
    REDIS_PID=$!
    PIDS+=("$REDIS_PID")
    for _ in $(seq 1 300); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
    SILO_PIDS=()
    SILO_URLS=()
    for i in $(seq 1 "$count"); do
        KServe__ClusteringConnection="127.0.0.1:$port" dotnet "$SERVER_DLL" --clustering redis --cluster-id "bench-$name" \
            --advertised-address 127.0.0.1 --http-port 0 --grpc-port 0 --silo-port 0 --gateway-port 0 \
            --model-repository "$WORK/models" >"$RESULTS_DIR/$name-silo$i.log" 2>&1 &
        SILO_PIDS+=($!)
        PIDS+=($!)
    done
    for i in $(seq 1 "$count"); do
        line=""
        for _ in $(seq 1 1200); do
            line=$(grep -o 'Serving REST (v1, v2) on [^ ]*' "$RESULTS_DIR/$name-silo$i.log" || true)
            [[ -n $line ]] && break
            sleep 0.1
        done
        [[ -n $line ]] || die "silo $i of $name did not start (see $RESULTS_DIR/$name-silo$i.log)"
        line=${line##* }
        SILO_URLS+=("${line%/}")
    done
    for url in "${SILO_URLS[@]}"; do
        for _ in $(seq 1 600); do
            [[ $(curl -s "$url/cluster" | python3 -c 'import json,sys; print(sum(s["status"] == "Active" for s in json.load(sys.stdin)["silos"]))' 2>/dev/null) == "$count" ]] && break
            sleep 0.1
        done
    done
}

stop_cluster() {
    local pid
    for pid in "${SILO_PIDS[@]}" "$REDIS_PID"; do kill -CONT "$pid" 2>/dev/null || true; kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${SILO_PIDS[@]}" "$REDIS_PID"; do
        for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
    done
    PIDS=()
}

infer() { curl -s -X POST "$1/v2/models/double/infer" -H 'Content-Type: application/json' -d "$BODY"; }

# The index of the silo (in SILO_URLS) whose silo holds the replica.
replica_index() {
    local view host i
    view=$(curl -s "${SILO_URLS[0]}/cluster")
    host=$(python3 -c 'import json,sys; v = json.loads(sys.argv[1]); print([r["silo"] for r in v["replicas"] if r["model"] == "double"][0])' "$view")
    for i in "${!SILO_URLS[@]}"; do
        if [[ $(curl -s "${SILO_URLS[$i]}/cluster" | python3 -c 'import json,sys; print(json.load(sys.stdin)["self"])') == "$host" ]]; then
            echo "$i"
            return
        fi
    done
    die "no silo answers as $host"
}

# CPU ticks (user + system) of the given processes, from /proc.
ticks() { local sum=0 pid; for pid in "$@"; do sum=$((sum + $(awk '{print $14 + $15}' "/proc/$pid/stat"))); done; echo "$sum"; }

# ---- 1. cross-silo cost -----------------------------------------------------------------
log "cross-silo: redis and two silos"
start_cluster cross 2
infer "${SILO_URLS[0]}" >/dev/null
LOCAL=$(replica_index)
REMOTE=$((1 - LOCAL))
log "the replica is on silo $((LOCAL + 1)); warming up both front ends"
wrk -t2 -c"$CONCURRENCY" -d3s -s "$LUA" "${SILO_URLS[$LOCAL]}/v2/models/double/infer" >/dev/null
wrk -t2 -c"$CONCURRENCY" -d3s -s "$LUA" "${SILO_URLS[$REMOTE]}/v2/models/double/infer" >/dev/null
: >"$RESULTS_DIR/cross.jsonl"
for round in $(seq 1 "$ROUNDS"); do
    for target in local remote; do
        index=$LOCAL
        [[ $target == remote ]] && index=$REMOTE
        before=$(ticks "${SILO_PIDS[@]}" "$REDIS_PID")
        result=$(wrk -t2 -c"$CONCURRENCY" -d"$DURATION" --timeout 10s -s "$LUA" "${SILO_URLS[$index]}/v2/models/double/infer" | grep '^wrk-result: ' | sed 's/^wrk-result: //')
        after=$(ticks "${SILO_PIDS[@]}" "$REDIS_PID")
        echo "{\"round\":$round,\"target\":\"$target\",\"ticks\":$((after - before)),\"hz\":$(getconf CLK_TCK),\"wrk\":$result}" >>"$RESULTS_DIR/cross.jsonl"
        log "round $round $target: $result"
    done
done
stop_cluster

# ---- 2. kill and freeze -----------------------------------------------------------------
: >"$RESULTS_DIR/faults.jsonl"
for fault in $FAULTS; do
    [[ $fault == kill || $fault == stop ]] || die "BENCH_FAULTS: unknown fault '$fault' (kill, stop)"
    log "$fault: redis and three silos, $FAULT_CLIENTS clients for $FAULT_SECONDS s, SIG${fault^^} of the replica's silo at $FAULT_AT s"
    start_cluster "$fault" 3
    infer "${SILO_URLS[0]}" >/dev/null
    victim=$(replica_index)
    urls=()
    for i in "${!SILO_URLS[@]}"; do [[ $i != "$victim" ]] && urls+=("${SILO_URLS[$i]}"); done
    dotnet "$CLIENT_DLL" timeline --urls "$(IFS=,; echo "${urls[*]}")" --concurrency "$FAULT_CLIENTS" --seconds "$FAULT_SECONDS" \
        --timeout 60 --out "$RESULTS_DIR/$fault-timeline.csv" >"$RESULTS_DIR/$fault-timeline.out" &
    client=$!
    sleep "$FAULT_AT"
    kill "-${fault^^}" "${SILO_PIDS[$victim]}"
    signalled=$(date +%s%3N)
    wait "$client"
    started=$(sed -n 's/^timeline-result: //p' "$RESULTS_DIR/$fault-timeline.out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["started_unix_ms"])')
    echo "{\"fault\":\"$fault\",\"at_s\":$(((signalled - started)))e-3,\"clients\":$FAULT_CLIENTS,\"seconds\":$FAULT_SECONDS,\"timeline\":\"$fault-timeline.csv\"}" >>"$RESULTS_DIR/faults.jsonl"
    stop_cluster
done

python3 - "$RESULTS_DIR" "$OUTPUT" "$ROUNDS" "$DURATION" "$CONCURRENCY" <<'PY'
import csv, json, os, statistics, sys
results, output, rounds, duration, concurrency = sys.argv[1:6]

def median(values):
    return statistics.median(values) if values else float("nan")

cross = [json.loads(l) for l in open(os.path.join(results, "cross.jsonl")) if l.strip()]
rows = {}
for r in cross:
    w = r["wrk"]
    cpu_us = r["ticks"] / r["hz"] * 1e6 / max(w["requests"], 1)
    rows.setdefault(r["target"], []).append((w["p50_us"], w["p99_us"], w["rps"], cpu_us, w["non2xx"] + w["connect_errors"] + w["read_errors"] + w["timeouts"]))
med = {t: [median([v[i] for v in vs]) for i in range(5)] for t, vs in rows.items()}
lines = []
lines.append("## Silo cluster: cross-silo cost, SIGKILL and SIGSTOP under load")
lines.append("")
lines.append("_Written by `bench/cluster.sh` (see `bench/README.md`); the text between the `bench:cluster` markers is replaced on every run._")
lines.append("")
lines.append(f"Command: `bench/cluster.sh` (BENCH_ROUNDS={rounds}, BENCH_DURATION={duration}, BENCH_CONCURRENCY={concurrency}). Two silos on Redis; "
             "`local` sends to the front end of the silo holding the `double` replica (the local fast path), `remote` to the other one's, "
             "whose every call crosses to it over Orleans' messaging. Medians of the rounds, which alternate local and remote; CPU is "
             "every process of the cluster (redis-server and both silos, /proc utime + stime) over the calls answered; wrk shares the 2 cores.")
lines.append("")
lines.append("| target | p50 µs | p99 µs | requests/s | cluster CPU µs/call | failed |")
lines.append("| --- | --- | --- | --- | --- | --- |")
for t in ("local", "remote"):
    if t in med:
        p50, p99, rps, cpu, failed = med[t]
        lines.append(f"| {t} | {p50:.0f} | {p99:.0f} | {rps:.0f} | {cpu:.1f} | {sum(v[4] for v in rows[t])} |")
if "local" in med and "remote" in med:
    lines.append("")
    lines.append(f"Crossing silos adds {med['remote'][0] - med['local'][0]:.0f} µs at p50 and {med['remote'][1] - med['local'][1]:.0f} µs at p99 "
                 f"(remote/local: p50 ×{med['remote'][0] / med['local'][0]:.2f}, CPU per call ×{med['remote'][3] / med['local'][3]:.2f}).")

faults = [json.loads(l) for l in open(os.path.join(results, "faults.jsonl")) if l.strip()]
if faults:
    lines.append("")
    lines.append("Kill and freeze: three silos on Redis, the clients send through the front ends of the two that do not hold the replica; "
                 "at the time shown the replica's silo gets the signal. The clients' calls wait on the lost replica (each client sends "
                 "its next call when the last is answered), so the outage is the longest time without any answer after the signal; "
                 "`answers again after` is from the signal to its end. `p99 around` is over the calls answered from the signal until "
                 "5 s after that. docs/cluster.md's bound on a lost silo's models answering again: 25 s to its death plus the model's load.")
    lines.append("")
    lines.append("| fault | clients | seconds | signal at s | calls | failed | p99 before ms | p99 around ms | answers again after s | slowest call s |")
    lines.append("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for f in faults:
        calls = [(float(r["sent_ms"]) / 1000, float(r["latency_ms"]) / 1000, int(r["status"])) for r in csv.DictReader(open(os.path.join(results, f["timeline"])))]
        at = f["at_s"]
        ok = lambda c: 200 <= c[2] <= 299
        failed = sum(1 for c in calls if not ok(c))
        before = sorted(c[1] for c in calls if c[0] + c[1] < at)
        answers = sorted(c[0] + c[1] for c in calls if ok(c) and c[0] + c[1] >= at)
        gap_end, gap = at, 0.0
        previous = at
        for t in answers:
            if t - previous > gap:
                gap, gap_end = t - previous, t
            previous = t
        again = gap_end - at
        around = sorted(c[1] for c in calls if at <= c[0] + c[1] <= gap_end + 5)
        p99 = lambda xs: xs[min(len(xs) - 1, int(len(xs) * 0.99))] * 1000 if xs else float("nan")
        lines.append(f"| SIG{f['fault'].upper()} | {f['clients']} | {f['seconds']} | {at:.1f} | {len(calls)} | {failed} | {p99(before):.1f} | "
                     f"{p99(around):.0f} | {again:.1f} | {max(c[1] for c in calls):.1f} |")

section = "\n".join(lines)
text = open(output).read() if os.path.exists(output) else ""
begin, end = "<!-- bench:cluster:begin -->", "<!-- bench:cluster:end -->"
block = f"{begin}\n\n{section}\n\n{end}"
if begin in text and end in text:
    text = text[:text.index(begin)] + block + text[text.index(end) + len(end):]
else:
    text = text.rstrip("\n") + "\n\n" + block + "\n"
open(output, "w").write(text)
print(section)
PY
log "results in $RESULTS_DIR; table written to $OUTPUT"
