#!/usr/bin/env bash
# ursa benchmark suite: ursa vs Tokio, Go and Boost.Fiber, one command.
#
#   bash bench/run-suite.sh [S] [ROUNDS]      (defaults: S=1, ROUNDS=5)
#
# 1. installs missing Debian packages (ursa's via .ci/deps, gnuplot-nox here,
#    the peers' via bench/peers/build.sh); apt-get only if something is missing
# 2. builds ursa_bench (Release) in build/bench and the peers in build/peers
# 3. runs ROUNDS interleaved rounds; round r runs ursa, tokio, go, fiber
#    rotated by r, so no runtime always goes first
# 4. writes docs/bench/results.md (medians, spread, ratio to best peer) and
# 5. docs/bench/results.png (gnuplot grouped bars, log y)
# 6. records instructions/op for ursa with `perf stat` where the PMU works
#
# Raw lines (`round runtime name value`) and logs stay in build/suite/.
# Environment: WORKLOADS=path/to/WORKLOADS.md (default: shared/WORKLOADS.md
# in the repo, else /work/shared/WORKLOADS.md), SKIP_BUILD=1 to reuse binaries.
set -u -o pipefail

S=${1:-1}
ROUNDS=${2:-5}
case "$ROUNDS" in '' | *[!0-9]* | 0) echo "run-suite: ROUNDS must be a positive integer" >&2; exit 2 ;; esac
# The peers take an integer S >= 1 only.
case "$S" in '' | *[!0-9]* | 0) echo "run-suite: S must be a positive integer (the peers accept no fractions)" >&2; exit 2 ;; esac

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
SUITE=$ROOT/bench/suite
WORK=$ROOT/build/suite
PEERS_OUT=$ROOT/build/peers
URSA_BUILD=$ROOT/build/bench
DOCS=$ROOT/docs/bench
mkdir -p "$WORK" "$DOCS"

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
    if ! dpkg -s gnuplot-nox >/dev/null 2>&1 && ! command -v gnuplot >/dev/null 2>&1; then
        log "installing gnuplot-nox"
        SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
        export DEBIAN_FRONTEND=noninteractive
        $SUDO apt-get update -qq >&2 && $SUDO apt-get install -y -qq gnuplot-nox >/dev/null ||
            log "WARNING: could not install gnuplot-nox; no chart"
    fi

    # -------------------------------------------------------- 2. build
    log "building ursa_bench (Release) in $URSA_BUILD"
    { cmake -S . -B "$URSA_BUILD" -DCMAKE_BUILD_TYPE=Release -DURSA_BUILD_TESTS=OFF &&
        cmake --build "$URSA_BUILD" --target ursa_bench -j "$(nproc)"; } >"$WORK/build-ursa.log" 2>&1 ||
        { tail -n 30 "$WORK/build-ursa.log" >&2; log "ERROR: ursa_bench build failed (log: $WORK/build-ursa.log)"; exit 1; }
    log "building peers in $PEERS_OUT (installs their packages if missing)"
    bash "$ROOT/bench/peers/build.sh" "$PEERS_OUT" >"$WORK/build-peers.log" 2>&1 ||
        log "WARNING: no peer built (log: $WORK/build-peers.log)"
    grep -E 'WARNING|not built' "$WORK/build-peers.log" >&2
fi

URSA_BIN=$(find "$URSA_BUILD" -type f -name ursa_bench -perm -u+x 2>/dev/null | head -n1)
[ -n "$URSA_BIN" ] || { log "ERROR: ursa_bench not found under $URSA_BUILD"; exit 1; }
declare -A BIN=([ursa]=$URSA_BIN [tokio]=$PEERS_OUT/tokio-bench [go]=$PEERS_OUT/go-bench [fiber]=$PEERS_OUT/fiber-bench)
RUNTIMES=(ursa tokio go fiber)
T_BUILD=$(date +%s)

