#!/usr/bin/env bash
# Checks that a shared library exports exactly the symbols its linker
# version script lists, each under a version node of that script, that
# the base node is named for the ABI series, and that the static library
# has no other symbol of default visibility (an URSA_API function missing
# from the script would be hidden in the .so without this).
# Usage: check_exports.sh LIB.so LIB.a SCRIPT.map BASE_NODE
set -euo pipefail
so=$1 archive=$2 map=$3 node=$4
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The script: names between "global:" and "local:", one "name;" a line.
sed -n '/global:/,/local:/p' "$map" | grep -oE '^ *[A-Za-z_][A-Za-z0-9_]*;' |
  tr -d ' ;' | sort >"$work/listed"
# Its version nodes ("NAME {" at the start of a line).
grep -oE '^[A-Z][A-Z0-9_.]* *\{' "$map" | tr -d ' {' | sort >"$work/nodes"
# The .so: defined dynamic symbols (type A are the version nodes).
nm -D --defined-only --with-symbol-versions "$so" | awk '$2 != "A" {print $3}' >"$work/dyn"
sed 's/@.*//' "$work/dyn" | sort >"$work/exported"
# The archive: global, default-visibility, defined symbols, but ASan's ODR
# indicators (__odr_asan.NAME, one beside each exported variable in an
# ASan build: the version script keeps them out of the .so).
readelf -sW "$archive" | awk '$5 == "GLOBAL" && $6 == "DEFAULT" && $7 != "UND" {print $8}' |
  grep -v '^__odr_asan[.]' | sort -u >"$work/default"

rc=0
if ! grep -qx "$node" "$work/nodes"; then
  echo "$map: no version node $node (the ABI series' base node)"
  rc=1
fi
if ! diff -u "$work/listed" "$work/exported" >"$work/d1"; then
  echo "$so exports other symbols than $map lists (- listed only, + exported only):"
  grep -E '^[-+][^-+]' "$work/d1" || true
  rc=1
fi
if ! diff -u "$work/listed" "$work/default" >"$work/d2"; then
  echo "$archive has other public (default-visibility) symbols than $map lists" \
    "(- listed only, + public only):"
  grep -E '^[-+][^-+]' "$work/d2" || true
  rc=1
fi
while read -r sym; do
  ver=${sym#*@@}
  if [ "$ver" = "$sym" ] || ! grep -qx "$ver" "$work/nodes"; then
    echo "$so: $sym has no version node of $map"
    rc=1
  fi
done <"$work/dyn"
[ $rc = 0 ] && echo "$so: exports the $(wc -l <"$work/listed") symbols of $map, under $(tr '\n' ' ' <"$work/nodes")"
exit $rc
