#!/usr/bin/env bash
# Speaks gRPC to the server with nothing but curl: hand-built length-prefixed frames over HTTP/2 without TLS
# (h2c, --http2-prior-knowledge), response frames and trailers decoded here.
#
# Usage: tests/interop/curl-grpc-frame.sh <grpc address>
#   <grpc address>: host:port or http://host:port/
# Prints one JSON object with what each call answered. Exit codes: 0 every check passed, 1 a check failed,
# 2 usage, 3 curl is missing or cannot speak HTTP/2 (run ./test.sh).
set -euo pipefail

if [ $# -ne 1 ]; then
    echo "usage: $0 <grpc host:port | http://host:port/>" >&2
    exit 2
fi

if ! command -v curl >/dev/null 2>&1; then
    echo "curl is missing; run ./test.sh (it installs it) first" >&2
    exit 3
fi
if ! curl -V | grep -qw HTTP2; then
    echo "this curl has no HTTP/2 support ($(curl -V | head -1)); run ./test.sh (it installs Debian's curl) first" >&2
    exit 3
fi

address=$1
address=${address#http://}
address=${address%%/*}

work=$(mktemp -d "${TMPDIR:-/tmp}/kserve-interop-curl.XXXXXX")
trap 'rm -rf "$work"' EXIT

failures=()
results=()

# grpc_call <name> <rpc> <message bytes as \x escapes>
# Writes the frame 00 (not compressed), 4-byte big-endian length, message; POSTs it; leaves
# $work/<name>.body (response frames), $work/<name>.headers (headers and trailers as curl saw them).
grpc_call() {
    local name=$1 rpc=$2 message=$3
    local length
    length=$(printf "$message" | wc -c)
    {
        printf '\x00'
        printf "\\x$(printf '%02x' $(((length >> 24) & 255)))\\x$(printf '%02x' $(((length >> 16) & 255)))"
        printf "\\x$(printf '%02x' $(((length >> 8) & 255)))\\x$(printf '%02x' $((length & 255)))"
        printf "$message"
    } >"$work/$name.frame"
    # -D writes the response headers and, for HTTP/2, the trailers (grpc-status, grpc-message) after them.
    curl -sS --http2-prior-knowledge --max-time 30 -X POST \
        -H 'content-type: application/grpc' -H 'te: trailers' \
        --data-binary @"$work/$name.frame" \
        -D "$work/$name.headers" -o "$work/$name.body" \
        "http://$address/inference.GRPCInferenceService/$rpc" 2>"$work/$name.err" || {
        failures+=("$name: curl failed: $(cat "$work/$name.err")")
        return 1
    }
}

hex_of() { od -An -v -tx1 "$1" | tr -d ' \n'; }

# header_value <name> <header>: the last value of that header or trailer (lower-cased name), CR stripped.
header_value() {
    tr -d '\r' <"$work/$1.headers" | awk -v h="$2" 'tolower($1) == h ":" { sub(/^[^:]*: */, ""); v = $0 } END { print v }'
}

# expect_call <name> <expected body hex> <expected grpc-status>
expect_call() {
    local name=$1 body=$2 status=$3
    local seen_body seen_status http content_type message
    seen_body=$(hex_of "$work/$name.body")
    seen_status=$(header_value "$name" grpc-status)
    message=$(header_value "$name" grpc-message)
    content_type=$(header_value "$name" content-type)
    http=$(tr -d '\r' <"$work/$name.headers" | awk 'NR == 1 { print $1 " " $2 }')
    results+=("\"$name\": {\"http\": \"$http\", \"content_type\": \"$content_type\", \"body_hex\": \"$seen_body\", \"grpc_status\": \"$seen_status\", \"grpc_message\": \"${message//\"/\\\"}\"}")
    [ "$http" = "HTTP/2 200" ] || failures+=("$name: status line '$http', expected 'HTTP/2 200'")
    case "$content_type" in application/grpc*) ;; *) failures+=("$name: content-type '$content_type', expected application/grpc") ;; esac
    [ "$seen_body" = "$body" ] || failures+=("$name: response bytes '$seen_body', expected '$body'")
    [ "$seen_status" = "$status" ] || failures+=("$name: grpc-status '$seen_status', expected '$status' (headers: $(tr -d '\r' <"$work/$name.headers" | tr '\n' '|'))")
}

# ServerLiveRequest is empty: the frame is 00 00 00 00 00. Answer: ServerLiveResponse{live: true} = 08 01.
grpc_call server_live ServerLive '' && expect_call server_live 00000000020801 0

# ModelReadyRequest{name: "double"}: field 1, wire type 2 (tag 0x0a), length 6, "double".
grpc_call model_ready_double ModelReady '\x0a\x06double' && expect_call model_ready_double 00000000020801 0

# An unknown model: no message, grpc-status 5 (NOT_FOUND).
grpc_call model_ready_unknown ModelReady '\x0a\x0dno-such-model' && expect_call model_ready_unknown '' 5

ok=true
[ ${#failures[@]} -eq 0 ] || ok=false
joined=$(IFS=,; echo "${results[*]}")
echo "{\"ok\": $ok, \"curl\": \"$(curl -V | head -1 | cut -d' ' -f1-2)\", \"results\": {$joined}}"
if [ "$ok" != true ]; then
    printf 'FAILED: %s\n' "${failures[@]}" >&2
    exit 1
fi
