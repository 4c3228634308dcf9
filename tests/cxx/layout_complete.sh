#!/usr/bin/env bash
# Fails when a public header (include/ursa/, detail/ too) declares an
# ursa_*_t type that tests/cxx/layout_types.h lists neither as a layout
# nor as opaque, or when the list names a type no header declares.
# Usage: layout_complete.sh INCLUDE_DIR LAYOUT_TYPES_H
set -euo pipefail
inc=$1 list=$2
declared=$(cat "$inc"/ursa/*.h "$inc"/ursa/detail/*.h | tr '\n' ' ' |
  grep -oE 'typedef (struct|enum|union) [a-z_0-9]+ ursa_[a-z0-9_]+_t *;|\} *ursa_[a-z0-9_]+_t *;|typedef [a-z_0-9]+ ursa_[a-z0-9_]+_t *;' |
  grep -oE 'ursa_[a-z0-9_]+_t *;$' | tr -d ' ;' | sort -u)
listed=$(grep -oE 'X\(ursa_[a-z0-9_]+_t\)' "$list" | sed 's/^X(//; s/)$//' | sort -u)
missing=$(comm -23 <(echo "$declared") <(echo "$listed"))
stale=$(comm -13 <(echo "$declared") <(echo "$listed"))
if [ -n "$missing" ] || [ -n "$stale" ]; then
  [ -n "$missing" ] && echo "public types missing from $list:" $missing
  [ -n "$stale" ] && echo "types in $list that no header declares:" $stale
  exit 1
fi
echo "all $(echo "$declared" | wc -l) public types are listed"
