#!/usr/bin/env bash
# Generates Python gRPC stubs from the project's own Contracts/Protos/grpc_service.proto with Debian's protoc and
# grpc_python_plugin (into a temp folder, removed on exit) and runs grpc_client.py with Debian's python3-grpcio.
#
# Usage: tests/interop/run-python-client.sh <grpc address> [<rest base url>]
#   <grpc address>: host:port or http://host:port/
# Exit codes: 0 every check passed, 1 a check failed, 2 usage, 3 a tool is missing (run ./test.sh).
set -euo pipefail

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
    echo "usage: $0 <grpc host:port | http://host:port/> [<rest base url>]" >&2
    exit 2
fi

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)

# Debian's python3-grpcio and python3-protobuf live in Debian's own interpreter's dist-packages; a python3 earlier
# on PATH (pyenv, venv) does not see them.
python=${INTEROP_PYTHON:-/usr/bin/python3}

missing=()
command -v protoc >/dev/null 2>&1 || missing+=("protoc (Debian package protobuf-compiler)")
command -v grpc_python_plugin >/dev/null 2>&1 || missing+=("grpc_python_plugin (Debian package protobuf-compiler-grpc)")
if [ ! -x "$python" ]; then
    missing+=("$python (Debian package python3)")
else
    "$python" -c 'import grpc' >/dev/null 2>&1 || missing+=("python module grpc for $python (Debian package python3-grpcio)")
    "$python" -c 'import google.protobuf' >/dev/null 2>&1 || missing+=("python module google.protobuf for $python (Debian package python3-protobuf)")
fi
if [ ${#missing[@]} -gt 0 ]; then
    {
        echo "interop tools missing; run ./test.sh (it installs them) first:"
        printf '  - %s\n' "${missing[@]}"
    } >&2
    exit 3
fi

address=$1
address=${address#http://}
address=${address%%/*}

stubs=$(mktemp -d "${TMPDIR:-/tmp}/kserve-interop-stubs.XXXXXX")
trap 'rm -rf "$stubs"' EXIT

protoc -I "$root/Contracts/Protos" \
    --python_out="$stubs" \
    --grpc_out="$stubs" --plugin=protoc-gen-grpc="$(command -v grpc_python_plugin)" \
    "$root/Contracts/Protos/grpc_service.proto"

PYTHONPATH="$stubs" PYTHONDONTWRITEBYTECODE=1 "$python" "$here/grpc_client.py" "$address" "${@:2}"
