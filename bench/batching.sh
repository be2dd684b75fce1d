#!/usr/bin/env bash
# Dynamic batching benchmark. See bench/README.md.
#
#   mlp       the MLP (FP32 [1, 64] per request, one row per caller) served twice by one server: mlp-unbatched
#             (no batcher) and mlp-batched (batcher maxBatchSize 32, maxLatency 2 ms), over REST binary (wrk,
#             bench/wrk/binary.lua) and raw gRPC (h2load), at concurrency 1, 8, 32, 64, 128; batching off and on
#             alternate within every round
#   resnet18  ResNet18 with a batcher (maxBatchSize 8, maxLatency 5 ms) over raw gRPC, against raw ONNX Runtime
#             in-process (bench/OrtBaseline) with the server's session options, runners and batch size
#
# The server gets a model repository of its own, written into a temporary folder (KServe InferenceService YAML
# pointing at samples/models/mlp and samples/models/resnet18 by absolute file:// paths). The section between the
# bench:batching markers of docs/performance.md gets the medians over BENCH_ROUNDS.
set -euo pipefail
shopt -s inherit_errexit

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

# ---- settings --------------------------------------------------------------------------
SCENARIOS=${BENCH_SCENARIOS:-mlp resnet18}
TRANSPORTS=${BENCH_TRANSPORTS:-rest-binary grpc}
CONCURRENCY=${BENCH_CONCURRENCY:-1 8 32 64 128}
MLP_MAX_BATCH=${BENCH_MLP_MAX_BATCH:-32}
MLP_MAX_LATENCY=${BENCH_MLP_MAX_LATENCY:-2}
RESNET_CONCURRENCY=${BENCH_RESNET_CONCURRENCY:-8 16 32}
RESNET_MAX_BATCH=${BENCH_RESNET_MAX_BATCH:-8}
RESNET_MAX_LATENCY=${BENCH_RESNET_MAX_LATENCY:-5}
DURATION=${BENCH_DURATION:-5s}
WARMUP=${BENCH_WARMUP:-5s}
ROUNDS=${BENCH_ROUNDS:-3}
CHECK_CALLS=${BENCH_CHECK_CALLS:-200}
SERVER_ARGS=${BENCH_SERVER_ARGS:-}
BUILD=${BENCH_BUILD:-1}
OUTPUT=${BENCH_OUTPUT:-docs/performance.md}
START_TIMEOUT=${BENCH_START_TIMEOUT:-120}
REQUEST_TIMEOUT=${BENCH_REQUEST_TIMEOUT:-10s}
SECTION=${BENCH_SECTION:-batching}
TITLE=${BENCH_TITLE:-Dynamic batching: MLP batching off vs on, ResNet18 batched vs raw ONNX Runtime}
RESULTS_DIR=${BENCH_RESULTS_DIR:-bench/results/batching-$(date -u +%Y%m%dT%H%M%SZ)}

RELEASE=bin/Release/net10.0/linux-x64
CLIENT_PROJECT=bench/Client/Orleans.KServe.Bench.Client.csproj
CLIENT_DLL=bench/Client/$RELEASE/Orleans.KServe.Bench.Client.dll
ORT_PROJECT=bench/OrtBaseline/Orleans.KServe.Bench.OrtBaseline.csproj
ORT_DLL=bench/OrtBaseline/$RELEASE/Orleans.KServe.Bench.OrtBaseline.dll
SERVER_PROJECT=Silo/Orleans.KServe.Silo.csproj
SERVER_DLL=Silo/$RELEASE/Orleans.KServe.Silo.dll
MLP_FOLDER=$ROOT/samples/models/mlp
RESNET_FOLDER=$ROOT/samples/models/resnet18
RESNET_MODEL=samples/models/resnet18/model.onnx
LUA=bench/wrk/binary.lua
GRPC_INFER_PATH=/inference.GRPCInferenceService/ModelInfer
READY_PATH=/v2/health/ready
# The models of the repository this script writes.
MLP_OFF=mlp-unbatched
MLP_ON=mlp-batched
RESNET=resnet18-batched

