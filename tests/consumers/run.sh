#!/usr/bin/env bash
# Builds and runs the three consumer projects against the build in $1:
# find_package after `cmake --install`, pkg-config, and add_subdirectory.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
build="$(cd "$1" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
prefix="$work/prefix"
cmake --install "$build" --prefix "$prefix" >/dev/null
libdir="$(ls -d "$prefix"/lib*/ | head -1)"

echo "consumer 1/3: find_package(ursa)"
cmake -S "$here/find_package" -B "$work/fp" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$work/fp" >/dev/null
LD_LIBRARY_PATH="$libdir" "$work/fp/consumer"
"$work/fp/consumer_static"

echo "consumer 2/3: pkg-config --cflags --libs ursa"
export PKG_CONFIG_PATH="$libdir/pkgconfig"
# shellcheck disable=SC2046
cc -std=c11 -Wall -Wextra -Werror -o "$work/pc" "$here/consumer.c" $(pkg-config --cflags --libs ursa)
LD_LIBRARY_PATH="$libdir" "$work/pc"
# shellcheck disable=SC2046
cc -std=c11 -o "$work/pc_static" "$here/consumer.c" $(pkg-config --cflags ursa) \
  "$libdir/libursa.a" $(pkg-config --libs --static ursa | sed 's/-lursa//')
"$work/pc_static"

echo "consumer 3/3: add_subdirectory(ursa)"
cmake -S "$here/add_subdirectory" -B "$work/as" -DURSA_SOURCE_DIR="$root" >/dev/null
cmake --build "$work/as" >/dev/null
"$work/as/consumer"
if [ -f "$libdir/pkgconfig/ursa-lease.pc" ]; then # built with URSA_WITH_POSTGRES
  bash "$root/tests/dist/consumer/run.sh" "$prefix" "$libdir" "$work"
fi
echo "consumers: 3 passed, 0 failed"
