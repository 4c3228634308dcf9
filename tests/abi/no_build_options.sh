#!/usr/bin/env bash
# Fails when a public header tests a build option (a macro of ursa/config.h,
# e.g. URSA_LOCK_METRICS) in #if/#ifdef: a build option must not change a
# public layout or declaration under the same SONAME (docs/abi.md).
# Usage: no_build_options.sh INCLUDE_DIR CONFIG_H_IN
set -euo pipefail
inc=$1 config=$2
options=$(sed -nE 's/^#define (URSA_[A-Z0-9_]+) @.*/\1/p' "$config" | paste -sd'|')
[ -n "$options" ] || { echo "no build options found in $config"; exit 1; }
if grep -rnE "^[[:space:]]*#[[:space:]]*(if|ifdef|ifndef|elif).*\\b($options)\\b" \
     "$inc"/ursa.h "$inc"/ursa/; then
  echo "public headers above depend on a build option ($options)"
  exit 1
fi
echo "no public header depends on a build option ($options)"
