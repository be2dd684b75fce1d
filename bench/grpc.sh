#!/usr/bin/env bash
# gRPC and REST binary benchmarks. See bench/README.md.
#
#   grpc         v2 gRPC ModelInfer on `double` (typed fp32_contents and raw_input_contents; a 2x2 and
#                a 64 KiB input), the server's gRPC port against a bare grpc-dotnet floor (bench/GrpcFloor),
#                load from h2load
#   rest-binary  v2 REST infer with binary tensor data on `double` (same inputs), the server against the
#                REST floor (bench/Floor), load from wrk (bench/wrk/binary.lua)
#   resnet18     ResNet18, batch 1, over raw gRPC and REST binary, against raw ONNX Runtime in-process
#                with the server's session options (bench/OrtBaseline)
#   roundtrip    1 MiB of FP32 through `double`, REST binary against REST JSON (bench/Client)
#
# Targets and their floor alternate within every round; the section between the bench:grpc markers
# of docs/performance.md gets the medians over BENCH_ROUNDS.
set -euo pipefail
shopt -s inherit_errexit

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

# ---- settings --------------------------------------------------------------------------
SCENARIOS=${BENCH_SCENARIOS:-grpc rest-binary resnet18 roundtrip}
TARGETS=${BENCH_TARGETS:-floor server}
CONCURRENCY=${BENCH_CONCURRENCY:-1 8 32 64}
PAYLOADS=${BENCH_PAYLOADS:-small 64k}
CONTENTS=${BENCH_CONTENTS:-typed raw}
RESNET_CONCURRENCY=${BENCH_RESNET_CONCURRENCY:-2 4}
ORT_RUNNERS=${BENCH_ORT_RUNNERS:-$(nproc)}
ORT_SESSIONS=${BENCH_ORT_SESSIONS:-shared}
DURATION=${BENCH_DURATION:-10s}
WARMUP=${BENCH_WARMUP:-5s}
ROUNDS=${BENCH_ROUNDS:-3}
ROUNDTRIPS=${BENCH_ROUNDTRIPS:-61}
CHECK_CALLS=${BENCH_CHECK_CALLS:-200}
SERVER_ARGS=${BENCH_SERVER_ARGS:-}
BUILD=${BENCH_BUILD:-1}
OUTPUT=${BENCH_OUTPUT:-docs/performance.md}
START_TIMEOUT=${BENCH_START_TIMEOUT:-120}
REQUEST_TIMEOUT=${BENCH_REQUEST_TIMEOUT:-5s}
SECTION=${BENCH_SECTION:-grpc}
TITLE=${BENCH_TITLE:-gRPC and REST binary: server vs floors, ResNet18 vs raw ONNX Runtime}
RESULTS_DIR=${BENCH_RESULTS_DIR:-bench/results/grpc-$(date -u +%Y%m%dT%H%M%SZ)}

RELEASE=bin/Release/net10.0/linux-x64
GRPC_FLOOR_PROJECT=bench/GrpcFloor/Orleans.KServe.Bench.GrpcFloor.csproj
GRPC_FLOOR_DLL=bench/GrpcFloor/$RELEASE/Orleans.KServe.Bench.GrpcFloor.dll
REST_FLOOR_PROJECT=bench/Floor/Orleans.KServe.Bench.Floor.csproj
REST_FLOOR_DLL=bench/Floor/$RELEASE/Orleans.KServe.Bench.Floor.dll
CLIENT_PROJECT=bench/Client/Orleans.KServe.Bench.Client.csproj
CLIENT_DLL=bench/Client/$RELEASE/Orleans.KServe.Bench.Client.dll
ORT_PROJECT=bench/OrtBaseline/Orleans.KServe.Bench.OrtBaseline.csproj
ORT_DLL=bench/OrtBaseline/$RELEASE/Orleans.KServe.Bench.OrtBaseline.dll
SERVER_PROJECT=Silo/Orleans.KServe.Silo.csproj
SERVER_DLL=Silo/$RELEASE/Orleans.KServe.Silo.dll
RESNET_MODEL=samples/models/resnet18/model.onnx
LUA=bench/wrk/binary.lua
GRPC_INFER_PATH=/inference.GRPCInferenceService/ModelInfer
READY_PATH=/v2/health/ready

