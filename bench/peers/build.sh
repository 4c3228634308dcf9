#!/usr/bin/env bash
# Build the peer benchmarks (Tokio, Go, Boost.Fiber) offline.
#
#   bench/peers/build.sh [OUTDIR]      (default: bench/peers/out)
#
# Installs the Debian packages it needs if they are missing (apt-get, the only
# network access), then builds tokio-bench, go-bench and fiber-bench into
# OUTDIR. A peer that fails to build is reported and skipped; the script only
# fails if none could be built.
set -u

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
OUT=${1:-$HERE/out}
mkdir -p "$OUT" || { echo "build.sh: cannot create $OUT" >&2; exit 1; }
OUT=$(cd "$OUT" && pwd)

warn() { echo "build.sh: WARNING: $*" >&2; }
info() { echo "build.sh: $*" >&2; }

# ------------------------------------------------------------ packages
PKGS=(librust-tokio-dev cargo golang-go libboost-fiber-dev g++ make)
installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}
missing=()
for p in "${PKGS[@]}"; do
    installed "$p" || missing+=("$p")
done
if ((${#missing[@]})); then
    info "installing missing Debian packages: ${missing[*]}"
    SUDO=
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else warn "not root and no sudo"; fi
    fi
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -q >&2 || warn "apt-get update failed"
    $SUDO apt-get install -y -q "${missing[@]}" >&2 || warn "apt-get install failed for some of: ${missing[*]}"
fi

built=()
failed=()

# ------------------------------------------------------------ tokio
build_tokio() {
    local cargo rustc_env=()
    if [ -x /usr/bin/cargo ]; then
        cargo=/usr/bin/cargo
        # Debian's cargo with Debian's rustc, even if rustup's proxies come
        # first in PATH.
        [ -x /usr/bin/rustc ] && rustc_env=(RUSTC=/usr/bin/rustc)
    elif command -v cargo >/dev/null 2>&1; then
        cargo=$(command -v cargo)
        warn "Debian cargo not found, using $cargo (still offline, Debian crate sources)"
    else
        warn "no cargo found"; return 1
    fi
    local reg
    reg=$(ls -d /usr/share/cargo/registry/tokio-1.* 2>/dev/null | head -n1)
    [ -n "$reg" ] || { warn "no tokio sources in /usr/share/cargo/registry (librust-tokio-dev)"; return 1; }
    info "tokio: building with $cargo against ${reg##*/}"
    # .cargo/config.toml in the project dir points crates-io at the Debian
    # directory source and sets net.offline; --offline makes sure.
    (cd "$HERE/tokio" &&
        env "${rustc_env[@]}" CARGO_TARGET_DIR="$OUT/tokio-target" CARGO_NET_OFFLINE=true \
            "$cargo" build --release --offline >&2) || return 1
    cp "$OUT/tokio-target/release/tokio-bench" "$OUT/tokio-bench"
}

# ------------------------------------------------------------ go
build_go() {
    local gobin
    if [ -x /usr/lib/go/bin/go ]; then gobin=/usr/lib/go/bin/go
    elif command -v go >/dev/null 2>&1; then gobin=$(command -v go)
    else warn "no go toolchain found"; return 1; fi
    info "go: building with $($gobin version)"
    (cd "$HERE/go" &&
        GOFLAGS=-mod=mod GOPROXY=off GOSUMDB=off GO111MODULE=on GOTOOLCHAIN=local \
        GOCACHE="$OUT/go-cache" GOPATH="$OUT/go-path" \
            "$gobin" build -trimpath -o "$OUT/go-bench" . >&2) || return 1
}

# ------------------------------------------------------------ fiber
build_fiber() {
    info "fiber: building with $(g++ --version | head -n1)"
    make -C "$HERE/fiber" OUT="$OUT" >&2 || return 1
}

for peer in tokio go fiber; do
    if "build_$peer"; then
        built+=("$peer")
    else
        failed+=("$peer")
        warn "$peer peer FAILED to build; continuing without it"
    fi
done

echo "peer binaries in $OUT:"
for peer in "${built[@]}"; do echo "  $OUT/$peer-bench"; done
if ((${#failed[@]})); then
    echo "not built: ${failed[*]} (see warnings above)"
fi
((${#built[@]})) || exit 1
exit 0
