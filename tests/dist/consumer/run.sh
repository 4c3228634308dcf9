#!/usr/bin/env bash
# The lease library as installed: find_package(ursa COMPONENTS lease)
# (shared and static) and pkg-config ursa-lease. Called by
# tests/consumers/run.sh with the install prefix, its libdir and a scratch
# directory.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck disable=SC2034 # prefix: find_package_consumer uses it
prefix="$1" libdir="$2" work="$3"
# shellcheck source=SCRIPTDIR/../../consumers/find_package.sh
. "$here/../../consumers/find_package.sh"

echo "consumer lease 1/2: find_package(ursa COMPONENTS lease)"
find_package_consumer "$here" lease lease_consumer

echo "consumer lease 2/2: pkg-config --cflags --libs ursa-lease"
export PKG_CONFIG_PATH="$libdir/pkgconfig"
# shellcheck disable=SC2046
cc -std=c11 -Wall -Wextra -Werror -o "$work/lease_pc" "$here/lease_consumer.c" \
  $(pkg-config --cflags --libs ursa-lease)
LD_LIBRARY_PATH="$libdir" "$work/lease_pc"