log() { printf '[grpc.sh %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }
# shellcheck source=bench/baseline.sh
source bench/baseline.sh
set -E
trap 'log "error: \"$BASH_COMMAND\" failed with exit status $? (line $LINENO)"' ERR

# ---- validate the settings ---------------------------------------------------------------
read -r -a SCENARIO_LIST <<<"$SCENARIOS"
read -r -a TARGET_LIST <<<"$TARGETS"
read -r -a CONCURRENCY_LIST <<<"$CONCURRENCY"
read -r -a PAYLOAD_LIST <<<"$PAYLOADS"
read -r -a CONTENTS_LIST <<<"$CONTENTS"
read -r -a RESNET_CONCURRENCY_LIST <<<"$RESNET_CONCURRENCY"
read -r -a SERVER_EXTRA <<<"$SERVER_ARGS"

# one_of NAME VALUE ALLOWED...: VALUE must be one of ALLOWED.
one_of() {
    local name=$1 value=$2 allowed
    shift 2
    for allowed in "$@"; do [[ $value == "$allowed" ]] && return 0; done
    die "$name: unknown value '$value' (one of: $*)"
}
# unique NAME VALUES...: no value twice.
unique() {
    local name=$1 value
    shift
    local -A seen=()
    for value in "$@"; do
        [[ -z ${seen[$value]:-} ]] || die "$name: '$value' given twice"
        seen[$value]=1
    done
}
declare -A SCENARIO=() TARGET=()
for s in "${SCENARIO_LIST[@]}"; do one_of BENCH_SCENARIOS "$s" grpc rest-binary resnet18 roundtrip; SCENARIO[$s]=1; done
for t in "${TARGET_LIST[@]}"; do one_of BENCH_TARGETS "$t" floor server; TARGET[$t]=1; done
for p in "${PAYLOAD_LIST[@]}"; do one_of BENCH_PAYLOADS "$p" small 64k; done
for k in "${CONTENTS_LIST[@]}"; do one_of BENCH_CONTENTS "$k" typed raw; done
one_of BENCH_ORT_SESSIONS "$ORT_SESSIONS" shared per-runner
((${#SCENARIO_LIST[@]} > 0)) || die "BENCH_SCENARIOS is empty"
((${#TARGET_LIST[@]} > 0)) || die "BENCH_TARGETS is empty"
unique BENCH_SCENARIOS "${SCENARIO_LIST[@]}"
unique BENCH_TARGETS "${TARGET_LIST[@]}"
unique BENCH_PAYLOADS "${PAYLOAD_LIST[@]}"
unique BENCH_CONTENTS "${CONTENTS_LIST[@]}"
unique BENCH_CONCURRENCY "${CONCURRENCY_LIST[@]}"
unique BENCH_RESNET_CONCURRENCY "${RESNET_CONCURRENCY_LIST[@]}"
for c in "${CONCURRENCY_LIST[@]}" "${RESNET_CONCURRENCY_LIST[@]}" "$ORT_RUNNERS"; do
    [[ $c =~ ^[1-9][0-9]*$ ]] || die "BENCH_CONCURRENCY, BENCH_RESNET_CONCURRENCY, BENCH_ORT_RUNNERS: '$c' is not a positive integer"
done
if [[ -n ${SCENARIO[grpc]:-} || -n ${SCENARIO[rest-binary]:-} ]]; then
    ((${#CONCURRENCY_LIST[@]} > 0)) || die "BENCH_CONCURRENCY is empty"
    ((${#PAYLOAD_LIST[@]} > 0)) || die "BENCH_PAYLOADS is empty"
fi
if [[ -n ${SCENARIO[grpc]:-} ]]; then ((${#CONTENTS_LIST[@]} > 0)) || die "BENCH_CONTENTS is empty"; fi
if [[ -n ${SCENARIO[resnet18]:-} ]]; then ((${#RESNET_CONCURRENCY_LIST[@]} > 0)) || die "BENCH_RESNET_CONCURRENCY is empty"; fi
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "BENCH_ROUNDS: '$ROUNDS' is not a positive integer"
[[ $ROUNDTRIPS =~ ^[1-9][0-9]*$ ]] || die "BENCH_ROUNDTRIPS: '$ROUNDTRIPS' is not a positive integer"
[[ $CHECK_CALLS =~ ^[1-9][0-9]*$ ]] || die "BENCH_CHECK_CALLS: '$CHECK_CALLS' is not a positive integer"
[[ $DURATION =~ ^[1-9][0-9]*[smh]?$ ]] || die "BENCH_DURATION: '$DURATION' is not a duration (e.g. 10s)"
[[ $WARMUP =~ ^[0-9]+[smh]?$ ]] || die "BENCH_WARMUP: '$WARMUP' is not a duration (0 skips the warm-up)"
[[ $REQUEST_TIMEOUT =~ ^[1-9][0-9]*s?$ ]] || die "BENCH_REQUEST_TIMEOUT: '$REQUEST_TIMEOUT' is not a number of seconds (e.g. 5s)"
[[ $START_TIMEOUT =~ ^[1-9][0-9]*$ ]] || die "BENCH_START_TIMEOUT: '$START_TIMEOUT' is not a number of seconds"
[[ $BUILD == 0 || $BUILD == 1 ]] || die "BENCH_BUILD: '$BUILD' is not 0 or 1"
if [[ $WARMUP =~ ^0+[smh]?$ ]]; then WARMUP=0; fi
[[ $DURATION =~ [smh]$ ]] || DURATION+=s
[[ $WARMUP == 0 || $WARMUP =~ [smh]$ ]] || WARMUP+=s
[[ $REQUEST_TIMEOUT =~ s$ ]] || REQUEST_TIMEOUT+=s
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)

# seconds DURATION: a wrk/h2load duration (10s, 2m, 1h) in seconds.
seconds() {
    local value=${1%[smh]}
    case $1 in
        *m) echo $((value * 60)) ;;
        *h) echo $((value * 3600)) ;;
        *) echo "$value" ;;
    esac
}

# What runs: floors only where a scenario has one; the server wherever it is a target, and for
# resnet18 and roundtrip (which have no floor).
WANT_GRPC_FLOOR='' WANT_REST_FLOOR='' WANT_SERVER=''
if [[ -n ${TARGET[floor]:-} && -n ${SCENARIO[grpc]:-} ]]; then WANT_GRPC_FLOOR=1; fi
if [[ -n ${TARGET[floor]:-} && -n ${SCENARIO[rest-binary]:-} ]]; then WANT_REST_FLOOR=1; fi
if [[ -n ${TARGET[server]:-} ]]; then WANT_SERVER=1; fi
if [[ -z $WANT_SERVER && ( -n ${SCENARIO[resnet18]:-} || -n ${SCENARIO[roundtrip]:-} ) ]]; then
    # resnet18 and roundtrip have no floor: without the server they are dropped, unless asked for by name.
    [[ -z ${BENCH_SCENARIOS:-} ]] || die "BENCH_SCENARIOS resnet18 and roundtrip measure the server: add server to BENCH_TARGETS or drop them"
    log "the server is not a target: skipping the resnet18 and roundtrip scenarios"
    unset 'SCENARIO[resnet18]' 'SCENARIO[roundtrip]'
    SCENARIO_LIST=()
    for s in grpc rest-binary; do if [[ -n ${SCENARIO[$s]:-} ]]; then SCENARIO_LIST+=("$s"); fi; done
    ((${#SCENARIO_LIST[@]} > 0)) || die "nothing left to run"
fi
# The floor/server pair benchmarked in the grpc and rest-binary scenarios, in that order; with
# BENCH_BASELINE_REV the baseline revision's server takes the same load after the server.
PAIR=()
for t in floor server; do if [[ -n ${TARGET[$t]:-} ]]; then PAIR+=("$t"); fi; done
NAMED_PAIR=("${PAIR[@]}")
if [[ -n $BASELINE_REV ]]; then
    [[ -n $WANT_SERVER ]] || die "BENCH_BASELINE_REV compares the server with another revision's: keep server in BENCH_TARGETS"
    PAIR+=(baseline)
fi

# ---- tools ---------------------------------------------------------------------------------
apt_install() { # apt_install PACKAGE COMMAND
    local sudo=()
    if ((EUID != 0)); then
        command -v sudo >/dev/null || die "$2 is missing and installing it needs root (apt-get install $1)"
        sudo=(sudo)
    fi
    command -v apt-get >/dev/null || die "$2 is missing and there is no apt-get to install it with (package $1)"
    log "installing $1 with apt-get (for $2)"
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "$1" >/dev/null
    command -v "$2" >/dev/null || die "apt-get installed $1 but there is still no $2"
}
if [[ -n ${SCENARIO[grpc]:-} || -n ${SCENARIO[resnet18]:-} ]]; then
    command -v h2load >/dev/null || apt_install nghttp2-client h2load
fi
if [[ -n ${SCENARIO[rest-binary]:-} || -n ${SCENARIO[resnet18]:-} ]]; then
    command -v wrk >/dev/null || apt_install wrk wrk
fi
command -v curl >/dev/null || apt_install curl curl
command -v python3 >/dev/null || die "python3 is needed to read h2load's output and write the results"
command -v dotnet >/dev/null || die "dotnet is needed to build and run the targets"

# ---- processes we start, stopped by PID on exit -------------------------------------------
PIDS=()
LOAD_PID=
cleanup() {
    local pid deadline
    if [[ -n ${LOAD_PID:-} ]]; then
        kill -TERM "$LOAD_PID" 2>/dev/null || true
        wait "$LOAD_PID" 2>/dev/null || true
    fi
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    deadline=$((SECONDS + 40)) # the server drains for up to --shutdown-timeout (30 s) first
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

# background CMD...: runs a command in the background and waits for it, so that a signal reaches
# our traps at once (cleanup stops it too) instead of after the command.
background() {
    local status=0
    "$@" &
    LOAD_PID=$!
    wait "$LOAD_PID" || status=$?
    LOAD_PID=
    return "$status"
}

# ---- build -------------------------------------------------------------------------------
build() {
    log "building $1 (Release)"
    dotnet build -c Release -nologo -v quiet "$1" >&2 || die "dotnet build $1 failed"
}
if ((BUILD)); then
    build "$CLIENT_PROJECT"
    if [[ -n $WANT_GRPC_FLOOR ]]; then build "$GRPC_FLOOR_PROJECT"; fi
    if [[ -n $WANT_REST_FLOOR ]]; then build "$REST_FLOOR_PROJECT"; fi
    if [[ -n ${SCENARIO[resnet18]:-} ]]; then build "$ORT_PROJECT"; fi
    if [[ -n $WANT_SERVER ]]; then build "$SERVER_PROJECT"; fi
fi
if [[ -n $BASELINE_REV ]]; then baseline_build; fi
for dll in "$CLIENT_DLL" ${WANT_GRPC_FLOOR:+"$GRPC_FLOOR_DLL"} ${WANT_REST_FLOOR:+"$REST_FLOOR_DLL"} ${WANT_SERVER:+"$SERVER_DLL"}; do
    [[ -f $dll ]] || die "$dll is missing (build it, or drop BENCH_BUILD=0)"
done
if [[ -n ${SCENARIO[resnet18]:-} ]]; then
    [[ -f $ORT_DLL ]] || die "$ORT_DLL is missing (build it, or drop BENCH_BUILD=0)"
    [[ -f $RESNET_MODEL ]] || die "$RESNET_MODEL is missing (building the server writes it)"
fi

mkdir -p "$RESULTS_DIR"
RUNS="$RESULTS_DIR/runs.jsonl"
BASELINE_RUNS="$RESULTS_DIR/baseline-runs.jsonl"
: >"$RUNS"
: >"$BASELINE_RUNS"
log "raw results go to $RESULTS_DIR"

client() { dotnet "$CLIENT_DLL" "$@"; }

BODIES="$RESULTS_DIR/bodies"
client bodies --out "$BODIES" >"$RESULTS_DIR/bodies.txt" || die "bench/Client could not write the request bodies"

# The estimate printed before the runs start: timed runs and warm-ups, plus about two seconds per
# run for starting the load generator and reading its output (checks and start-up come on top).
estimate=0
run_s=$(seconds "$DURATION")
warm_s=$(seconds "$WARMUP")
if ((warm_s > 0)); then warm_s=$((warm_s + 2)); fi
cell_seconds=$((${#PAIR[@]} * (ROUNDS * (run_s + 2) + warm_s)))
if [[ -n ${SCENARIO[grpc]:-} ]]; then
    estimate=$((estimate + ${#PAYLOAD_LIST[@]} * ${#CONTENTS_LIST[@]} * ${#CONCURRENCY_LIST[@]} * cell_seconds))
fi
if [[ -n ${SCENARIO[rest-binary]:-} ]]; then
    estimate=$((estimate + ${#PAYLOAD_LIST[@]} * ${#CONCURRENCY_LIST[@]} * cell_seconds))
fi
if [[ -n ${SCENARIO[resnet18]:-} ]]; then
    estimate=$((estimate + ROUNDS * (1 + 2 * ${#RESNET_CONCURRENCY_LIST[@]}) * (run_s + 2) + (ROUNDS + 2 * ${#RESNET_CONCURRENCY_LIST[@]}) * warm_s + ROUNDS * 3))
fi
log "timed runs and warm-ups take about $((estimate / 60)) min $((estimate % 60)) s"

# ---- start the targets -------------------------------------------------------------------
declare -A URL=() PID_OF=() LOG_OF=() COMMAND_OF=()

show_log() {
    log "last lines of $1:"
    tail -n 40 "$1" >&2 || true
}

# alive NAME: the process behind NAME is still running.
alive() {
    kill -0 "${PID_OF[$1]}" 2>/dev/null || {
        show_log "${LOG_OF[$1]}"
        die "$1 (PID ${PID_OF[$1]}) exited"
    }
}

# launch NAME CMD...: starts a target in the background with its output in its log.
launch() {
    local name=$1
    shift
    local logfile="$RESULTS_DIR/$name.log"
    log "starting $name: $*"
    "$@" </dev/null >"$logfile" 2>&1 &
    PID_OF[$name]=$!
    PIDS+=("${PID_OF[$name]}")
    LOG_OF[$name]=$logfile
    COMMAND_OF[$name]="$*"
}

rest_ready() { [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$1$READY_PATH" || true) == 200 ]]; }

# wait_for NAME PATTERN: until the log has a line matching PATTERN; prints that line.
wait_for() {
    local name=$1 pattern=$2 deadline=$((SECONDS + START_TIMEOUT)) line
    while ((SECONDS < deadline)); do
        alive "$name"
        line=$(grep -m1 -E "$pattern" "${LOG_OF[$name]}" 2>/dev/null || true)
        if [[ -n $line ]]; then
            printf '%s\n' "$line"
            return 0
        fi
        sleep 0.25
    done
    show_log "${LOG_OF[$name]}"
    die "$name printed no address within ${START_TIMEOUT}s (BENCH_START_TIMEOUT)"
}

# The floors print "Now listening on: http://127.0.0.1:PORT" once Kestrel is bound.
floor_url() {
    wait_for "$1" '^Now listening on: http://' | grep -oE 'http://[0-9.]+:[0-9]+'
}

if [[ -n $WANT_GRPC_FLOOR ]]; then
    launch grpc-floor dotnet "$GRPC_FLOOR_DLL" --urls http://127.0.0.1:0
    URL[grpc-floor]=$(floor_url grpc-floor)
    client ready --url "${URL[grpc-floor]}" --timeout "$START_TIMEOUT" || die "the gRPC floor never answered ServerReady"
    log "grpc-floor is ready at ${URL[grpc-floor]} (PID ${PID_OF[grpc-floor]})"
fi
if [[ -n $WANT_REST_FLOOR ]]; then
    launch rest-floor dotnet "$REST_FLOOR_DLL" --urls http://127.0.0.1:0
    URL[rest-floor]=$(floor_url rest-floor)
    deadline=$((SECONDS + START_TIMEOUT))
    until rest_ready "${URL[rest-floor]}"; do
        alive rest-floor
        ((SECONDS < deadline)) || die "the REST floor did not answer $READY_PATH with 200 within ${START_TIMEOUT}s"
        sleep 0.25
    done
    log "rest-floor is ready at ${URL[rest-floor]} (PID ${PID_OF[rest-floor]})"
fi
# start_server NAME DLL: starts a server build and reads its REST and gRPC addresses into URL[rest-NAME], URL[grpc-NAME].
start_server() {
    local name=$1 dll=$2 line deadline repository=()
    # Beside a baseline both serve the same folder of models, this checkout's.
    if [[ -n $BASELINE_REV ]]; then repository=(--model-repository "$ROOT/samples"); fi
    # "Serving REST (v1, v2) on http://127.0.0.1:P1/ and gRPC (v2, h2c) on http://127.0.0.1:P2/"
    launch "$name" dotnet "$dll" --http-port 0 --grpc-port 0 --silo-port 0 --gateway-port 0 "${repository[@]}" "${SERVER_EXTRA[@]}"
    line=$(wait_for "$name" 'Serving REST .* on http://.* and gRPC .* on http://')
    URL[rest-$name]=$(grep -oE 'REST [^h]* on http://[0-9.]+:[0-9]+' <<<"$line" | grep -oE 'http://[0-9.]+:[0-9]+')
    URL[grpc-$name]=$(grep -oE 'gRPC .* on http://[0-9.]+:[0-9]+' <<<"$line" | grep -oE 'http://[0-9.]+:[0-9]+$')
    [[ -n ${URL[rest-$name]} && -n ${URL[grpc-$name]} ]] || die "could not read the $name's addresses from: $line"
    deadline=$((SECONDS + START_TIMEOUT))
    until rest_ready "${URL[rest-$name]}"; do
        alive "$name"
        ((SECONDS < deadline)) || die "the $name did not answer $READY_PATH with 200 within ${START_TIMEOUT}s"
        sleep 0.25
    done
    client ready --url "${URL[grpc-$name]}" --timeout "$START_TIMEOUT" || die "the $name's gRPC port never answered ServerReady"
    log "$name is ready: REST ${URL[rest-$name]}, gRPC ${URL[grpc-$name]} (PID ${PID_OF[$name]})"
}
if [[ -n $WANT_SERVER ]]; then start_server server "$SERVER_DLL"; fi
if [[ -n $BASELINE_REV ]]; then
    start_server baseline "$BASELINE_DLL"
    COMMAND_OF[baseline]="the same command on the server built from revision $BASELINE_REV"
fi

# ---- correctness checks ------------------------------------------------------------------
# Every target answers every body it will be timed with correctly before it is timed (HTTP
# status, grpc-status, every output value), CHECK_CALLS calls 8 at a time; the answers' length
# is what the load generators then hold every answer to. After the timed runs the same checks
# run again (fewer calls) so that a target that broke under load does not go unnoticed.
declare -A RESPONSE_BYTES=()
CHECK_LOG="$RESULTS_DIR/checks.txt"
: >"$CHECK_LOG"

# check KEY TRANSPORT URL BODY CALLS: one check; records the answers' length in RESPONSE_BYTES[KEY].
check() {
    local key=$1 transport=$2 url=$3 body=$4 calls=$5 out extra=() bytes low high
    if [[ $transport == rest-binary ]]; then extra=(--header-length "$(cat "${body%.body}.header-length")"); fi
    out=$(client check "$transport" --url "$url" --body "$body" "${extra[@]}" --calls "$calls" --concurrency 8 2>&1) || {
        printf '%s\n' "$out" >&2
        die "$key: wrong answers in the check (see above)"
    }
    printf '%s %s\n' "$key" "$out" >>"$CHECK_LOG"
    bytes=$(sed -n 's/^check-result: .*"response_bytes":\([0-9]*\),"response_bytes_max":\([0-9]*\).*/\1 \2/p' <<<"$out")
    read -r low high <<<"$bytes"
    [[ -n $low && $low == "$high" ]] || die "$key: answers of different lengths ($bytes) to the same request"
    if [[ -n ${RESPONSE_BYTES[$key]:-} && ${RESPONSE_BYTES[$key]} != "$low" ]]; then
        die "$key: answers are $low bytes now, ${RESPONSE_BYTES[$key]} before"
    fi
    RESPONSE_BYTES[$key]=$low
}

# Each timed combination: KEY -> "transport url body".
declare -A PLAN=()
PLAN_KEYS=()
plan() { PLAN[$1]="$2 $3 $4"; PLAN_KEYS+=("$1"); }
for target in "${PAIR[@]}"; do
    if [[ -n ${SCENARIO[grpc]:-} ]]; then
        for payload in "${PAYLOAD_LIST[@]}"; do
            for contents in "${CONTENTS_LIST[@]}"; do
                plan "grpc/$payload/$contents/$target" grpc "${URL[grpc-$target]}" "$BODIES/grpc-$contents-$payload.body"
            done
        done
    fi
    if [[ -n ${SCENARIO[rest-binary]:-} ]]; then
        for payload in "${PAYLOAD_LIST[@]}"; do
            plan "rest-binary/$payload/$target" rest-binary "${URL[rest-$target]}/v2/models/double/infer" "$BODIES/rest-binary-$payload.body"
        done
    fi
done
if [[ -n ${SCENARIO[resnet18]:-} ]]; then
    plan "resnet18/grpc-raw" grpc "${URL[grpc-server]}" "$BODIES/grpc-raw-resnet18.body"
    plan "resnet18/rest-binary" rest-binary "${URL[rest-server]}/v2/models/resnet18/infer" "$BODIES/rest-binary-resnet18.body"
fi

run_checks() { # run_checks CALLS
    local key transport url body calls
    for key in "${PLAN_KEYS[@]}"; do
        read -r transport url body <<<"${PLAN[$key]}"
        calls=$1
        # ResNet18 calls take tens of milliseconds each: fewer of them.
        if [[ $key == resnet18/* ]]; then calls=$(((calls + 9) / 10)); fi
        check "$key" "$transport" "$url" "$body" "$calls"
    done
}
if ((${#PLAN_KEYS[@]} > 0)); then
    log "checking every answer (${#PLAN_KEYS[@]} target/body combinations, $CHECK_CALLS calls each)"
    run_checks "$CHECK_CALLS"
    log "every target answers correctly"
fi

# ---- timed runs --------------------------------------------------------------------------
threads_for() { echo $(($1 < 2 ? $1 : 2)); }

# record JSON...: one line of runs.jsonl.
record() { printf '%s\n' "$1" >>"$RUNS"; }

# field NAME JSON: the number NAME holds in a flat JSON object (empty if absent).
field() {
    if [[ $2 =~ \"$1\":(-?[0-9.eE+-]+) ]]; then printf '%s' "${BASH_REMATCH[1]}"; fi
}

summary() { # summary RESULT_JSON: one readable line for the log (without starting python)
    local rate
    rate=$(field images_per_s "$1")
    rate=${rate:-$(field rps "$1")}
    printf '%.1f/s, p50 %.2f ms, p99 %.2f ms, %s errors' "$rate" \
        "$(field p50_us "$1")e-3" "$(field p99_us "$1")e-3" "$(field errors "$1")"
}

# h2load_run KEY C DURATION OUT: one h2load run of PLAN[KEY] at concurrency C; the result JSON goes to
# RESULT. (Called directly, not in $(...), so that a signal stops the load generator at once.)
RESULT=
h2load_run() {
    local key=$1 c=$2 duration=$3 out=$4 transport url body status=0
    read -r transport url body <<<"${PLAN[$key]}"
    local name=${PLAN[$key]%% *}
    local logfile="${out%.txt}.log"
    rm -f "$logfile" # h2load appends to its log file
    background h2load -c "$c" -m 1 -t "$(threads_for "$c")" -D "$duration" -N "$REQUEST_TIMEOUT" \
        -d "$body" -H 'content-type: application/grpc' -H 'te: trailers' --log-file="$logfile" \
        "$url$GRPC_INFER_PATH" </dev/null >"$out" 2>&1 || status=$?
    if ((status != 0)); then
        cat "$out" >&2
        die "h2load failed (exit status $status) on $key at concurrency $c ($name)"
    fi
    RESULT=$(python3 bench/h2load_result.py --summary "$out" --log "$logfile" --response-bytes "${RESPONSE_BYTES[$key]}") ||
        die "could not read h2load's output in $out"
    rm -f "$logfile" # hundreds of thousands of lines; the percentiles are in the result
}

# wrk_run KEY C DURATION OUT: one wrk run of PLAN[KEY] at concurrency C; the result JSON goes to RESULT.
wrk_run() {
    local key=$1 c=$2 duration=$3 out=$4 transport url body status=0
    read -r transport url body <<<"${PLAN[$key]}"
    BENCH_BODY=$body BENCH_HEADER_LENGTH=$(cat "${body%.body}.header-length") BENCH_RESPONSE_BYTES=${RESPONSE_BYTES[$key]} \
        background wrk -t"$(threads_for "$c")" -c"$c" -d"$duration" --timeout "$REQUEST_TIMEOUT" --latency -s "$LUA" "$url" \
        </dev/null >"$out" 2>&1 || status=$?
    if ((status != 0)); then
        cat "$out" >&2
        die "wrk failed (exit status $status) on $key at concurrency $c"
    fi
    grep -q '^wrk-result: ' "$out" || {
        cat "$out" >&2
        die "wrk printed no result line on $key (is $LUA intact?)"
    }
    RESULT=$(sed -n 's/^wrk-result: //p' "$out" | head -n1)
}

# timed SCENARIO KEY C ROUND TARGET LABELS_JSON: one timed run, recorded.
timed() {
    local scenario=$1 key=$2 c=$3 round=$4 target=$5 labels=$6 out cpu_before='' cpu line
    out="$RESULTS_DIR/${key//\//-}-c$c-r$round.txt"
    if [[ -n $BASELINE_REV && ( $target == server || $target == baseline ) ]]; then cpu_before=$(proc_cpu "${PID_OF[$target]}"); fi
    if [[ ${PLAN[$key]%% *} == grpc ]]; then
        h2load_run "$key" "$c" "$DURATION" "$out"
    else
        wrk_run "$key" "$c" "$DURATION" "$out"
    fi
    check_alive "$target"
    line="{\"scenario\":\"$scenario\",\"target\":\"$target\",\"concurrency\":$c,\"round\":$round,\"duration\":\"$DURATION\",$labels,${RESULT#\{}"
    if [[ $target != baseline ]]; then record "$line"; fi
    if [[ -n $cpu_before && $scenario != resnet18 ]]; then
        cpu=$(awk -v a="$cpu_before" -v b="$(proc_cpu "${PID_OF[$target]}")" 'BEGIN { printf "%.2f", b - a }')
        printf '{"server_cpu_s":%s,%s\n' "$cpu" "${line#\{}" >>"$BASELINE_RUNS"
    fi
    log "$key, concurrency $c, round $round/$ROUNDS: $(summary "$RESULT")"
}

warm() { # warm KEY C: a discarded run
    local key=$1 c=$2
    [[ $WARMUP == 0 ]] && return 0
    log "warm-up: $key, concurrency $c, $WARMUP"
    if [[ ${PLAN[$key]%% *} == grpc ]]; then
        h2load_run "$key" "$c" "$WARMUP" "$RESULTS_DIR/${key//\//-}-c$c-warmup.txt"
    else
        wrk_run "$key" "$c" "$WARMUP" "$RESULTS_DIR/${key//\//-}-c$c-warmup.txt"
    fi
}

check_alive() { # check_alive floor|server: the process serving that target is still up
    case $1 in
        floor)
            if [[ -n $WANT_GRPC_FLOOR ]]; then alive grpc-floor; fi
            if [[ -n $WANT_REST_FLOOR ]]; then alive rest-floor; fi
            ;;
        server) alive server ;;
        baseline) alive baseline ;;
        *) ;;
    esac
}

if [[ -n ${SCENARIO[grpc]:-} ]]; then
    for payload in "${PAYLOAD_LIST[@]}"; do
        for contents in "${CONTENTS_LIST[@]}"; do
            for c in "${CONCURRENCY_LIST[@]}"; do
                for target in "${PAIR[@]}"; do warm "grpc/$payload/$contents/$target" "$c"; done
                for ((round = 1; round <= ROUNDS; round++)); do
                    for target in "${PAIR[@]}"; do
                        timed grpc "grpc/$payload/$contents/$target" "$c" "$round" "$target" \
                            "\"payload\":\"$payload\",\"contents\":\"$contents\""
                    done
                done
            done
        done
    done
fi

if [[ -n ${SCENARIO[rest-binary]:-} ]]; then
    for payload in "${PAYLOAD_LIST[@]}"; do
        for c in "${CONCURRENCY_LIST[@]}"; do
            for target in "${PAIR[@]}"; do warm "rest-binary/$payload/$target" "$c"; done
            for ((round = 1; round <= ROUNDS; round++)); do
                for target in "${PAIR[@]}"; do
                    timed rest-binary "rest-binary/$payload/$target" "$c" "$round" "$target" "\"payload\":\"$payload\""
                done
            done
        done
    done
fi

ORT_COMMAND=
if [[ -n ${SCENARIO[resnet18]:-} ]]; then
    ort_warmup=$([[ $WARMUP == 0 ]] && echo 0s || echo "$WARMUP")
    ORT_COMMAND="dotnet $ORT_DLL --model $RESNET_MODEL --runners $ORT_RUNNERS --sessions $ORT_SESSIONS --intra-op-threads 1 --duration $DURATION --warmup $ort_warmup"
    for c in "${RESNET_CONCURRENCY_LIST[@]}"; do
        warm resnet18/grpc-raw "$c"
        warm resnet18/rest-binary "$c"
    done
    for ((round = 1; round <= ROUNDS; round++)); do
        # Raw ONNX Runtime in its own process while the targets sit idle, then the server's two paths.
        out="$RESULTS_DIR/resnet18-ort-r$round.txt"
        read -r -a ort_cmd <<<"$ORT_COMMAND"
        background "${ort_cmd[@]}" </dev/null >"$out" 2>&1 || {
            cat "$out" >&2
            die "bench/OrtBaseline failed"
        }
        result=$(sed -n 's/^ort-result: //p' "$out" | head -n1)
        [[ -n $result ]] || die "bench/OrtBaseline printed no result line (see $out)"
        record "{\"scenario\":\"resnet18\",\"target\":\"ort\",\"path\":\"ort\",\"concurrency\":$ORT_RUNNERS,\"round\":$round,\"duration\":\"$DURATION\",${result#\{}"
        log "resnet18 raw ONNX Runtime, $ORT_RUNNERS runners, round $round/$ROUNDS: $(summary "$result")"
        for c in "${RESNET_CONCURRENCY_LIST[@]}"; do
            timed resnet18 resnet18/grpc-raw "$c" "$round" server '"path":"grpc-raw"'
            timed resnet18 resnet18/rest-binary "$c" "$round" server '"path":"rest-binary"'
        done
    done
fi

ROUNDTRIP_FILE=
if [[ -n ${SCENARIO[roundtrip]:-} ]]; then
    ROUNDTRIP_FILE="$RESULTS_DIR/roundtrip.txt"
    log "1 MiB FP32 round trips through double: REST binary and REST JSON, $ROUNDTRIPS each after 3 warm-ups"
    background dotnet "$CLIENT_DLL" roundtrip --url "${URL[rest-server]}/v2/models/double/infer" --repeat "$ROUNDTRIPS" --warmup 3 \
        </dev/null >"$ROUNDTRIP_FILE" 2>&1 || {
        cat "$ROUNDTRIP_FILE" >&2
        die "the 1 MiB round trip failed"
    }
    check_alive server
fi

if ((${#PLAN_KEYS[@]} > 0)); then
    log "checking every answer again after the load"
    run_checks 20
fi

# ---- write docs/performance.md -----------------------------------------------------------
quote() { # shell-quote a value only where it needs it
    if [[ $1 =~ ^[A-Za-z0-9_./:=@%+-]+$ ]]; then printf '%s' "$1"; else printf "'%s'" "${1//\'/\'\\\'\'}"; fi
}
command_line="BENCH_SCENARIOS=$(quote "${SCENARIO_LIST[*]}") BENCH_TARGETS=$(quote "${NAMED_PAIR[*]}")"
command_line+=" BENCH_CONCURRENCY=$(quote "${CONCURRENCY_LIST[*]}") BENCH_PAYLOADS=$(quote "${PAYLOAD_LIST[*]}")"
command_line+=" BENCH_CONTENTS=$(quote "${CONTENTS_LIST[*]}") BENCH_RESNET_CONCURRENCY=$(quote "${RESNET_CONCURRENCY_LIST[*]}")"
command_line+=" BENCH_ORT_RUNNERS=$ORT_RUNNERS BENCH_ORT_SESSIONS=$ORT_SESSIONS"
command_line+=" BENCH_DURATION=$DURATION BENCH_ROUNDS=$ROUNDS BENCH_WARMUP=$WARMUP BENCH_ROUNDTRIPS=$ROUNDTRIPS"
if [[ -n $SERVER_ARGS ]]; then command_line+=" BENCH_SERVER_ARGS=$(quote "$SERVER_ARGS")"; fi
if [[ $REQUEST_TIMEOUT != 5s ]]; then command_line+=" BENCH_REQUEST_TIMEOUT=$REQUEST_TIMEOUT"; fi
if [[ $SECTION != grpc ]]; then command_line+=" BENCH_SECTION=$(quote "$SECTION") BENCH_TITLE=$(quote "$TITLE")"; fi
command_line+=" bench/grpc.sh"

cpu_model=$(grep -m1 -E '^model name' /proc/cpuinfo | sed -E 's/^[^:]*:[[:space:]]*//' || true)
mem_gib=$(awk '/^MemTotal:/ { printf "%.0f", $2 / 1048576 }' /proc/meminfo 2>/dev/null || true)
runtime=$(dotnet --list-runtimes 2>/dev/null | awk '/^Microsoft.AspNetCore.App / { v = $2 } END { print v }' || true)
machine="$(nproc) CPUs (nproc), ${cpu_model:-unknown CPU}, ${mem_gib:-?} GiB RAM, $(uname -sr), ASP.NET Core ${runtime:-?}"
if command -v h2load >/dev/null; then machine+=", $(h2load --version 2>&1 | head -n1)"; fi
if command -v wrk >/dev/null; then machine+=", $(wrk --version 2>&1 | awk 'NR == 1 { print $1, $2 }' || true)"; fi
machine+=", load average before the run $LOAD_BEFORE"
revision=$(git rev-parse --short HEAD 2>/dev/null || echo 'no commit yet')
if [[ -n $(git --no-optional-locks status --porcelain 2>/dev/null | head -n1) ]]; then revision+=" (with uncommitted changes)"; fi

method="the load generator runs on the same machine as the targets, which stay up for the whole run;"
if [[ $WARMUP != 0 ]]; then
    method+=" for every input and concurrency a $WARMUP warm-up run per target (discarded), then"
else
    method+=" no warm-up, then"
fi
method+=" $ROUNDS round(s) of $DURATION per target"
if ((${#PAIR[@]} > 1)); then method+=", alternating floor, server within each round."; else method+=" (${PAIR[0]} only)."; fi

if [[ -n $BASELINE_REV ]]; then
    python3 bench/write_baseline_section.py \
        --runs "$BASELINE_RUNS" \
        --output "$OUTPUT" \
        --section "$SECTION-baseline" \
        --title "gRPC and REST binary: this revision against $BASELINE_REV, server CPU per call" \
        --date "$(date -u '+%Y-%m-%d %H:%M UTC')" \
        --machine "$machine" \
        --revision "$revision" \
        --baseline "$BASELINE_REV" \
        --command "BENCH_BASELINE_REV=$BASELINE_REV $command_line" \
        --load "h2load -c <c> -m 1 -t <min(c,2)> -D $DURATION -d <body> <target>$GRPC_INFER_PATH (grpc); wrk -t<min(c,2)> -c<c> -d$DURATION -s $LUA (rest-binary)"
    log "wrote the bench:$SECTION-baseline section of $OUTPUT"
    # The floor-vs-server section is rewritten only by a run with the floor and every scenario.
    if [[ -z ${TARGET[floor]:-} ]]; then exit 0; fi
fi

python3 bench/write_grpc_section.py \
    --runs "$RUNS" \
    --roundtrip "$ROUNDTRIP_FILE" \
    --output "$OUTPUT" \
    --date "$(date -u '+%Y-%m-%d %H:%M UTC')" \
    --machine "$machine" \
    --revision "$revision" \
    --command "$command_line" \
    --method "$method" \
    --h2load-command "h2load -c <c> -m 1 -t <min(c,2)> -D $DURATION -N $REQUEST_TIMEOUT -d <body> -H 'content-type: application/grpc' -H 'te: trailers' --log-file=<log> <target>$GRPC_INFER_PATH" \
    --wrk-command "wrk -t<min(c,2)> -c<c> -d$DURATION --timeout $REQUEST_TIMEOUT --latency -s $LUA <target>/v2/models/<model>/infer" \
    --grpc-floor-command "${COMMAND_OF[grpc-floor]:-}" \
    --rest-floor-command "${COMMAND_OF[rest-floor]:-}" \
    --server-command "${COMMAND_OF[server]:-}" \
    --ort-command "$ORT_COMMAND" \
    --check-calls "$CHECK_CALLS" \
    --section "$SECTION" \
    --title "$TITLE"
log "wrote the bench:$SECTION section of $OUTPUT"
