#!/usr/bin/env bash
# Run the built peer benchmarks and print `program name value` lines.
#
#   bench/peers/run.sh OUTDIR [S]
#
# OUTDIR is the directory given to build.sh; S is the scale factor (default 1).
# Programs: tokio-bench.<toolchain>, go-bench, fiber-bench (then
# `fiber-bench --suspend`, the mt2 rows again), hikari-bench, gosql-bench,
# r2d2-bench.<toolchain>, whichever were built. stdout: `program name
# value`; diagnostics on stderr. The exit status is non-zero if a program
# failed (a failed self-check) or none ran. (run-suite.sh does this, plus
# rounds, mem_1m_tasks and the report.)
set -u

if [ $# -lt 1 ]; then
    echo "usage: $0 OUTDIR [S]" >&2
    exit 2
fi
OUT=$1
S=${2:-1}

ran=0
bad=0
run() { # LABEL BIN ARGS...
    local label=$1 bin=$2 start end rc
    shift 2
    echo "run.sh: running $label (S=$S)" >&2
    start=$(date +%s.%N)
    "$bin" "$@" "$S" | while IFS= read -r line; do printf '%s %s\n' "$label" "$line"; done
    rc=${PIPESTATUS[0]}
    end=$(date +%s.%N)
    echo "run.sh: $label finished in $(awk -v a="$start" -v b="$end" 'BEGIN{printf "%.1f", b-a}') s, exit $rc" >&2
    ran=$((ran + 1))
    if [ "$rc" -ne 0 ]; then
        echo "run.sh: ERROR: $label exited with status $rc" >&2
        bad=1
    fi
}
for bin in "$OUT"/tokio-bench.* "$OUT"/go-bench "$OUT"/fiber-bench "$OUT"/hikari-bench \
    "$OUT"/gosql-bench "$OUT"/r2d2-bench.*; do
    [ -x "$bin" ] || continue
    base=${bin##*/}
    label=${base%%-bench*}; [ "$label" = hikari ] && label=hikaricp
    case $base in *.*) label=$label@${base#*.} ;; esac
    run "$label" "$bin"
    [ "$base" = fiber-bench ] && run fiber@suspend "$bin" --suspend
done
[ "$ran" -gt 0 ] || { echo "run.sh: no peer binaries in $OUT" >&2; exit 1; }
exit "$bad"
