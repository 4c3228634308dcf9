#!/usr/bin/env bash
# Instructions per operation of ursa_bench workloads, counted by callgrind
# (repeatable whatever the machine's load; no PMU needed).
#
#   bench/callgrind.sh [-b BIN] [-s SCALE] [NAME...]
#
# NAME...  workloads (default: every single-worker time workload, i.e. the
#          names `ursa_bench --list` prints that start with neither mt2_,
#          oversub_ nor mem_, and not the count pool_spike_creates)
# -b BIN   the ursa_bench binary (default: build/bench/bench/ursa_bench, the
#          one run-suite.sh builds)
# -s SCALE the smaller of the two scales (default 0.002)
#
# Each workload runs twice under `valgrind --tool=callgrind`, at SCALE and at
# 2*SCALE, with URSA_BENCH_OPS=1 (ursa_bench then prints its op count on
# stderr and skips untimed warm-up rounds). instr/op = (I2 - I1) / (ops2 -
# ops1): runtime start-up, io_uring set-up and exit cancel out. If both
# scales give the same op count (a workload with few iterations), both are
# doubled until they differ. Output: `name instr_per_op` on stdout (the
# counts behind it on stderr). Exits 1 if a run failed.
set -u -o pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=$ROOT/build/bench/bench/ursa_bench
SCALE=0.002
while getopts b:s: opt; do
    case $opt in
        b) BIN=$OPTARG ;;
        s) SCALE=$OPTARG ;;
        *) sed -n '2,20p' "$0" >&2; exit 2 ;;
    esac
done
shift $((OPTIND - 1))
[ -x "$BIN" ] || { echo "callgrind.sh: no ursa_bench at $BIN (-b BIN)" >&2; exit 2; }
command -v valgrind >/dev/null || { echo "callgrind.sh: valgrind is not installed" >&2; exit 2; }

names=("$@")
if ((${#names[@]} == 0)); then
    # (pool_spike_creates prints a count, not a time per op)
    mapfile -t names < <("$BIN" --list | awk '{ print $1 }' |
        grep -Ev '^(mt2_|oversub_|mem_|pool_spike_creates$)')
fi

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# count NAME SCALE -> "instructions ops" (empty on failure)
count() {
    local log=$TMP/vg.log err=$TMP/err.txt
    if ! URSA_BENCH_OPS=1 valgrind --tool=callgrind --callgrind-out-file=/dev/null \
        --log-file="$log" "$BIN" "$2" "$1" >/dev/null 2>"$err"; then
        echo "callgrind.sh: $1 at S=$2 failed:" >&2
        tail -n 5 "$err" "$log" >&2
        return 1
    fi
    local ir ops
    ir=$(awk '/Collected :/ { print $NF }' "$log")
    ops=$(awk -v n="$1" '$1 == "ops" && $2 == n { print $3 }' "$err")
    [ -n "$ir" ] && [ -n "$ops" ] || { echo "callgrind.sh: $1: no count (ir='$ir' ops='$ops')" >&2; return 1; }
    echo "$ir $ops"
}

rc=0
for name in "${names[@]}"; do
    s1=$SCALE
    while :; do
        s2=$(awk -v s="$s1" 'BEGIN { printf "%.6g", 2 * s }')
        if ! a=$(count "$name" "$s1") || ! b=$(count "$name" "$s2"); then
            rc=1
            continue 2
        fi
        read -r i1 o1 <<<"$a"
        read -r i2 o2 <<<"$b"
        [ "$o2" -gt "$o1" ] && break
        s1=$s2
    done
    per=$(awk -v i1="$i1" -v i2="$i2" -v o1="$o1" -v o2="$o2" 'BEGIN { printf "%.1f", (i2 - i1) / (o2 - o1) }')
    echo "callgrind.sh: $name: S=$s1: $i1 instr, $o1 ops; S=$s2: $i2 instr, $o2 ops" >&2
    echo "$name $per"
done
exit $rc
