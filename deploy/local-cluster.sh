#!/usr/bin/env bash
# A three-silo cluster on this machine: Debian's redis-server for membership and the registry, and three server
# processes (role all: each a silo with its REST and gRPC front end), every one on free ports of 127.0.0.1.
#
#   deploy/local-cluster.sh start [STATE_DIR]   starts them, prints each front end's REST and gRPC address
#   deploy/local-cluster.sh stop [STATE_DIR]    stops them by the process ids start wrote (SIGTERM, then SIGKILL)
#
# STATE_DIR (default /tmp/kserve-local-cluster) holds the process ids, logs and the `endpoints` file. Without
# KSERVE_SILO_DLL the server is built into STATE_DIR/bin first; KSERVE_MODEL_REPOSITORY names the folder of KServe
# YAML (default the repository's samples/).
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
command="${1:-}"
state="${2:-${TMPDIR:-/tmp}/kserve-local-cluster}"

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

stop_pid_file() {
    local file="$1" pid
    [ -f "$file" ] || return 0
    pid="$(cat "$file")"
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
    fi
    rm -f "$file"
}

case "$command" in
start)
    if [ -e "$state/redis.pid" ]; then
        echo "a cluster of $state is running; stop it first: $0 stop $state" >&2
        exit 2
    fi

    mkdir -p "$state/redis"
    silo="${KSERVE_SILO_DLL:-}"
    if [ -z "$silo" ]; then
        dotnet build "$root/Silo" -c Release -o "$state/bin" --nologo -v quiet >"$state/build.log" 2>&1 || { cat "$state/build.log" >&2; exit 1; }
        silo="$state/bin/Orleans.KServe.Silo.dll"
    fi

    repository="${KSERVE_MODEL_REPOSITORY:-$root/samples}"
    redis_port="$(free_port)"
    redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no --dir "$state/redis" >"$state/redis.log" 2>&1 &
    echo $! >"$state/redis.pid"
    for _ in $(seq 1 300); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.1; done
    redis-cli -p "$redis_port" ping >/dev/null || { cat "$state/redis.log" >&2; "$0" stop "$state"; exit 1; }

    cluster_id="local-$redis_port"
    for i in 1 2 3; do
        KServe__ClusteringConnection="127.0.0.1:$redis_port" dotnet "$silo" \
            --clustering redis --cluster-id "$cluster_id" --advertised-address 127.0.0.1 \
            --http-port 0 --grpc-port 0 --silo-port 0 --gateway-port 0 \
            --model-repository "$repository" >"$state/silo$i.log" 2>&1 &
        echo $! >"$state/silo$i.pid"
    done

    : >"$state/endpoints"
    for i in 1 2 3; do
        line=""
        for _ in $(seq 1 1200); do
            line="$(grep -o 'Serving REST (v1, v2) on [^ ]* and gRPC (v2, h2c) on [^ ]*' "$state/silo$i.log" || true)"
            [ -n "$line" ] && break
            kill -0 "$(cat "$state/silo$i.pid")" 2>/dev/null || break
            sleep 0.1
        done
        if [ -z "$line" ]; then
            echo "silo $i did not start:" >&2
            cat "$state/silo$i.log" >&2
            "$0" stop "$state"
            exit 1
        fi
        rest="$(echo "$line" | awk '{print $6}')"
        grpc="$(echo "$line" | awk '{print $NF}')"
        echo "silo$i ${rest%/} ${grpc%/}" | tee -a "$state/endpoints"
    done
    echo "cluster $cluster_id on redis 127.0.0.1:$redis_port; stop it with: $0 stop $state"
    ;;
stop)
    for file in "$state"/silo*.pid; do stop_pid_file "$file"; done
    stop_pid_file "$state/redis.pid"
    echo "stopped"
    ;;
*)
    echo "usage: $0 start|stop [STATE_DIR]" >&2
    exit 2
    ;;
esac
