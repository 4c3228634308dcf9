#!/usr/bin/env bash
# Builds and runs the consumer projects against the build in $1:
# find_package after `cmake --install`, pkg-config, add_subdirectory, and
# a C++ program (find_package, and pkg-config as C++20).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
build="$(cd "$1" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
prefix="$work/prefix"
cmake --install "$build" --prefix "$prefix" >/dev/null
libdir="$(ls -d "$prefix"/lib*/ | head -1)"
# shellcheck source=SCRIPTDIR/find_package.sh
. "$here/find_package.sh"

echo "consumer 1/4: find_package(ursa)"
find_package_consumer "$here/find_package" fp consumer

echo "consumer 2/4: pkg-config --cflags --libs ursa"
export PKG_CONFIG_PATH="$libdir/pkgconfig"
# shellcheck disable=SC2046
cc -std=c11 -Wall -Wextra -Werror -o "$work/pc" "$here/consumer.c" $(pkg-config --cflags --libs ursa)
LD_LIBRARY_PATH="$libdir" "$work/pc"
# shellcheck disable=SC2046
cc -std=c11 -o "$work/pc_static" "$here/consumer.c" $(pkg-config --cflags ursa) \
  "$libdir/libursa.a" $(pkg-config --libs --static ursa | sed 's/-lursa//')
"$work/pc_static"

echo "consumer 3/4: add_subdirectory(ursa)"
cmake -S "$here/add_subdirectory" -B "$work/as" -DURSA_SOURCE_DIR="$root" >/dev/null
cmake --build "$work/as" >/dev/null
"$work/as/consumer"

echo "consumer 4/4: C++: find_package(ursa) as C++17, pkg-config as C++20"
find_package_consumer "$here/cxx" cxx consumer_cxx
# shellcheck disable=SC2046
"${CXX:-c++}" -std=c++20 -Wall -Wextra -Wpedantic -Werror -o "$work/pc_cxx" \
  "$here/cxx/consumer.cpp" $(pkg-config --cflags --libs ursa)
LD_LIBRARY_PATH="$libdir" "$work/pc_cxx"

if [ -f "$libdir/pkgconfig/ursa-lease.pc" ]; then # built with URSA_WITH_POSTGRES
  bash "$root/tests/dist/consumer/run.sh" "$prefix" "$libdir" "$work"
fi
echo "consumers: 4 passed, 0 failed"
