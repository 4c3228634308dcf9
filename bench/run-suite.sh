#!/usr/bin/env bash
# ursa benchmark suite: ursa vs Tokio, Go, Boost.Fiber and the pool peers
# (HikariCP, Go database/sql, r2d2), one command.
#
#   bash bench/run-suite.sh [--out DIR] [--no-callgrind] [S] [ROUNDS]
#        (defaults: S=1, ROUNDS=5, DIR=docs/bench)
#
# 1. installs missing Debian packages (ursa's via .ci/deps, gnuplot-nox and
#    valgrind here, the peers' via bench/peers/build.sh); apt-get only if
#    something is missing
# 2. builds ursa_bench (Release) in build/bench and the peers in build/peers
#    (Tokio and r2d2 once per Rust toolchain on the machine)
# 3. runs ROUNDS interleaved rounds; round r runs every program once, the
#    list rotated by r, so no program always goes first
# 4. runs mem_1m_tasks once per program, each in its own process (it takes
#    GBs and up to a minute)
# 5. counts ursa's instructions per op with callgrind (bench/callgrind.sh)
#    for every single-worker workload, unless --no-callgrind
# 6. writes DIR/results.md (medians, spread, ratio to the best peer,
#    instructions/op, the faster build of each multi-build peer) and
#    DIR/results.png (gnuplot grouped bars, log y)
#
# Raw lines (`round program name value`) and logs stay in build/suite/.
# Environment: WORKLOADS=path/to/WORKLOADS.md (default: shared/WORKLOADS.md
# in the repo, else /work/shared/WORKLOADS.md), SKIP_BUILD=1 to reuse the
# binaries, CALLGRIND=0 as --no-callgrind, RUN_TIMEOUT=seconds per program
# run (default 900; a run that takes longer is killed and listed as failed),
# INSTR_BEFORE=path/to/an/earlier/ursa_bench to count its instructions too
# (a before/after table in results.md; INSTR_BEFORE_LABEL names it).
set -u -o pipefail

usage() { sed -n '2,25p' "$0" >&2; exit 2; }
OUTDIR=
CALLGRIND=${CALLGRIND:-1}
pos=()
while (($#)); do
    case $1 in
        --out) [ $# -ge 2 ] || usage; OUTDIR=$2; shift 2 ;;
        --out=*) OUTDIR=${1#--out=}; shift ;;
        --no-callgrind) CALLGRIND=0; shift ;;
        -h | --help) usage ;;
        -*) echo "run-suite: unknown option $1" >&2; usage ;;
        *) pos+=("$1"); shift ;;
    esac
done
S=${pos[0]:-1}
ROUNDS=${pos[1]:-5}
case "$ROUNDS" in '' | *[!0-9]* | 0) echo "run-suite: ROUNDS must be a positive integer" >&2; exit 2 ;; esac
# The peers take an integer S >= 1 only.
case "$S" in '' | *[!0-9]* | 0) echo "run-suite: S must be a positive integer (the peers accept no fractions)" >&2; exit 2 ;; esac

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 1
SUITE=$ROOT/bench/suite
WORK=$ROOT/build/suite
PEERS_OUT=$ROOT/build/peers
URSA_BUILD=$ROOT/build/bench
DOCS=${OUTDIR:-$ROOT/docs/bench}
mkdir -p "$WORK" "$DOCS" || exit 1
DOCS=$(cd "$DOCS" && pwd)
RUN_TIMEOUT=${RUN_TIMEOUT:-900}

log() { echo "run-suite: $*" >&2; }
T0=$(date +%s)

if [ -z "${WORKLOADS:-}" ]; then
    for w in "$ROOT/shared/WORKLOADS.md" "$ROOT/../shared/WORKLOADS.md" /work/shared/WORKLOADS.md; do
        [ -f "$w" ] && { WORKLOADS=$w; break; }
    done
fi
[ -n "${WORKLOADS:-}" ] && [ -f "$WORKLOADS" ] || { log "WARNING: WORKLOADS.md not found; table follows output order"; WORKLOADS=; }