log() { printf '[batching.sh %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }
set -E
trap 'log "error: \"$BASH_COMMAND\" failed with exit status $? (line $LINENO)"' ERR

# ---- validate the settings ---------------------------------------------------------------
read -r -a SCENARIO_LIST <<<"$SCENARIOS"
read -r -a TRANSPORT_LIST <<<"$TRANSPORTS"
read -r -a CONCURRENCY_LIST <<<"$CONCURRENCY"
read -r -a RESNET_CONCURRENCY_LIST <<<"$RESNET_CONCURRENCY"
read -r -a SERVER_EXTRA <<<"$SERVER_ARGS"

# check_list NAME ALLOWED_REGEX_OR_EMPTY VALUES...: no value twice; each one of the allowed words when given.
check_list() {
    local name=$1 allowed=$2 value
    shift 2
    local -A seen=()
    for value in "$@"; do
        [[ -z $allowed || " $allowed " == *" $value "* ]] || die "$name: unknown value '$value' (one of: $allowed)"
        [[ -z ${seen[$value]:-} ]] || die "$name: '$value' given twice"
        seen[$value]=1
    done
}
positive() { [[ $2 =~ ^[1-9][0-9]*$ ]] || die "$1: '$2' is not a positive integer"; }

check_list BENCH_SCENARIOS "mlp resnet18" "${SCENARIO_LIST[@]}"
check_list BENCH_TRANSPORTS "rest-binary grpc" "${TRANSPORT_LIST[@]}"
check_list BENCH_CONCURRENCY "" "${CONCURRENCY_LIST[@]}"
check_list BENCH_RESNET_CONCURRENCY "" "${RESNET_CONCURRENCY_LIST[@]}"
((${#SCENARIO_LIST[@]} > 0)) || die "BENCH_SCENARIOS is empty"
declare -A SCENARIO=()
for s in "${SCENARIO_LIST[@]}"; do SCENARIO[$s]=1; done
if [[ -n ${SCENARIO[mlp]:-} ]]; then
    ((${#TRANSPORT_LIST[@]} > 0)) || die "BENCH_TRANSPORTS is empty"
    ((${#CONCURRENCY_LIST[@]} > 0)) || die "BENCH_CONCURRENCY is empty"
fi
if [[ -n ${SCENARIO[resnet18]:-} ]]; then ((${#RESNET_CONCURRENCY_LIST[@]} > 0)) || die "BENCH_RESNET_CONCURRENCY is empty"; fi
for c in "${CONCURRENCY_LIST[@]}" "${RESNET_CONCURRENCY_LIST[@]}"; do positive "BENCH_CONCURRENCY, BENCH_RESNET_CONCURRENCY" "$c"; done
positive BENCH_MLP_MAX_BATCH "$MLP_MAX_BATCH"
positive BENCH_RESNET_MAX_BATCH "$RESNET_MAX_BATCH"
[[ $MLP_MAX_LATENCY =~ ^[0-9]+$ ]] || die "BENCH_MLP_MAX_LATENCY: '$MLP_MAX_LATENCY' is not a whole number of milliseconds"
[[ $RESNET_MAX_LATENCY =~ ^[0-9]+$ ]] || die "BENCH_RESNET_MAX_LATENCY: '$RESNET_MAX_LATENCY' is not a whole number of milliseconds"
positive BENCH_ROUNDS "$ROUNDS"
positive BENCH_CHECK_CALLS "$CHECK_CALLS"
positive BENCH_START_TIMEOUT "$START_TIMEOUT"
[[ $DURATION =~ ^[1-9][0-9]*[smh]?$ ]] || die "BENCH_DURATION: '$DURATION' is not a duration (e.g. 5s)"
[[ $WARMUP =~ ^[0-9]+[smh]?$ ]] || die "BENCH_WARMUP: '$WARMUP' is not a duration (0 skips the warm-up)"
[[ $REQUEST_TIMEOUT =~ ^[1-9][0-9]*s?$ ]] || die "BENCH_REQUEST_TIMEOUT: '$REQUEST_TIMEOUT' is not a number of seconds (e.g. 10s)"
[[ $BUILD == 0 || $BUILD == 1 ]] || die "BENCH_BUILD: '$BUILD' is not 0 or 1"
if [[ $WARMUP =~ ^0+[smh]?$ ]]; then WARMUP=0; fi
[[ $DURATION =~ [smh]$ ]] || DURATION+=s
[[ $WARMUP == 0 || $WARMUP =~ [smh]$ ]] || WARMUP+=s
[[ $REQUEST_TIMEOUT =~ s$ ]] || REQUEST_TIMEOUT+=s
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)

# seconds DURATION: a wrk/h2load duration (5s, 2m, 1h) in seconds.
seconds() {
    local value=${1%[smh]}
    case $1 in
        *m) echo $((value * 60)) ;;
        *h) echo $((value * 3600)) ;;
        *) echo "$value" ;;
    esac
}

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
NEED_H2LOAD='' NEED_WRK=''
if [[ -n ${SCENARIO[resnet18]:-} ]]; then NEED_H2LOAD=1; fi
if [[ -n ${SCENARIO[mlp]:-} ]]; then
    for t in "${TRANSPORT_LIST[@]}"; do
        if [[ $t == grpc ]]; then NEED_H2LOAD=1; else NEED_WRK=1; fi
    done
fi
if [[ -n $NEED_H2LOAD ]]; then command -v h2load >/dev/null || apt_install nghttp2-client h2load; fi
if [[ -n $NEED_WRK ]]; then command -v wrk >/dev/null || apt_install wrk wrk; fi
command -v curl >/dev/null || apt_install curl curl
command -v python3 >/dev/null || die "python3 is needed to read h2load's output and write the results"
command -v dotnet >/dev/null || die "dotnet is needed to build and run the server"

# ---- processes and folders we create, removed on exit ----------------------------------------
PIDS=()
LOAD_PID=
REPO_DIR=
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
    if [[ -n $REPO_DIR && -d $REPO_DIR ]]; then rm -rf -- "$REPO_DIR"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# background CMD...: runs a command in the background and waits for it, so that a signal reaches our traps at
# once (cleanup stops it too) instead of after the command.
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
    if [[ -n ${SCENARIO[resnet18]:-} ]]; then build "$ORT_PROJECT"; fi
    build "$SERVER_PROJECT"
fi
for dll in "$CLIENT_DLL" "$SERVER_DLL" ${SCENARIO[resnet18]:+"$ORT_DLL"}; do
    [[ -f $dll ]] || die "$dll is missing (build it, or drop BENCH_BUILD=0)"
done
if [[ -n ${SCENARIO[mlp]:-} ]]; then
    [[ -f $MLP_FOLDER/model.onnx ]] || die "$MLP_FOLDER/model.onnx is missing (building the server writes it)"
fi
if [[ -n ${SCENARIO[resnet18]:-} ]]; then
    [[ -f $RESNET_FOLDER/model.onnx ]] || die "$RESNET_FOLDER/model.onnx is missing (building the server writes it)"
fi

mkdir -p "$RESULTS_DIR"
RESULTS_DIR=$(cd "$RESULTS_DIR" && pwd)
RUNS="$RESULTS_DIR/runs.jsonl"
: >"$RUNS"
log "raw results go to $RESULTS_DIR"

client() { dotnet "$CLIENT_DLL" "$@"; }

# ---- the model repository -------------------------------------------------------------------
REPO_DIR=$(mktemp -d "${TMPDIR:-/tmp}/kserve-batching.XXXXXX")

# service NAME FOLDER [MAX_BATCH MAX_LATENCY_MS]: one InferenceService YAML, with a batcher when the last two are given.
service() {
    local name=$1 folder=$2 max_batch=${3:-} latency=${4:-}
    {
        printf 'apiVersion: serving.kserve.io/v1beta1\nkind: InferenceService\nmetadata:\n  name: %s\nspec:\n  predictor:\n' "$name"
        if [[ -n $max_batch ]]; then
            printf '    batcher:\n      maxBatchSize: %s\n      maxLatency: %s\n' "$max_batch" "$latency"
        fi
        printf '    model:\n      modelFormat:\n        name: onnx\n      protocolVersion: v2\n      storageUri: file://%s\n' "$folder"
    } >"$REPO_DIR/$name.yaml"
}
MODELS=()
if [[ -n ${SCENARIO[mlp]:-} ]]; then
    service "$MLP_OFF" "$MLP_FOLDER"
    service "$MLP_ON" "$MLP_FOLDER" "$MLP_MAX_BATCH" "$MLP_MAX_LATENCY"
    MODELS+=("$MLP_OFF" "$MLP_ON")
fi
if [[ -n ${SCENARIO[resnet18]:-} ]]; then
    service "$RESNET" "$RESNET_FOLDER" "$RESNET_MAX_BATCH" "$RESNET_MAX_LATENCY"
    MODELS+=("$RESNET")
fi
mkdir -p "$RESULTS_DIR/repository"
cp "$REPO_DIR"/*.yaml "$RESULTS_DIR/repository/"
if [[ -n ${SCENARIO[mlp]:-} ]]; then
    log "$MLP_OFF: no batcher; $MLP_ON: batcher maxBatchSize $MLP_MAX_BATCH, maxLatency $MLP_MAX_LATENCY ms"
fi
if [[ -n ${SCENARIO[resnet18]:-} ]]; then
    log "$RESNET: batcher maxBatchSize $RESNET_MAX_BATCH, maxLatency $RESNET_MAX_LATENCY ms"
fi

# ---- request bodies ------------------------------------------------------------------------
BODIES="$RESULTS_DIR/bodies"
mkdir -p "$BODIES"
{
    if [[ -n ${SCENARIO[mlp]:-} ]]; then
        # One row, FP32 [1, 64], asking for probabilities; gRPC bodies name their model, REST bodies do not.
        client body --payload mlp --form grpc-raw --model "$MLP_OFF" --out "$BODIES/grpc-$MLP_OFF.body"
        client body --payload mlp --form grpc-raw --model "$MLP_ON" --out "$BODIES/grpc-$MLP_ON.body"
        client body --payload mlp --form rest-binary --out "$BODIES/rest-binary-mlp.body"
    fi
    if [[ -n ${SCENARIO[resnet18]:-} ]]; then
        client body --payload resnet18 --form grpc-raw --model "$RESNET" --out "$BODIES/grpc-$RESNET.body"
    fi
} >"$RESULTS_DIR/bodies.txt" || die "bench/Client could not write the request bodies"

# ---- the estimate --------------------------------------------------------------------------
# Timed runs and warm-ups, plus about three seconds per run for starting the load generator, reading its output
# and the model's statistics before and after; the ORT baseline also loads its session each round.
run_s=$(seconds "$DURATION")
warm_s=$(seconds "$WARMUP")
if ((warm_s > 0)); then warm_s=$((warm_s + 3)); fi
estimate=0
if [[ -n ${SCENARIO[mlp]:-} ]]; then
    estimate=$((estimate + ${#TRANSPORT_LIST[@]} * ${#CONCURRENCY_LIST[@]} * 2 * (ROUNDS * (run_s + 3) + warm_s)))
fi
if [[ -n ${SCENARIO[resnet18]:-} ]]; then
    estimate=$((estimate + ROUNDS * (run_s + $(seconds "$WARMUP") + 4) + ${#RESNET_CONCURRENCY_LIST[@]} * (ROUNDS * (run_s + 3) + warm_s)))
fi
log "timed runs and warm-ups take about $((estimate / 60)) min $((estimate % 60)) s (plus a minute or two of build, start-up and checks)"

# ---- start the server ----------------------------------------------------------------------
SERVER_LOG="$RESULTS_DIR/server.log"
SERVER_COMMAND="dotnet $SERVER_DLL --model-repository <temporary folder> --http-port 0 --grpc-port 0 --silo-port 0 --gateway-port 0${SERVER_ARGS:+ $SERVER_ARGS}"
log "starting the server: dotnet $SERVER_DLL --model-repository $REPO_DIR --http-port 0 --grpc-port 0 --silo-port 0 --gateway-port 0 ${SERVER_EXTRA[*]}"
dotnet "$SERVER_DLL" --model-repository "$REPO_DIR" --http-port 0 --grpc-port 0 --silo-port 0 --gateway-port 0 "${SERVER_EXTRA[@]}" \
    </dev/null >"$SERVER_LOG" 2>&1 &
SERVER_PID=$!
PIDS+=("$SERVER_PID")

server_alive() {
    kill -0 "$SERVER_PID" 2>/dev/null || {
        log "last lines of $SERVER_LOG:"
        tail -n 40 "$SERVER_LOG" >&2 || true
        die "the server (PID $SERVER_PID) exited"
    }
}

# "Serving REST (v1, v2) on http://127.0.0.1:P1/ and gRPC (v2, h2c) on http://127.0.0.1:P2/"
deadline=$((SECONDS + START_TIMEOUT))
line=
until [[ -n $line ]]; do
    server_alive
    ((SECONDS < deadline)) || { tail -n 40 "$SERVER_LOG" >&2; die "the server printed no address within ${START_TIMEOUT}s (BENCH_START_TIMEOUT)"; }
    line=$(grep -m1 -E 'Serving REST .* on http://.* and gRPC .* on http://' "$SERVER_LOG" 2>/dev/null || true)
    [[ -n $line ]] || sleep 0.25
done
REST_URL=$(grep -oE 'REST [^h]* on http://[0-9.]+:[0-9]+' <<<"$line" | grep -oE 'http://[0-9.]+:[0-9]+' || true)
GRPC_URL=$(grep -oE 'gRPC .* on http://[0-9.]+:[0-9]+' <<<"$line" | grep -oE 'http://[0-9.]+:[0-9]+$' || true)
[[ -n $REST_URL && -n $GRPC_URL ]] || die "could not read the server's addresses from: $line"

http_code() { curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$1" || true; }
until [[ $(http_code "$REST_URL$READY_PATH") == 200 ]]; do
    server_alive
    ((SECONDS < deadline)) || die "the server did not answer $READY_PATH with 200 within ${START_TIMEOUT}s"
    sleep 0.25
done
client ready --url "$GRPC_URL" --timeout "$START_TIMEOUT" || die "the server's gRPC port never answered ServerReady"

# Every model must be ready and batch as written: max_batch_size in its Triton configuration is the batcher's
# maxBatchSize (0 without one), and no batching_note says the batcher was turned off.
declare -A CONFIG=()
for model in "${MODELS[@]}"; do
    [[ $(http_code "$REST_URL/v2/models/$model/ready") == 200 ]] || {
        curl -s --max-time 5 -X POST "$REST_URL/v2/repository/index" >&2 || true
        die "model $model is not ready (the repository index above says why)"
    }
    CONFIG[$model]=$(curl -sf --max-time 5 "$REST_URL/v2/models/$model/config") || die "GET /v2/models/$model/config failed"
    printf '%s\n' "${CONFIG[$model]}" >"$RESULTS_DIR/config-$model.json"
    if [[ ${CONFIG[$model]} == *'"batching_note"'* ]]; then die "$model: the server turned batching off: ${CONFIG[$model]}"; fi
done
# config_number MODEL NAME: the first number NAME holds in the model's configuration.
config_number() {
    [[ ${CONFIG[$1]} =~ \"$2\":([0-9]+) ]] || die "$1: no $2 in its configuration: ${CONFIG[$1]}"
    printf '%s' "${BASH_REMATCH[1]}"
}
expect_config() { # expect_config MODEL NAME VALUE
    local value
    value=$(config_number "$1" "$2")
    [[ $value == "$3" ]] || die "$1: $2 is $value, expected $3"
}
if [[ -n ${SCENARIO[mlp]:-} ]]; then
    expect_config "$MLP_OFF" max_batch_size 0
    expect_config "$MLP_ON" max_batch_size "$MLP_MAX_BATCH"
    expect_config "$MLP_ON" max_queue_delay_microseconds $((MLP_MAX_LATENCY * 1000))
fi
# The ORT baseline copies the batched model's execution setup: as many runners as the model runs executions at
# once (its instance count: one per executor thread by default), each Run with the intra-op threads the server
# gives it (the cores shared out among the instances), on one shared session, at the batcher's largest batch.
ORT_RUNNERS= ORT_INTRA_OP=
if [[ -n ${SCENARIO[resnet18]:-} ]]; then
    expect_config "$RESNET" max_batch_size "$RESNET_MAX_BATCH"
    expect_config "$RESNET" max_queue_delay_microseconds $((RESNET_MAX_LATENCY * 1000))
    [[ ${CONFIG[$RESNET]} =~ \"instance_group\":\[\{[^]}]*\"count\":([0-9]+) ]] || die "$RESNET: no instance_group count in its configuration"
    ORT_RUNNERS=${BASH_REMATCH[1]}
    ORT_INTRA_OP=$(($(nproc) / ORT_RUNNERS))
    if ((ORT_INTRA_OP < 1)); then ORT_INTRA_OP=1; fi
fi
log "the server is ready: REST $REST_URL, gRPC $GRPC_URL (PID $SERVER_PID); models: ${MODELS[*]}"

# ---- correctness checks ------------------------------------------------------------------
# Every body is sent CHECK_CALLS times (ResNet18: a tenth), 8 at a time, before the timed runs and 20 times after
# them, and every answer is read: HTTP status, grpc-status, the output's datatype and shape, finite values, and for
# the MLP probabilities in [0, 1] summing to 1 per row. The answers' length is what the load generators then hold
# every answer to.
declare -A PLAN=() RESPONSE_BYTES=()
PLAN_KEYS=()
plan() { PLAN[$1]="$2 $3 $4"; PLAN_KEYS+=("$1"); } # plan KEY grpc|rest-binary URL BODY
if [[ -n ${SCENARIO[mlp]:-} ]]; then
    for transport in "${TRANSPORT_LIST[@]}"; do
        for model in "$MLP_OFF" "$MLP_ON"; do
            if [[ $transport == grpc ]]; then
                plan "mlp/grpc/$model" grpc "$GRPC_URL" "$BODIES/grpc-$model.body"
            else
                plan "mlp/rest-binary/$model" rest-binary "$REST_URL/v2/models/$model/infer" "$BODIES/rest-binary-mlp.body"
            fi
        done
    done
fi
if [[ -n ${SCENARIO[resnet18]:-} ]]; then plan "resnet18/grpc/$RESNET" grpc "$GRPC_URL" "$BODIES/grpc-$RESNET.body"; fi

CHECK_LOG="$RESULTS_DIR/checks.txt"
: >"$CHECK_LOG"
check() { # check KEY CALLS
    local key=$1 calls=$2 transport url body out extra=() bytes low high
    read -r transport url body <<<"${PLAN[$key]}"
    if [[ $transport == rest-binary ]]; then extra+=(--header-length "$(cat "${body%.body}.header-length")"); fi
    if [[ $key == mlp/* ]]; then extra+=(--distribution probabilities); fi
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
run_checks() { # run_checks CALLS
    local key
    for key in "${PLAN_KEYS[@]}"; do
        if [[ $key == resnet18/* ]]; then check "$key" $((($1 + 9) / 10)); else check "$key" "$1"; fi
    done
}
log "checking every answer (${#PLAN_KEYS[@]} model/body combinations, $CHECK_CALLS calls each, ResNet18 a tenth)"
run_checks "$CHECK_CALLS"
log "every model answers correctly"

# ---- timed runs --------------------------------------------------------------------------
threads_for() { echo $(($1 < 2 ? $1 : 2)); }
record() { printf '%s\n' "$1" >>"$RUNS"; }

# field NAME JSON: the number NAME holds in a flat JSON object (empty if absent).
field() {
    if [[ $2 =~ \"$1\":(-?[0-9.eE+-]+) ]]; then printf '%s' "${BASH_REMATCH[1]}"; fi
}

summary() { # summary RESULT_JSON: one readable line for the log
    local rate
    rate=$(field images_per_s "$1")
    rate=${rate:-$(field rps "$1")}
    printf '%.1f/s, p50 %.2f ms, p99 %.2f ms, %s errors' "$rate" \
        "$(field p50_us "$1")e-3" "$(field p99_us "$1")e-3" "$(field errors "$1")"
}

# counts MODEL: "rows executions" from the model's statistics (Triton's inference_count and execution_count).
counts() {
    local json rows
    json=$(curl -sf --max-time 5 "$REST_URL/v2/models/$1/stats") || die "GET /v2/models/$1/stats failed"
    [[ $json =~ \"inference_count\":([0-9]+) ]] || die "$1: no inference_count in its statistics: $json"
    rows=${BASH_REMATCH[1]}
    [[ $json =~ \"execution_count\":([0-9]+) ]] || die "$1: no execution_count in its statistics: $json"
    printf '%s %s' "$rows" "${BASH_REMATCH[1]}"
}

# CPU time during a run. The server's from /proc (clock ticks); the load generator's from the shell's own
# account of the children it has waited for (bash's `times`, written to a file so that no subshell is involved).
CLOCK_TICKS=$(getconf CLK_TCK)
TIMES_FILE="$RESULTS_DIR/times.txt"
server_cpu() { awk -v hz="$CLOCK_TICKS" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$SERVER_PID/stat"; }
children_cpu() { # children_cpu: user + system seconds of every waited-for child, to CHILDREN_CPU
    times >"$TIMES_FILE"
    CHILDREN_CPU=$(awk 'NR == 2 { s = 0; for (i = 1; i <= 2; i++) { split($i, t, "m"); sub(/s$/, "", t[2]); s += t[1] * 60 + t[2] } printf "%.3f", s }' "$TIMES_FILE")
}

# load KEY C DURATION OUT: one h2load (gRPC) or wrk (REST binary) run of PLAN[KEY] at concurrency C; the result
# JSON goes to RESULT, the load generator's CPU account before and after it to LOAD_CPU_BEFORE and LOAD_CPU_AFTER.
# (Called directly, not in $(...), so that a signal stops the load generator at once.)
RESULT= LOAD_CPU_BEFORE= LOAD_CPU_AFTER=
load() {
    local key=$1 c=$2 duration=$3 out=$4 transport url body status=0 logfile
    read -r transport url body <<<"${PLAN[$key]}"
    children_cpu
    LOAD_CPU_BEFORE=$CHILDREN_CPU
    if [[ $transport == grpc ]]; then
        logfile="${out%.txt}.log"
        rm -f "$logfile" # h2load appends to its log file
        background h2load -c "$c" -m 1 -t "$(threads_for "$c")" -D "$duration" -N "$REQUEST_TIMEOUT" \
            -d "$body" -H 'content-type: application/grpc' -H 'te: trailers' --log-file="$logfile" \
            "$url$GRPC_INFER_PATH" </dev/null >"$out" 2>&1 || status=$?
        children_cpu
        LOAD_CPU_AFTER=$CHILDREN_CPU
        if ((status != 0)); then
            cat "$out" >&2
            die "h2load failed (exit status $status) on $key at concurrency $c"
        fi
        RESULT=$(python3 bench/h2load_result.py --summary "$out" --log "$logfile" --response-bytes "${RESPONSE_BYTES[$key]}") ||
            die "could not read h2load's output in $out"
        rm -f "$logfile"
    else
        BENCH_BODY=$body BENCH_HEADER_LENGTH=$(cat "${body%.body}.header-length") BENCH_RESPONSE_BYTES=${RESPONSE_BYTES[$key]} \
            background wrk -t"$(threads_for "$c")" -c"$c" -d"$duration" --timeout "$REQUEST_TIMEOUT" --latency -s "$LUA" "$url" \
            </dev/null >"$out" 2>&1 || status=$?
        children_cpu
        LOAD_CPU_AFTER=$CHILDREN_CPU
        if ((status != 0)); then
            cat "$out" >&2
            die "wrk failed (exit status $status) on $key at concurrency $c"
        fi
        grep -q '^wrk-result: ' "$out" || {
            cat "$out" >&2
            die "wrk printed no result line on $key (is $LUA intact?)"
        }
        RESULT=$(sed -n 's/^wrk-result: //p' "$out" | head -n1)
    fi
}

# timed SCENARIO KEY C ROUND LABELS_JSON: one timed run with the model's rows and executions during it, recorded.
timed() {
    local scenario=$1 key=$2 c=$3 round=$4 labels=$5 model=${2##*/} before after rows executions mean
    local server_before server_after cpu
    local out="$RESULTS_DIR/${key//\//-}-c$c-r$round.txt"
    before=$(counts "$model")
    server_before=$(server_cpu)
    load "$key" "$c" "$DURATION" "$out"
    server_alive
    server_after=$(server_cpu)
    cpu=$(awk -v s0="$server_before" -v s1="$server_after" -v c0="$LOAD_CPU_BEFORE" -v c1="$LOAD_CPU_AFTER" \
        'BEGIN { printf "\"server_cpu_s\":%.2f,\"client_cpu_s\":%.3f", s1 - s0, c1 - c0 }')
    after=$(counts "$model")
    read -r -a before <<<"$before"
    read -r -a after <<<"$after"
    rows=$((after[0] - before[0]))
    executions=$((after[1] - before[1]))
    mean=$(awk -v r="$rows" -v e="$executions" 'BEGIN { printf "%.2f", (e > 0 ? r / e : 0) }')
    record "{\"scenario\":\"$scenario\",\"model\":\"$model\",\"concurrency\":$c,\"round\":$round,\"duration\":\"$DURATION\",$labels,\"rows\":$rows,\"executions\":$executions,$cpu,${RESULT#\{}"
    log "$key, concurrency $c, round $round/$ROUNDS: $(summary "$RESULT"), $rows rows in $executions executions ($mean per execution)"
}

warm() { # warm KEY C: a discarded run
    [[ $WARMUP == 0 ]] && return 0
    log "warm-up: $1, concurrency $2, $WARMUP"
    load "$1" "$2" "$WARMUP" "$RESULTS_DIR/${1//\//-}-c$2-warmup.txt"
    server_alive
}

if [[ -n ${SCENARIO[mlp]:-} ]]; then
    for transport in "${TRANSPORT_LIST[@]}"; do
        for c in "${CONCURRENCY_LIST[@]}"; do
            warm "mlp/$transport/$MLP_OFF" "$c"
            warm "mlp/$transport/$MLP_ON" "$c"
            for ((round = 1; round <= ROUNDS; round++)); do
                timed mlp "mlp/$transport/$MLP_OFF" "$c" "$round" "\"transport\":\"$transport\",\"batching\":\"off\""
                timed mlp "mlp/$transport/$MLP_ON" "$c" "$round" "\"transport\":\"$transport\",\"batching\":\"on\""
            done
        done
    done
fi

ORT_COMMAND=
if [[ -n ${SCENARIO[resnet18]:-} ]]; then
    ort_warmup=$([[ $WARMUP == 0 ]] && echo 0s || echo "$WARMUP")
    ORT_COMMAND="dotnet $ORT_DLL --model $RESNET_MODEL --runners $ORT_RUNNERS --sessions shared --intra-op-threads $ORT_INTRA_OP --batch $RESNET_MAX_BATCH --duration $DURATION --warmup $ort_warmup"
    for c in "${RESNET_CONCURRENCY_LIST[@]}"; do warm "resnet18/grpc/$RESNET" "$c"; done
    for ((round = 1; round <= ROUNDS; round++)); do
        # Raw ONNX Runtime in its own process while the server sits idle, then the server at each concurrency.
        out="$RESULTS_DIR/resnet18-ort-r$round.txt"
        read -r -a ort_cmd <<<"$ORT_COMMAND"
        background "${ort_cmd[@]}" </dev/null >"$out" 2>&1 || {
            cat "$out" >&2
            die "bench/OrtBaseline failed"
        }
        result=$(sed -n 's/^ort-result: //p' "$out" | head -n1)
        [[ -n $result ]] || die "bench/OrtBaseline printed no result line (see $out)"
        record "{\"scenario\":\"resnet18\",\"path\":\"ort\",\"model\":\"$RESNET_MODEL\",\"concurrency\":$ORT_RUNNERS,\"round\":$round,\"duration\":\"$DURATION\",${result#\{}"
        log "resnet18 raw ONNX Runtime, $ORT_RUNNERS runners, batch $RESNET_MAX_BATCH, round $round/$ROUNDS: $(summary "$result")"
        for c in "${RESNET_CONCURRENCY_LIST[@]}"; do
            timed resnet18 "resnet18/grpc/$RESNET" "$c" "$round" '"path":"grpc"'
        done
    done
fi

log "checking every answer again after the load"
run_checks 20

# The models' statistics at the end (rows, executions, executions per batch size, queue time), for the record.
STATS_ARGS=()
for model in "${MODELS[@]}"; do
    curl -sf --max-time 5 "$REST_URL/v2/models/$model/stats" >"$RESULTS_DIR/stats-$model.json" || die "GET /v2/models/$model/stats failed"
    STATS_ARGS+=(--stats "$RESULTS_DIR/stats-$model.json")
    log "$model: $(counts "$model" | awk '{ printf "inference_count %s, execution_count %s (%.2f rows per execution)", $1, $2, ($2 > 0 ? $1 / $2 : 0) }') over the whole run"
done

# ---- write docs/performance.md -----------------------------------------------------------
quote() { # shell-quote a value only where it needs it
    if [[ $1 =~ ^[A-Za-z0-9_./:=@%+-]+$ ]]; then printf '%s' "$1"; else printf "'%s'" "${1//\'/\'\\\'\'}"; fi
}
command_line="BENCH_SCENARIOS=$(quote "${SCENARIO_LIST[*]}")"
if [[ -n ${SCENARIO[mlp]:-} ]]; then
    command_line+=" BENCH_TRANSPORTS=$(quote "${TRANSPORT_LIST[*]}") BENCH_CONCURRENCY=$(quote "${CONCURRENCY_LIST[*]}")"
    command_line+=" BENCH_MLP_MAX_BATCH=$MLP_MAX_BATCH BENCH_MLP_MAX_LATENCY=$MLP_MAX_LATENCY"
fi
if [[ -n ${SCENARIO[resnet18]:-} ]]; then
    command_line+=" BENCH_RESNET_CONCURRENCY=$(quote "${RESNET_CONCURRENCY_LIST[*]}")"
    command_line+=" BENCH_RESNET_MAX_BATCH=$RESNET_MAX_BATCH BENCH_RESNET_MAX_LATENCY=$RESNET_MAX_LATENCY"
fi
command_line+=" BENCH_DURATION=$DURATION BENCH_WARMUP=$WARMUP BENCH_ROUNDS=$ROUNDS"
if [[ -n $SERVER_ARGS ]]; then command_line+=" BENCH_SERVER_ARGS=$(quote "$SERVER_ARGS")"; fi
if [[ $REQUEST_TIMEOUT != 10s ]]; then command_line+=" BENCH_REQUEST_TIMEOUT=$REQUEST_TIMEOUT"; fi
if [[ $SECTION != batching ]]; then command_line+=" BENCH_SECTION=$(quote "$SECTION") BENCH_TITLE=$(quote "$TITLE")"; fi
command_line+=" bench/batching.sh"

cpu_model=$(grep -m1 -E '^model name' /proc/cpuinfo | sed -E 's/^[^:]*:[[:space:]]*//' || true)
mem_gib=$(awk '/^MemTotal:/ { printf "%.0f", $2 / 1048576 }' /proc/meminfo 2>/dev/null || true)
runtime=$(dotnet --list-runtimes 2>/dev/null | awk '/^Microsoft.AspNetCore.App / { v = $2 } END { print v }' || true)
machine="$(nproc) CPUs (nproc), ${cpu_model:-unknown CPU}, ${mem_gib:-?} GiB RAM, $(uname -sr), ASP.NET Core ${runtime:-?}"
if command -v h2load >/dev/null; then machine+=", $(h2load --version 2>&1 | head -n1)"; fi
if command -v wrk >/dev/null; then machine+=", $(wrk --version 2>&1 | awk 'NR == 1 { print $1, $2 }' || true)"; fi
machine+=", load average before the run $LOAD_BEFORE"
revision=$(git rev-parse --short HEAD 2>/dev/null || echo 'no commit yet')
if [[ -n $(git --no-optional-locks status --porcelain 2>/dev/null | head -n1) ]]; then revision+=" (with uncommitted changes)"; fi

method="one server serves every model; the load generator runs on the same machine;"
if [[ $WARMUP != 0 ]]; then
    method+=" for every transport and concurrency a $WARMUP warm-up run per model (discarded), then"
else
    method+=" no warm-up, then"
fi
method+=" $ROUNDS round(s) of $DURATION, each running batching off then on; the ResNet18 rounds run raw ONNX Runtime, then the server at each concurrency."

python3 bench/write_batching_section.py \
    --runs "$RUNS" \
    "${STATS_ARGS[@]}" \
    --output "$OUTPUT" \
    --date "$(date -u '+%Y-%m-%d %H:%M UTC')" \
    --machine "$machine" \
    --revision "$revision" \
    --command "$command_line" \
    --method "$method" \
    --h2load-command "h2load -c <c> -m 1 -t <min(c,2)> -D $DURATION -N $REQUEST_TIMEOUT -d <body> -H 'content-type: application/grpc' -H 'te: trailers' --log-file=<log> http://127.0.0.1:<gRPC port>$GRPC_INFER_PATH" \
    --wrk-command "wrk -t<min(c,2)> -c<c> -d$DURATION --timeout $REQUEST_TIMEOUT --latency -s $LUA http://127.0.0.1:<REST port>/v2/models/<model>/infer" \
    --server-command "$SERVER_COMMAND" \
    --ort-command "$ORT_COMMAND" \
    --mlp-max-batch "$MLP_MAX_BATCH" \
    --mlp-max-latency-ms "$MLP_MAX_LATENCY" \
    --resnet-max-batch "$RESNET_MAX_BATCH" \
    --resnet-max-latency-ms "$RESNET_MAX_LATENCY" \
    --check-calls "$CHECK_CALLS" \
    --section "$SECTION" \
    --title "$TITLE"
log "wrote the bench:$SECTION section of $OUTPUT"
