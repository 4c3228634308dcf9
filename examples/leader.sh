#!/usr/bin/env bash
# Runs examples/leader.c: a throwaway PostgreSQL (tests/dist/pg_cluster.sh),
# three leader processes for SECONDS (default 10), the heartbeat table at
# the end, and the cluster stopped and removed whatever happens.
# Usage: bash examples/leader.sh [SECONDS]   (BUILD_DIR: default build/demo)
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-10}"
bash .ci/deps
dir="${BUILD_DIR:-build/demo}"
cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Release -DURSA_BUILD_TESTS=OFF -DURSA_BUILD_BENCH=OFF >/dev/null
cmake --build "$dir" -j"$(nproc)" --target ursa_leader >/dev/null
pg="$(mktemp -d /tmp/ursa-pg.XXXXXX)"
trap 'bash tests/dist/pg_cluster.sh stop "$pg"' EXIT
conninfo="$(bash tests/dist/pg_cluster.sh start "$pg" $$)"
for i in 1 2 3; do
  "$dir/examples/ursa_leader" "$conninfo" leader-demo "$secs" 2 &
done
wait
psql "$conninfo" -c "SELECT name, owner <> '' AS held, fence FROM ursa_lease" \
                 -c "SELECT * FROM leader_heartbeat" 2>/dev/null || true