# ------------------------------------------------------------ 3. rounds
RAW=$WORK/raw.txt
FAIL=$WORK/failures.txt
: >"$RAW"; : >"$FAIL"; : >"$WORK/run.log"
# 1-minute load average: at the start, the highest seen when a program
# starts, and at the end (other processes on the machine skew the numbers).
load1() { cut -d' ' -f1 /proc/loadavg; }
LOAD_BEFORE=$(load1); LOAD_MAX=$LOAD_BEFORE
log "running $ROUNDS interleaved rounds at S=$S (stderr of the programs: $WORK/run.log)"
for ((r = 0; r < ROUNDS; r++)); do
    order=()
    for ((i = 0; i < ${#RUNTIMES[@]}; i++)); do
        order+=("${RUNTIMES[(i + r) % ${#RUNTIMES[@]}]}")
    done
    for rt in "${order[@]}"; do
        bin=${BIN[$rt]}
        if [ ! -x "$bin" ]; then
            log "round $((r + 1)): $rt not built, skipped"
            continue
        fi
        t1=$(date +%s.%N)
        l=$(load1); LOAD_MAX=$(awk -v a="$LOAD_MAX" -v b="$l" 'BEGIN{print (b > a ? b : a)}')
        echo "=== round $((r + 1)) $rt" >>"$WORK/run.log"
        "$bin" "$S" 2>>"$WORK/run.log" | awk -v r="$((r + 1))" -v rt="$rt" 'NF == 2 { print r, rt, $1, $2; fflush() }' >>"$RAW"
        rc=${PIPESTATUS[0]}
        t2=$(date +%s.%N)
        log "round $((r + 1))/$ROUNDS: $rt $(awk -v a="$t1" -v b="$t2" 'BEGIN{printf "%.1f", b-a}') s, exit $rc"
        [ "$rc" -eq 0 ] || echo "$((r + 1)) $rt $rc" >>"$FAIL"
    done
done
T_RUN=$(date +%s)
LOAD_AFTER=$(load1)

# ------------------------------------------------------------ 6. perf
PERF=$WORK/perf.txt
: >"$PERF"
PERF_STATUS="perf not installed"
if command -v perf >/dev/null 2>&1; then
    probe=$(perf stat -x, -e instructions true 2>&1 >/dev/null | grep instructions | head -n1)
    if [[ "$probe" =~ ^[0-9]+, ]]; then
        PERF_STATUS=ok
        log "perf works: counting ursa's instructions per workload (one run each)"
        for name in $(awk '$2 == "ursa" { print $3 }' "$RAW" | awk '!seen[$0]++'); do
            out=$(perf stat -x, -e instructions:u -- "$URSA_BIN" "$S" "$name" 2>&1 >/dev/null | grep instructions | head -n1)
            [[ "$out" =~ ^[0-9]+, ]] && echo "$name ${out%%,*}" >>"$PERF"
        done
    else
        PERF_STATUS="\`perf stat -e instructions\` reports: ${probe%%,*} (no PMU access on this machine)"
        log "perf: instructions not countable here (${probe%%,*}); skipping instructions/op"
    fi
fi

# ------------------------------------------------------------ 4/5. report
ver() { "$@" 2>/dev/null | head -n1; }
GO=/usr/lib/go/bin/go; [ -x "$GO" ] || GO=go
RUSTC=/usr/bin/rustc; [ -x "$RUSTC" ] || RUSTC=rustc
CARGO=/usr/bin/cargo; [ -x "$CARGO" ] || CARGO=cargo
export SUITE_DATE=$(date -u '+%Y-%m-%d %H:%M UTC')
export SUITE_CPU=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
export SUITE_CORES=$(nproc)
export SUITE_MEM=$(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
export SUITE_KERNEL=$(uname -r)
export SUITE_GCC=$(ver gcc --version)
export SUITE_CMAKE_BT=$(grep -m1 '^CMAKE_BUILD_TYPE:' "$URSA_BUILD/CMakeCache.txt" 2>/dev/null | cut -d= -f2)
export SUITE_RUSTC=$(ver "$RUSTC" -V)
export SUITE_CARGO=$(ver "$CARGO" -V)
export SUITE_TOKIO=$(awk '/^name = "tokio"$/ { getline; gsub(/"/, "", $3); print $3; exit }' bench/peers/tokio/Cargo.lock 2>/dev/null)
export SUITE_GO=$(ver "$GO" version)
export SUITE_BOOST=$(awk '/define BOOST_LIB_VERSION/ { gsub(/"/, "", $3); gsub(/_/, ".", $3); print $3 }' /usr/include/boost/version.hpp 2>/dev/null)
export SUITE_BOOST_PKG=$(dpkg-query -W -f='${Version}' libboost-fiber-dev 2>/dev/null)
export SUITE_GXX=$(ver g++ --version)
export SUITE_PERF_STATUS=$PERF_STATUS
export SUITE_LOAD="$LOAD_BEFORE $LOAD_MAX $LOAD_AFTER"
export SUITE_BUILD_S=$((T_BUILD - T0)) SUITE_RUN_S=$((T_RUN - T_BUILD))

python3 "$SUITE/report.py" --raw "$RAW" --failures "$FAIL" --perf "$PERF" \
    --workloads "${WORKLOADS:-}" --scale "$S" --rounds "$ROUNDS" \
    --md "$DOCS/results.md" --plotdir "$WORK" || { log "ERROR: report.py failed"; exit 1; }

if command -v gnuplot >/dev/null 2>&1; then
    gnuplot "$WORK/results.gp" 2>"$WORK/gnuplot.log" && mv "$WORK/results.png" "$DOCS/results.png" ||
        { cat "$WORK/gnuplot.log" >&2; log "WARNING: gnuplot failed, no chart"; }
else
    log "WARNING: gnuplot missing, no chart"
fi

T_END=$(date +%s)
log "done in $((T_END - T0)) s (build $((T_BUILD - T0)) s, rounds $((T_RUN - T_BUILD)) s): $DOCS/results.md $DOCS/results.png"
[ -s "$FAIL" ] && { log "WARNING: some runs failed:"; cat "$FAIL" >&2; exit 1; }
exit 0
