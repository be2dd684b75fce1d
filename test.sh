#!/usr/bin/env bash
# Runs the whole test suite: installs what the tests need, builds, runs every test project and prints the totals.
set -euo pipefail
cd "$(dirname "$0")"

# Debian packages the tests call, installed only when missing: curl (README examples; raw gRPC frames over h2c),
# for the Python interop client Debian's python3-grpcio and python3-protobuf (for Debian's /usr/bin/python3)
# with protoc and its gRPC Python plugin, which generate the client's stubs from Contracts/Protos at test time, and
# haproxy, the load balancer the drain test stops a server behind, and redis-server and postgresql-15, the membership
# stores of the cluster tests (the tests start their own servers on free ports; the packages' own daemons are not used).
need=()
for package in curl python3-grpcio python3-protobuf protobuf-compiler protobuf-compiler-grpc haproxy redis-server postgresql-15; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q ' installed$' || need+=("$package")
done
if [ ${#need[@]} -gt 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
results=$(mktemp -d)
trap 'rm -rf "$results"' EXIT

dotnet build Orleans.KServe.sln -c Release -nologo -v quiet
status=0
dotnet test Orleans.KServe.sln -c Release --no-build -nologo -v quiet \
    --logger "trx" --results-directory "$results" "$@" || status=$?

# Each failed test with its message and stack (the console shows only its name), then one closing line with the
# totals of every test assembly.
python3 - "$results" <<'PY'
import glob, sys, xml.etree.ElementTree as ET
ns = {"t": "http://microsoft.com/schemas/VisualStudio/TeamTest/2010"}
passed = failed = skipped = 0
for path in glob.glob(sys.argv[1] + "/*.trx"):
    root = ET.parse(path).getroot()
    for result in root.iterfind(".//t:UnitTestResult", ns):
        if result.get("outcome") not in ("Failed", "Error", "Timeout"):
            continue
        print(f"FAILED {result.get('testName')} ({result.get('duration')})")
        for tag in ("Message", "StackTrace"):
            node = result.find(f"t:Output/t:ErrorInfo/t:{tag}", ns)
            if node is not None and node.text:
                print("    " + node.text.strip().replace("\n", "\n    "))
    c = root.find("t:ResultSummary/t:Counters", ns)
    passed += int(c.get("passed")); failed += int(c.get("failed")) + int(c.get("error")) + int(c.get("timeout"))
    skipped += int(c.get("notExecuted"))
print(f"{passed} passed, {failed} failed, {skipped} skipped")
if passed == 0:
    sys.exit(1)
PY
exit $status
