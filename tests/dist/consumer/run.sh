#!/usr/bin/env bash
# The lease library as installed: find_package(ursa COMPONENTS lease)
# (shared and static) and pkg-config ursa-lease. Called by
# tests/consumers/run.sh with the install prefix, its libdir and a scratch
# directory.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
prefix="$1" libdir="$2" work="$3"

echo "consumer lease 1/2: find_package(ursa COMPONENTS lease)"
cmake -S "$here" -B "$work/lease" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$work/lease" >/dev/null
LD_LIBRARY_PATH="$libdir" "$work/lease/lease_consumer"
"$work/lease/lease_consumer_static"

echo "consumer lease 2/2: pkg-config --cflags --libs ursa-lease"
export PKG_CONFIG_PATH="$libdir/pkgconfig"
# shellcheck disable=SC2046
cc -std=c11 -Wall -Wextra -Werror -o "$work/lease_pc" "$here/lease_consumer.c" \
  $(pkg-config --cflags --libs ursa-lease)
LD_LIBRARY_PATH="$libdir" "$work/lease_pc"
