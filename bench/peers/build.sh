#!/usr/bin/env bash
# Build the peer benchmarks offline.
#
#   bench/peers/build.sh [OUTDIR]      (default: bench/peers/out)
#
# Installs the Debian packages it needs if they are missing (apt-get, the only
# network access), then builds into OUTDIR:
#   tokio-bench.debian, tokio-bench.rustup   Tokio, with Debian's rustc/cargo
#                                            and with rustup's (if installed)
#   r2d2-bench.debian, r2d2-bench.rustup     r2d2 pool, the same two ways
#   go-bench, gosql-bench                    Go runtime; Go database/sql pool
#   fiber-bench                              Boost.Fiber
#   hikari-bench                             HikariCP (a wrapper running java)
# Each Rust crate comes from Debian's registry (/usr/share/cargo/registry)
# whichever toolchain compiles it. A peer that fails to build is reported and
# skipped; the script only fails if none could be built. `toolchains.txt` in
# OUTDIR records the compiler of each binary.
set -u

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
OUT=${1:-$HERE/out}
mkdir -p "$OUT" || { echo "build.sh: cannot create $OUT" >&2; exit 1; }
OUT=$(cd "$OUT" && pwd)

warn() { echo "build.sh: WARNING: $*" >&2; }
info() { echo "build.sh: $*" >&2; }

# ------------------------------------------------------------ packages
PKGS=(rustc cargo librust-tokio-dev librust-async-channel-dev librust-libc-dev librust-r2d2-dev
      golang-go libboost-fiber-dev g++ make openjdk-17-jdk-headless libhikaricp-java libslf4j-java
      util-linux)
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
: >"$OUT/toolchains.txt"

# ------------------------------------------------------------ rust
# Toolchains: Debian's (/usr/bin) and rustup's ($RUSTUP_HOME's cargo proxy,
# default ~/.cargo/bin), each a `label cargo rustc` triple.
rust_toolchains() {
    [ -x /usr/bin/cargo ] && [ -x /usr/bin/rustc ] && echo "debian /usr/bin/cargo /usr/bin/rustc"
    local rb=${CARGO_HOME:-$HOME/.cargo}/bin
    [ -x "$rb/cargo" ] && [ -x "$rb/rustc" ] && echo "rustup $rb/cargo $rb/rustc"
}

# build_rust CRATE_DIR BIN: one binary per toolchain, OUT/BIN.LABEL.
build_rust() {
    local dir=$1 bin=$2 any=1 label cargo rustc
    while read -r label cargo rustc; do
        info "$bin: building with $($rustc -V) ($label)"
        # .cargo/config.toml in the crate dir points crates-io at the Debian
        # directory source and sets net.offline; --offline makes sure.
        if (cd "$HERE/$dir" &&
            env PATH="$(dirname "$cargo"):$PATH" RUSTC="$rustc" CARGO_TARGET_DIR="$OUT/$bin-target.$label" \
                CARGO_NET_OFFLINE=true "$cargo" build --release --offline >&2); then
            cp "$OUT/$bin-target.$label/release/$bin" "$OUT/$bin.$label"
            echo "$bin.$label $($rustc -V)" >>"$OUT/toolchains.txt"
            any=0
        else
            rm -f "$OUT/$bin.$label"
            warn "$bin does not build with $($rustc -V) ($label)"
        fi
    done < <(rust_toolchains)
    return "$any"
}

build_tokio() {
    ls -d /usr/share/cargo/registry/tokio-1.* >/dev/null 2>&1 ||
        { warn "no tokio sources in /usr/share/cargo/registry (librust-tokio-dev)"; return 1; }
    build_rust tokio tokio-bench
}

build_r2d2() {
    ls -d /usr/share/cargo/registry/r2d2-0.* >/dev/null 2>&1 ||
        { warn "no r2d2 sources in /usr/share/cargo/registry (librust-r2d2-dev)"; return 1; }
    build_rust r2d2 r2d2-bench
}

# ------------------------------------------------------------ go
go_build() { # DIR BIN
    local gobin
    if [ -x /usr/lib/go/bin/go ]; then gobin=/usr/lib/go/bin/go
    elif command -v go >/dev/null 2>&1; then gobin=$(command -v go)
    else warn "no go toolchain found"; return 1; fi
    info "$2: building with $($gobin version)"
    (cd "$HERE/$1" &&
        GOFLAGS=-mod=mod GOPROXY=off GOSUMDB=off GO111MODULE=on GOTOOLCHAIN=local \
        GOCACHE="$OUT/go-cache" GOPATH="$OUT/go-path" \
            "$gobin" build -trimpath -o "$OUT/$2" . >&2) || return 1
    echo "$2 $($gobin version)" >>"$OUT/toolchains.txt"
}
build_go() { go_build go go-bench; }
build_gosql() { go_build gosql gosql-bench; }

# ------------------------------------------------------------ fiber
build_fiber() {
    info "fiber: building with $(g++ --version | head -n1)"
    make -C "$HERE/fiber" OUT="$OUT" >&2 || return 1
    echo "fiber-bench $(g++ --version | head -n1)" >>"$OUT/toolchains.txt"
}

# ------------------------------------------------------------ hikari
# Classes in OUT/hikari-classes; OUT/hikari-bench runs them on at most two
# CPUs (mt2: 8 threads on 2 CPUs).
build_hikari() {
    local jars=/usr/share/java/HikariCP.jar:/usr/share/java/slf4j-api.jar
    [ -f /usr/share/java/HikariCP.jar ] || { warn "no HikariCP.jar (libhikaricp-java)"; return 1; }
    command -v javac >/dev/null 2>&1 || { warn "no javac"; return 1; }
    info "hikari: building with $(javac -version 2>&1)"
    rm -rf "$OUT/hikari-classes"
    javac -Xlint:all -Werror -d "$OUT/hikari-classes" -cp "$jars" "$HERE"/hikari/*.java >&2 || return 1
    cat >"$OUT/hikari-bench" <<EOF
#!/usr/bin/env bash
# Generated by bench/peers/build.sh: HikariCP peer on at most two CPUs.
cpus=\$(awk '/^Cpus_allowed_list/ { print \$2 }' /proc/self/status)
two=\$(echo "\$cpus" | tr ',' '\n' | awk -F- '{ for (c = \$1; c <= (NF > 1 ? \$2 : \$1); c++) print c }' | head -n2 | paste -sd,)
exec taskset -c "\$two" java -cp "$OUT/hikari-classes:$jars:/usr/share/java/slf4j-nop.jar" HikariBench "\$@"
EOF
    chmod +x "$OUT/hikari-bench"
    echo "hikari-bench $(java -version 2>&1 | head -n1), HikariCP $(dpkg-query -W -f='${Version}' libhikaricp-java 2>/dev/null)" >>"$OUT/toolchains.txt"
}

for peer in tokio go fiber hikari gosql r2d2; do
    if "build_$peer"; then
        built+=("$peer")
    else
        failed+=("$peer")
        warn "$peer peer FAILED to build; continuing without it"
    fi
done

echo "peer binaries in $OUT:"
cat "$OUT/toolchains.txt"
if ((${#failed[@]})); then
    echo "not built: ${failed[*]} (see warnings above)"
fi
((${#built[@]})) || exit 1
exit 0
