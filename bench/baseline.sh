# Sourced by bench/rest.sh and bench/grpc.sh: with BENCH_BASELINE_REV=<git revision>, the server of that revision
# is built in a worktree of its own and benchmarked beside the current one, alternating within every round, and
# each run records the server's CPU time from /proc (user + system of its process) so that the section
# bench/write_baseline_section.py writes compares CPU per call: this build against that one.

BASELINE_REV=${BENCH_BASELINE_REV:-}
BASELINE_SRC=
BASELINE_DLL=
CLOCK_TICKS=$(getconf CLK_TCK)

# baseline_build: a detached worktree of BASELINE_REV in a temporary folder, its server built in Release.
baseline_build() {
    local commit
    commit=$(git rev-parse --verify --quiet "$BASELINE_REV^{commit}") || die "BENCH_BASELINE_REV: '$BASELINE_REV' is not a revision of this repository"
    BASELINE_REV=$(git rev-parse --short "$commit")
    BASELINE_SRC=$(mktemp -d "${TMPDIR:-/tmp}/kserve-baseline-XXXXXX")
    log "building the baseline server of revision $BASELINE_REV in $BASELINE_SRC"
    git worktree add --detach --force "$BASELINE_SRC" "$commit" >/dev/null 2>&1 || die "git worktree add of $BASELINE_REV failed"
    dotnet build -c Release -nologo -v quiet -p:GenerateSampleModels=false "$BASELINE_SRC/Silo/Orleans.KServe.Silo.csproj" >&2
    BASELINE_DLL=$BASELINE_SRC/Silo/bin/Release/net10.0/linux-x64/Orleans.KServe.Silo.dll
    [[ -f $BASELINE_DLL ]] || die "the baseline build made no $BASELINE_DLL"
}

# baseline_cleanup: removes the worktree (called from the scripts' exit trap).
baseline_cleanup() {
    if [[ -n $BASELINE_SRC && -d $BASELINE_SRC ]]; then
        git worktree remove --force "$BASELINE_SRC" 2>/dev/null || rm -rf "$BASELINE_SRC"
        git worktree prune 2>/dev/null || true
    fi
}

# proc_cpu PID: the process's CPU seconds so far (user + system), from /proc/PID/stat.
proc_cpu() { awk -v hz="$CLOCK_TICKS" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$1/stat"; }
