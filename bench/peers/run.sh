#!/usr/bin/env bash
# Run the built peer benchmarks and print `runtime name value` lines.
#
#   bench/peers/run.sh OUTDIR [S]
#
# OUTDIR is the directory given to build.sh; S is the scale factor (default 1).
# stdout: `tokio name ns_per_op`, `go name ns_per_op`, `fiber name ns_per_op`
# (memory workloads: bytes). Diagnostics go to stderr. A missing binary is
# skipped with a warning; the exit status is non-zero if a peer failed (a
# failed self-check) or none ran.
set -u

if [ $# -lt 1 ]; then
    echo "usage: $0 OUTDIR [S]" >&2
    exit 2
fi
OUT=$1
S=${2:-1}

ran=0
bad=0
for rt in tokio go fiber; do
    bin="$OUT/$rt-bench"
    if [ ! -x "$bin" ]; then
        echo "run.sh: WARNING: $bin not built, skipping $rt" >&2
        continue
    fi
    echo "run.sh: running $rt (S=$S)" >&2
    start=$(date +%s.%N)
    "$bin" "$S" | while IFS= read -r line; do printf '%s %s\n' "$rt" "$line"; done
    rc=${PIPESTATUS[0]}
    end=$(date +%s.%N)
    echo "run.sh: $rt finished in $(awk -v a="$start" -v b="$end" 'BEGIN{printf "%.1f", b-a}') s, exit $rc" >&2
    ran=$((ran + 1))
    if [ "$rc" -ne 0 ]; then
        echo "run.sh: ERROR: $rt exited with status $rc" >&2
        bad=1
    fi
done
[ "$ran" -gt 0 ] || { echo "run.sh: no peer binaries in $OUT" >&2; exit 1; }
exit "$bad"