# ------------------------------------------------------------ 1. packages
if [ "${SKIP_BUILD:-0}" != 1 ]; then
    log "checking Debian packages"
    bash "$ROOT/.ci/deps" || { log "ERROR: .ci/deps failed"; exit 1; }
    want=()
    command -v gnuplot >/dev/null 2>&1 || want+=(gnuplot-nox)
    [ "$CALLGRIND" = 1 ] && ! command -v valgrind >/dev/null 2>&1 && want+=(valgrind)
    if ((${#want[@]})); then
        log "installing ${want[*]}"
        SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
        export DEBIAN_FRONTEND=noninteractive
        $SUDO apt-get update -qq >&2 && $SUDO apt-get install -y -qq "${want[@]}" >/dev/null ||
            log "WARNING: could not install ${want[*]}"
    fi

    # -------------------------------------------------------- 2. build
    log "building ursa_bench (Release) in $URSA_BUILD"
    { cmake -S . -B "$URSA_BUILD" -DCMAKE_BUILD_TYPE=Release -DURSA_BUILD_TESTS=OFF -DURSA_BUILD_EXAMPLES=OFF &&
        cmake --build "$URSA_BUILD" --target ursa_bench -j "$(nproc)"; } >"$WORK/build-ursa.log" 2>&1 ||
        { tail -n 30 "$WORK/build-ursa.log" >&2; log "ERROR: ursa_bench build failed (log: $WORK/build-ursa.log)"; exit 1; }
    # The lease round trips need libpq (URSA_WITH_POSTGRES); without it
    # they are left out of the table.
    cmake --build "$URSA_BUILD" --target ursa_lease_bench -j "$(nproc)" >>"$WORK/build-ursa.log" 2>&1 ||
        log "WARNING: ursa_lease_bench not built (no libpq?): no lease rows"

    log "building peers in $PEERS_OUT (installs their packages if missing)"
    bash "$ROOT/bench/peers/build.sh" "$PEERS_OUT" >"$WORK/build-peers.log" 2>&1 ||
        log "WARNING: no peer built (log: $WORK/build-peers.log)"
    grep -E 'WARNING|not built' "$WORK/build-peers.log" >&2
fi

URSA_BIN=$(find "$URSA_BUILD" -type f -name ursa_bench -perm -u+x 2>/dev/null | head -n1)
[ -n "$URSA_BIN" ] || { log "ERROR: ursa_bench not found under $URSA_BUILD"; exit 1; }
LEASE_BIN=$(find "$URSA_BUILD" -type f -name ursa_lease_bench -perm -u+x 2>/dev/null | head -n1)
LEASE_BIN=${LEASE_BIN:-$URSA_BUILD/missing/ursa_lease_bench}

# Programs: label, then the command. A label `peer@variant` is one build or
# configuration of peer; the report keeps the faster variant per workload.
declare -A CMD=(
    [ursa]="$URSA_BIN"
    [tokio@debian]="$PEERS_OUT/tokio-bench.debian"
    [tokio@rustup]="$PEERS_OUT/tokio-bench.rustup"
    [go]="$PEERS_OUT/go-bench"
    [fiber@spin]="$PEERS_OUT/fiber-bench"
    [fiber@suspend]="$PEERS_OUT/fiber-bench --suspend"
    [hikaricp]="$PEERS_OUT/hikari-bench"
    [gosql]="$PEERS_OUT/gosql-bench"
    [r2d2@debian]="$PEERS_OUT/r2d2-bench.debian"
    [r2d2@rustup]="$PEERS_OUT/r2d2-bench.rustup"
    [ursa@lease]="$LEASE_BIN ursa"
    [libpq]="$LEASE_BIN libpq_sync"
    [advisory]="$LEASE_BIN pg_advisory_lock"
)
ALL=(ursa tokio@debian tokio@rustup go fiber@spin fiber@suspend hikaricp gosql r2d2@debian r2d2@rustup
    ursa@lease libpq advisory)
# Programs that have mem_1m_tasks (run once each, in its own process).
MEM1M=(ursa tokio@debian tokio@rustup go fiber@spin)
PROGRAMS=()
for p in "${ALL[@]}"; do
    bin=${CMD[$p]%% *}
    if [ -x "$bin" ]; then PROGRAMS+=("$p"); else log "$p not built ($bin), skipped"; fi
done
T_BUILD=$(date +%s)

# ------------------------------------------------------------ 3. rounds
RAW=$WORK/raw.txt
FAIL=$WORK/failures.txt
: >"$RAW"; : >"$FAIL"; : >"$WORK/run.log"
# 1-minute load average: at the start, the highest seen when a program
# starts, and at the end (other processes on the machine skew the numbers).
load1() { cut -d' ' -f1 /proc/loadavg; }
LOAD_BEFORE=$(load1); LOAD_MAX=$LOAD_BEFORE

# run_one ROUND PROGRAM ARGS...: runs it, appends its lines to raw.txt and
# its stderr to run.log; a failure goes to failures.txt (tab-separated:
# round, program, status, arguments, the last line of stderr that says why).
run_one() {
    local r=$1 p=$2 t1 t2 rc why
    shift 2
    t1=$(date +%s.%N)
    local l; l=$(load1); LOAD_MAX=$(awk -v a="$LOAD_MAX" -v b="$l" 'BEGIN{print (b > a ? b : a)}')
    # shellcheck disable=SC2086 # CMD holds a command and its options
    timeout "$RUN_TIMEOUT" ${CMD[$p]} "$@" 2>"$WORK/last.err" |
        awk -v r="$r" -v p="$p" 'NF == 2 { print r, p, $1, $2; fflush() }' >>"$RAW"
    rc=${PIPESTATUS[0]}
    t2=$(date +%s.%N)
    { echo "=== round $r $p $* (exit $rc)"; cat "$WORK/last.err"; } >>"$WORK/run.log"
    log "round $r: $p $* $(awk -v a="$t1" -v b="$t2" 'BEGIN{printf "%.1f", b-a}') s, exit $rc"
    if [ "$rc" -ne 0 ]; then
        why=$(grep -E 'FAILED|rror' "$WORK/last.err" | tail -n1)
        [ -n "$why" ] || why=$(tail -n1 "$WORK/last.err")
        [ "$rc" -eq 124 ] && why="killed after RUN_TIMEOUT=$RUN_TIMEOUT s"
        printf '%s\t%s\t%s\t%s\t%s\n' "$r" "$p" "$rc" "$*" "$why" >>"$FAIL"
    fi
}

# The lease programs share one throwaway PostgreSQL cluster (started here,
# stopped by its watchdog when this script exits) instead of one each.
if [[ " ${PROGRAMS[*]} " == *" libpq "* ]]; then
    PG_DIR=$(mktemp -d /tmp/ursa-suite-pg.XXXXXX)
    if URSA_PG=$(bash "$ROOT/tests/dist/pg_cluster.sh" start "$PG_DIR" $$ 2>>"$WORK/run.log"); then
        export URSA_PG
    else
        log "WARNING: no PostgreSQL cluster (log: $WORK/run.log): each lease program starts its own"
    fi
fi

log "running $ROUNDS interleaved rounds at S=$S (stderr of the programs: $WORK/run.log)"
for ((r = 0; r < ROUNDS; r++)); do
    n=${#PROGRAMS[@]}
    for ((i = 0; i < n; i++)); do
        run_one $((r + 1)) "${PROGRAMS[(i + r) % n]}" "$S"
    done
done
T_RUN=$(date +%s)

# ------------------------------------------------------------ 4. mem_1m_tasks
log "mem_1m_tasks: once per program, each in a fresh process"
for p in "${MEM1M[@]}"; do
    [[ " ${PROGRAMS[*]} " == *" $p "* ]] && run_one 1 "$p" "$S" mem_1m_tasks
done
T_MEM=$(date +%s)
LOAD_AFTER=$(load1)

# ------------------------------------------------------------ 5. callgrind
INSTR=$WORK/instr.txt
INSTR_OLD=$WORK/instr-before.txt
: >"$INSTR"
: >"$INSTR_OLD"
if [ "$CALLGRIND" = 1 ]; then
    if command -v valgrind >/dev/null 2>&1; then
        log "counting ursa's instructions per op under callgrind (bench/callgrind.sh)"
        bash "$ROOT/bench/callgrind.sh" -b "$URSA_BIN" >"$INSTR" 2>"$WORK/callgrind.log" ||
            log "WARNING: callgrind.sh failed for some workloads (log: $WORK/callgrind.log)"
        if [ -n "${INSTR_BEFORE:-}" ]; then
            log "counting the baseline's instructions ($INSTR_BEFORE)"
            bash "$ROOT/bench/callgrind.sh" -b "$INSTR_BEFORE" >"$INSTR_OLD" \
                2>"$WORK/callgrind-before.log" ||
                log "WARNING: callgrind.sh failed on the baseline (log: $WORK/callgrind-before.log)"
        fi
        INSTR_STATUS=ok
    else
        INSTR_STATUS="valgrind is not installed"
    fi
else
    INSTR_STATUS="skipped (--no-callgrind)"
fi
T_CG=$(date +%s)

# ------------------------------------------------------------ 6. report
ver() { "$@" 2>/dev/null | head -n1; }
GO=/usr/lib/go/bin/go; [ -x "$GO" ] || GO=go
# Which compiler built each peer binary (written by peers/build.sh).
variants=()
for p in "${PROGRAMS[@]}"; do
    bin=${CMD[$p]%% *}
    desc=$(awk -v b="${bin##*/}" '$1 == b { $1 = ""; sub(/^ /, ""); print }' "$PEERS_OUT/toolchains.txt" 2>/dev/null)
    case $p in fiber@spin) desc="work_stealing(2), idle threads spin (its default)" ;;
        fiber@suspend) desc="work_stealing(2, suspend=true), idle threads sleep" ;; esac
    [ -n "$desc" ] && variants+=(--variant "$p=$desc")
done
export SUITE_DATE=$(date -u '+%Y-%m-%d %H:%M UTC')
export SUITE_CPU=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
export SUITE_CORES=$(nproc)
export SUITE_MEM=$(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
export SUITE_KERNEL=$(uname -r)
export SUITE_GCC=$(ver gcc --version)
export SUITE_CMAKE_BT=$(grep -m1 '^CMAKE_BUILD_TYPE:' "$URSA_BUILD/CMakeCache.txt" 2>/dev/null | cut -d= -f2)
export SUITE_TOKIO=$(awk '/^name = "tokio"$/ { getline; gsub(/"/, "", $3); print $3; exit }' bench/peers/tokio/Cargo.lock 2>/dev/null)
export SUITE_R2D2=$(awk '/^name = "r2d2"$/ { getline; gsub(/"/, "", $3); print $3; exit }' bench/peers/r2d2/Cargo.lock 2>/dev/null)
export SUITE_GO=$(ver "$GO" version)
export SUITE_BOOST=$(awk '/define BOOST_LIB_VERSION/ { gsub(/"/, "", $3); gsub(/_/, ".", $3); print $3 }' /usr/include/boost/version.hpp 2>/dev/null)
export SUITE_BOOST_PKG=$(dpkg-query -W -f='${Version}' libboost-fiber-dev 2>/dev/null)
export SUITE_GXX=$(ver g++ --version)
export SUITE_JAVA=$(java -version 2>&1 | head -n1)
export SUITE_HIKARI=$(dpkg-query -W -f='${Version}' libhikaricp-java 2>/dev/null)
export SUITE_INSTR_STATUS=$INSTR_STATUS
export SUITE_LOAD="$LOAD_BEFORE $LOAD_MAX $LOAD_AFTER"
export SUITE_TIMES="$((T_BUILD - T0)) $((T_RUN - T_BUILD)) $((T_MEM - T_RUN)) $((T_CG - T_MEM))"

python3 "$SUITE/report.py" --raw "$RAW" --failures "$FAIL" --instr "$INSTR" \
    --instr-before "$INSTR_OLD" --instr-before-label "${INSTR_BEFORE_LABEL:-before}" "${variants[@]}" \
    --workloads "${WORKLOADS:-}" --scale "$S" --rounds "$ROUNDS" \
    --md "$DOCS/results.md" --plotdir "$WORK" || { log "ERROR: report.py failed"; exit 1; }

if command -v gnuplot >/dev/null 2>&1; then
    gnuplot "$WORK/results.gp" 2>"$WORK/gnuplot.log" && mv "$WORK/results.png" "$DOCS/results.png" ||
        { cat "$WORK/gnuplot.log" >&2; log "WARNING: gnuplot failed, no chart"; }
else
    log "WARNING: gnuplot missing, no chart"
fi

T_END=$(date +%s)
log "done in $((T_END - T0)) s (build $((T_BUILD - T0)) s, rounds $((T_RUN - T_BUILD)) s," \
    "mem_1m_tasks $((T_MEM - T_RUN)) s, callgrind $((T_CG - T_MEM)) s): $DOCS/results.md $DOCS/results.png"
[ -s "$FAIL" ] && { log "WARNING: some runs failed:"; tr '\t' ' ' <"$FAIL" >&2; exit 1; }
exit 0
