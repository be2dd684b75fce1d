#!/usr/bin/env bash
# REST benchmark: Open Inference Protocol v2 infer on the `double` model, the full
# Orleans.KServe server against a bare Kestrel floor (bench/Floor). See bench/README.md.
#
# For every concurrency level it runs a warm-up per target, then BENCH_ROUNDS rounds that
# alternate floor, server, floor, server..., takes the medians and writes the section between
# the bench:rest markers of docs/performance.md.
set -euo pipefail
shopt -s inherit_errexit

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

# ---- settings --------------------------------------------------------------------------
TARGETS=${BENCH_TARGETS:-floor server}
CONCURRENCY=${BENCH_CONCURRENCY:-1 8 32 64}
DURATION=${BENCH_DURATION:-10s}
WARMUP=${BENCH_WARMUP:-5s}
ROUNDS=${BENCH_ROUNDS:-3}
SERVER_ARGS=${BENCH_SERVER_ARGS:-}
SERVER_URL=${BENCH_SERVER_URL:-}
STRICT=${BENCH_STRICT:-1}
BUILD=${BENCH_BUILD:-1}
OUTPUT=${BENCH_OUTPUT:-docs/performance.md}
START_TIMEOUT=${BENCH_START_TIMEOUT:-120}
WRK_TIMEOUT=${BENCH_WRK_TIMEOUT:-5s}
SECTION=${BENCH_SECTION:-rest}
TITLE=${BENCH_TITLE:-REST v2 infer: server vs bare Kestrel floor}
RESULTS_DIR=${BENCH_RESULTS_DIR:-bench/results/rest-$(date -u +%Y%m%dT%H%M%SZ)}

FLOOR_PROJECT=bench/Floor/Orleans.KServe.Bench.Floor.csproj
FLOOR_DLL=bench/Floor/bin/Release/net10.0/linux-x64/Orleans.KServe.Bench.Floor.dll
SERVER_PROJECT=Silo/Orleans.KServe.Silo.csproj
SERVER_DLL=Silo/bin/Release/net10.0/linux-x64/Orleans.KServe.Silo.dll
LUA=bench/wrk/infer.lua
INFER_PATH=/v2/models/double/infer
READY_PATH=/v2/health/ready

log() { printf '[rest.sh %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }
# shellcheck source=bench/baseline.sh
source bench/baseline.sh
set -E
trap 'log "error: \"$BASH_COMMAND\" failed with exit status $? (line $LINENO)"' ERR

# ---- validate the settings ---------------------------------------------------------------
read -r -a TARGET_LIST <<<"$TARGETS"
read -r -a CONCURRENCY_LIST <<<"$CONCURRENCY"
read -r -a SERVER_EXTRA <<<"$SERVER_ARGS"
((${#TARGET_LIST[@]} > 0)) || die "BENCH_TARGETS is empty"
((${#CONCURRENCY_LIST[@]} > 0)) || die "BENCH_CONCURRENCY is empty"
declare -A SEEN=()
for target in "${TARGET_LIST[@]}"; do
    [[ $target == floor || $target == server ]] || die "BENCH_TARGETS: unknown target '$target' (floor, server)"
    [[ -z ${SEEN[$target]:-} ]] || die "BENCH_TARGETS: '$target' given twice"
    SEEN[$target]=1
done
# Benchmark in the fixed order floor, server whatever order the list was given in; the baseline after the server.
if [[ -n $BASELINE_REV ]]; then
    [[ -n ${SEEN[server]:-} ]] || die "BENCH_BASELINE_REV compares the server with another revision's: keep server in BENCH_TARGETS"
    [[ -z $SERVER_URL ]] || die "BENCH_BASELINE_REV needs the server started by this script (no BENCH_SERVER_URL)"
    SEEN[baseline]=1
fi
ORDERED=()
for target in floor server baseline; do
    if [[ -n ${SEEN[$target]:-} ]]; then ORDERED+=("$target"); fi
done
TARGET_LIST=("${ORDERED[@]}")
for c in "${CONCURRENCY_LIST[@]}"; do
    [[ $c =~ ^[1-9][0-9]*$ ]] || die "BENCH_CONCURRENCY: '$c' is not a positive integer"
done
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "BENCH_ROUNDS: '$ROUNDS' is not a positive integer"
[[ $DURATION =~ ^[1-9][0-9]*[smh]?$ ]] || die "BENCH_DURATION: '$DURATION' is not a wrk duration (e.g. 10s)"
[[ $WARMUP =~ ^([0-9]+[smh]?)$ ]] || die "BENCH_WARMUP: '$WARMUP' is not a wrk duration (0 skips the warm-up)"
[[ $WRK_TIMEOUT =~ ^[1-9][0-9]*[smh]?$ ]] || die "BENCH_WRK_TIMEOUT: '$WRK_TIMEOUT' is not a wrk duration"
[[ $START_TIMEOUT =~ ^[1-9][0-9]*$ ]] || die "BENCH_START_TIMEOUT: '$START_TIMEOUT' is not a number of seconds"
[[ $STRICT == 0 || $STRICT == 1 ]] || die "BENCH_STRICT: '$STRICT' is not 0 or 1"
[[ $BUILD == 0 || $BUILD == 1 ]] || die "BENCH_BUILD: '$BUILD' is not 0 or 1"
if [[ $WARMUP =~ ^0+[smh]?$ ]]; then WARMUP=0; fi
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- tools ---------------------------------------------------------------------------------
apt_install() {
    local sudo=()
    if ((EUID != 0)); then
        command -v sudo >/dev/null || die "$1 is missing and installing it needs root (apt-get install $1)"
        sudo=(sudo)
    fi
    command -v apt-get >/dev/null || die "$1 is missing and there is no apt-get to install it with"
    log "installing $1 with apt-get"
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "$1" >/dev/null
}
command -v wrk >/dev/null || apt_install wrk
command -v curl >/dev/null || apt_install curl
command -v python3 >/dev/null || die "python3 is needed to write the results"
if [[ -n ${SEEN[floor]:-} || -z $SERVER_URL ]]; then
    command -v dotnet >/dev/null || die "dotnet is needed to build and run the targets"
fi

if [[ -n ${SEEN[server]:-} && -z $SERVER_URL && $BUILD == 1 && ! -f $SERVER_PROJECT ]]; then
    die "$SERVER_PROJECT does not exist (BENCH_TARGETS=floor benchmarks the floor alone)"
fi

# ---- processes we start, stopped by PID on exit -------------------------------------------
PIDS=()
WRK_PID=
cleanup() {
    local pid deadline
    if [[ -n ${WRK_PID:-} ]]; then
        kill -TERM "$WRK_PID" 2>/dev/null || true
        wait "$WRK_PID" 2>/dev/null || true
    fi
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    deadline=$((SECONDS + 15))
    for pid in "${PIDS[@]}"; do
        while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
        if kill -0 "$pid" 2>/dev/null; then
            log "PID $pid did not stop on SIGTERM, killing it"
            kill -KILL "$pid" 2>/dev/null || true
        fi
        wait "$pid" 2>/dev/null || true
    done
    baseline_cleanup
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- build -------------------------------------------------------------------------------
if ((BUILD)); then
    if [[ -n ${SEEN[floor]:-} ]]; then
        log "building the floor ($FLOOR_PROJECT, Release)"
        dotnet build -c Release -nologo -v quiet "$FLOOR_PROJECT" >&2
    fi
    if [[ -n ${SEEN[server]:-} && -z $SERVER_URL ]]; then
        log "building the server ($SERVER_PROJECT, Release)"
        dotnet build -c Release -nologo -v quiet "$SERVER_PROJECT" >&2
    fi
fi
if [[ -n $BASELINE_REV ]]; then baseline_build; fi

mkdir -p "$RESULTS_DIR"
RUNS="$RESULTS_DIR/runs.jsonl"
BASELINE_RUNS="$RESULTS_DIR/baseline-runs.jsonl"
: >"$RUNS"
: >"$BASELINE_RUNS"
log "raw results go to $RESULTS_DIR"

# ---- start the targets -------------------------------------------------------------------
declare -A URL=() PID_OF=() LOG_OF=() COMMAND_OF=()

# The http:// addresses a target printed as "Now listening on: ..."; wildcard hosts become
# 127.0.0.1 so that wrk and curl can reach them.
listening_urls() {
    grep -oE 'Now listening on: https?://[][A-Za-z0-9._:+*-]+' "$1" 2>/dev/null |
        sed -E 's/^Now listening on: //; s#//(\[::\]|0\.0\.0\.0|\+|\*|localhost):#//127.0.0.1:#; s#/+$##' |
        grep -E '^http://' || true
}

show_log() {
    log "last lines of $1:"
    tail -n 40 "$1" >&2 || true
}

# Starts a target, waits until it prints its address and until GET /v2/health/ready answers
# 200 on one of those addresses, then records that address in URL[target].
start_target() {
    local target=$1
    shift
    local logfile="$RESULTS_DIR/$target.log"
    log "starting $target: $*"
    "$@" </dev/null >"$logfile" 2>&1 &
    local pid=$!
    PIDS+=("$pid")
    PID_OF[$target]=$pid
    LOG_OF[$target]=$logfile
    local deadline=$((SECONDS + START_TIMEOUT)) url code
    while ((SECONDS < deadline)); do
        if ! kill -0 "$pid" 2>/dev/null; then
            show_log "$logfile"
            die "$target (PID $pid) exited before it was ready"
        fi
        for url in $(listening_urls "$logfile"); do
            code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$url$READY_PATH" || true)
            if [[ $code == 200 ]]; then
                URL[$target]=$url
                log "$target is ready at $url (PID $pid)"
                return 0
            fi
        done
        sleep 0.25
    done
    show_log "$logfile"
    die "$target was not ready within ${START_TIMEOUT}s (BENCH_START_TIMEOUT)"
}

# One infer call must come back 200 with outputs[0].data == [2,4,6,8] before we time anything.
check_infer() {
    local target=$1 body
    body=$(curl -s --max-time 10 -H 'Content-Type: application/json' -w '\n%{http_code}' \
        --data '{"id":"check","inputs":[{"name":"input","shape":[2,2],"datatype":"FP32","data":[1,2,3,4]}]}' \
        "${URL[$target]}$INFER_PATH") || die "$target: the infer check request failed"
    python3 - "$target" "$body" <<'PY' || die "$1: wrong answer to the infer check"
import json, sys
target, raw = sys.argv[1], sys.argv[2]
text, _, status = raw.rpartition("\n")
def flat(value):
    return [x for item in value for x in flat(item)] if isinstance(value, list) else [value]
try:
    if status != "200":
        raise ValueError(f"HTTP {status}")
    answer = json.loads(text)
    output = answer["outputs"][0]
    if answer.get("model_name") != "double" or output.get("name") != "output":
        raise ValueError("wrong model or output name")
    if [float(x) for x in flat(output["data"])] != [2.0, 4.0, 6.0, 8.0]:
        raise ValueError("wrong data")
except Exception as exc:  # noqa: BLE001 - any failure is a wrong answer
    sys.exit(f"{target}: {exc}: {raw[:500]}")
PY
    log "$target answers the infer check correctly"
}

if [[ -n ${SEEN[floor]:-} ]]; then
    [[ -f $FLOOR_DLL ]] || die "$FLOOR_DLL is missing (build it, or drop BENCH_BUILD=0)"
    COMMAND_OF[floor]="dotnet $FLOOR_DLL --urls http://127.0.0.1:0"
    start_target floor dotnet "$FLOOR_DLL" --urls http://127.0.0.1:0
    check_infer floor
fi
if [[ -n ${SEEN[server]:-} ]]; then
    if [[ -n $SERVER_URL ]]; then
        URL[server]=${SERVER_URL%/}
        COMMAND_OF[server]="already running at ${URL[server]} (BENCH_SERVER_URL)"
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "${URL[server]}$READY_PATH" || true)
        [[ $code == 200 ]] || die "BENCH_SERVER_URL: GET ${URL[server]}$READY_PATH answered '$code', not 200"
    else
        [[ -f $SERVER_DLL ]] || die "$SERVER_DLL is missing (build it, or drop BENCH_BUILD=0)"
        server_cmd=(dotnet "$SERVER_DLL" --http-port 0 --grpc-port 0 --silo-port 0 --gateway-port 0 "${SERVER_EXTRA[@]}")
        # Beside a baseline both serve the same folder of models, this checkout's.
        if [[ -n $BASELINE_REV ]]; then server_cmd+=(--model-repository "$ROOT/samples"); fi
        COMMAND_OF[server]="${server_cmd[*]}"
        start_target server "${server_cmd[@]}"
    fi
    check_infer server
fi
if [[ -n ${SEEN[baseline]:-} ]]; then
    baseline_cmd=(dotnet "$BASELINE_DLL" --http-port 0 --grpc-port 0 --silo-port 0 --gateway-port 0 --model-repository "$ROOT/samples" "${SERVER_EXTRA[@]}")
    COMMAND_OF[baseline]="the same command on the server built from revision $BASELINE_REV"
    start_target baseline "${baseline_cmd[@]}"
    check_infer baseline
fi

# ---- run ---------------------------------------------------------------------------------
# run_wrk TARGET CONCURRENCY DURATION OUTFILE: one wrk run, its whole output in OUTFILE.
# wrk runs in the background and we wait for it, so that a signal reaches our traps at once
# (cleanup stops wrk too) instead of after the run.
run_wrk() {
    local target=$1 c=$2 duration=$3 out=$4
    local threads=$((c < 2 ? c : 2)) status=0
    BENCH_STRICT=$STRICT wrk -t"$threads" -c"$c" -d"$duration" --timeout "$WRK_TIMEOUT" --latency \
        -s "$LUA" "${URL[$target]}$INFER_PATH" </dev/null >"$out" 2>&1 &
    WRK_PID=$!
    wait "$WRK_PID" || status=$?
    WRK_PID=
    if ((status != 0)); then
        cat "$out" >&2
        die "wrk failed (exit status $status) against $target at concurrency $c"
    fi
    if [[ -n ${PID_OF[$target]:-} ]] && ! kill -0 "${PID_OF[$target]}" 2>/dev/null; then
        show_log "${LOG_OF[$target]}"
        die "$target (PID ${PID_OF[$target]}) died during the run"
    fi
    if ! grep -q '^wrk-result: ' "$out"; then
        cat "$out" >&2
        die "wrk printed no result line against $target (is $LUA intact?)"
    fi
}

for c in "${CONCURRENCY_LIST[@]}"; do
    if [[ $WARMUP != 0 ]]; then
        for target in "${TARGET_LIST[@]}"; do
            log "warm-up: $target, concurrency $c, $WARMUP"
            run_wrk "$target" "$c" "$WARMUP" "$RESULTS_DIR/$target-c$c-warmup.txt"
        done
    fi
    for ((round = 1; round <= ROUNDS; round++)); do
        for target in "${TARGET_LIST[@]}"; do
            out="$RESULTS_DIR/$target-c$c-r$round.txt"
            cpu_before=
            if [[ -n ${PID_OF[$target]:-} && $target != floor ]]; then cpu_before=$(proc_cpu "${PID_OF[$target]}"); fi
            run_wrk "$target" "$c" "$DURATION" "$out"
            result=$(sed -n 's/^wrk-result: //p' "$out" | head -n1)
            line=$(printf '{"target":"%s","concurrency":%d,"round":%d,"threads":%d,"duration":"%s",%s' \
                "$target" "$c" "$round" "$((c < 2 ? c : 2))" "$DURATION" "${result#\{}")
            if [[ $target != baseline ]]; then printf '%s\n' "$line" >>"$RUNS"; fi
            if [[ -n $BASELINE_REV && -n $cpu_before ]]; then
                cpu=$(awk -v a="$cpu_before" -v b="$(proc_cpu "${PID_OF[$target]}")" 'BEGIN { printf "%.2f", b - a }')
                printf '{"scenario":"rest-json","server_cpu_s":%s,%s\n' "$cpu" "${line#\{}" >>"$BASELINE_RUNS"
            fi
            summary=$(python3 -c '
import json, sys
r = json.loads(sys.argv[1])
errors = sum(r[k] for k in ("non2xx", "connect_errors", "read_errors", "write_errors", "timeouts"))
print("{:,.0f} req/s, p50 {:.2f} ms, p99 {:.2f} ms, {} errors".format(
    r["rps"], r["p50_us"] / 1000, r["p99_us"] / 1000, errors))' "$result")
            log "$target, concurrency $c, round $round/$ROUNDS: $summary"
        done
    done
done

# ---- write docs/performance.md -----------------------------------------------------------
quote() { # shell-quote a value only where it needs it
    if [[ $1 =~ ^[A-Za-z0-9_./:=@%+-]+$ ]]; then printf '%s' "$1"; else printf "'%s'" "${1//\'/\'\\\'\'}"; fi
}
named_targets=()
for target in "${TARGET_LIST[@]}"; do if [[ $target != baseline ]]; then named_targets+=("$target"); fi; done
command_line="BENCH_TARGETS=$(quote "${named_targets[*]}") BENCH_CONCURRENCY=$(quote "${CONCURRENCY_LIST[*]}")"
command_line+=" BENCH_DURATION=$DURATION BENCH_ROUNDS=$ROUNDS BENCH_WARMUP=$WARMUP"
if [[ -n $SERVER_ARGS ]]; then command_line+=" BENCH_SERVER_ARGS=$(quote "$SERVER_ARGS")"; fi
if [[ -n $SERVER_URL ]]; then command_line+=" BENCH_SERVER_URL=$(quote "$SERVER_URL")"; fi
if [[ $STRICT == 0 ]]; then command_line+=" BENCH_STRICT=0"; fi
if [[ $WRK_TIMEOUT != 5s ]]; then command_line+=" BENCH_WRK_TIMEOUT=$WRK_TIMEOUT"; fi
if [[ $SECTION != rest ]]; then command_line+=" BENCH_SECTION=$(quote "$SECTION") BENCH_TITLE=$(quote "$TITLE")"; fi
command_line+=" bench/rest.sh"

cpu_model=$(grep -m1 -E '^model name' /proc/cpuinfo | sed -E 's/^[^:]*:[[:space:]]*//' || true)
mem_gib=$(awk '/^MemTotal:/ { printf "%.0f", $2 / 1048576 }' /proc/meminfo 2>/dev/null || true)
runtime=$(dotnet --list-runtimes 2>/dev/null | awk '/^Microsoft.AspNetCore.App / { v = $2 } END { print v }' || true)
machine="$(nproc) CPUs (nproc), ${cpu_model:-unknown CPU}, ${mem_gib:-?} GiB RAM, $(uname -sr)"
wrk_version=$(wrk --version 2>&1 || true) # wrk --version exits 1
machine+=", ASP.NET Core ${runtime:-?}, $(awk 'NR == 1 { print $1, $2 }' <<<"$wrk_version")"
machine+=", load average before the run $LOAD_BEFORE"
revision=$(git rev-parse --short HEAD 2>/dev/null || echo 'no commit yet')
if [[ -n $(git --no-optional-locks status --porcelain 2>/dev/null | head -n1) ]]; then revision+=" (with uncommitted changes)"; fi

method="wrk runs on the same machine as the targets, which stay up for the whole run;"
if [[ $WARMUP != 0 ]]; then
    method+=" at each concurrency a $WARMUP warm-up run per target (discarded), then"
else
    method+=" no warm-up, then"
fi
method+=" $ROUNDS round(s) of $DURATION per target"
if ((${#TARGET_LIST[@]} > 1)); then
    method+=", alternating floor, server within each round."
else
    method+=" (${TARGET_LIST[0]} only)."
fi

if [[ -n $BASELINE_REV ]]; then
    python3 bench/write_baseline_section.py \
        --runs "$BASELINE_RUNS" \
        --output "$OUTPUT" \
        --section "$SECTION-baseline" \
        --title "REST v2 infer JSON: this revision against $BASELINE_REV, server CPU per call" \
        --date "$(date -u '+%Y-%m-%d %H:%M UTC')" \
        --machine "$machine" \
        --revision "$revision" \
        --baseline "$BASELINE_REV" \
        --command "BENCH_BASELINE_REV=$BASELINE_REV $command_line" \
        --load "wrk -t<min(c,2)> -c<c> -d$DURATION --latency -s $LUA <target>$INFER_PATH"
    log "wrote the bench:$SECTION-baseline section of $OUTPUT"
    # The floor-vs-server section is rewritten only when the floor ran too.
    if [[ -z ${SEEN[floor]:-} ]]; then exit 0; fi
fi

python3 bench/write_rest_section.py \
    --runs "$RUNS" \
    --output "$OUTPUT" \
    --date "$(date -u '+%Y-%m-%d %H:%M UTC')" \
    --machine "$machine" \
    --revision "$revision" \
    --command "$command_line" \
    --wrk-command "wrk -t<min(c,2)> -c<c> -d$DURATION --timeout $WRK_TIMEOUT --latency -s $LUA <target>$INFER_PATH" \
    --method "$method" \
    --floor-command "${COMMAND_OF[floor]:-}" \
    --server-command "${COMMAND_OF[server]:-}" \
    --section "$SECTION" \
    --title "$TITLE"
log "wrote the bench:$SECTION section of $OUTPUT"
