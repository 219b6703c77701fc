#!/usr/bin/env bash
# Build librdkafka's `rdkafka_performance` tool from the librdkafka source
# that ships inside the crates.io crate rdkafka-sys (4.10.0 = librdkafka 2.12.1).
#
#   bench/rdkafka-build.sh            # prints the path of rdkafka_performance
#   bench/rdkafka-build.sh tests      # also builds librdkafka's test suite; prints test-runner's path
#
# Layout (all under the workspace's target dir, nothing is added to the workspace):
#   target/rdkafka-fetch/      throwaway cargo project used only to `cargo fetch` the crate
#   target/librdkafka-src/     private copy of the librdkafka source tree (configured and
#                              built in place; stable path, reused later for `make -C tests build`)
#
# Idempotent: the fetch/copy, configure and make steps are skipped when already done.
# Needs: cargo, gcc, g++, make, python3 (all on the project's Debian 12 machines).
# Environment overrides:
#   RDKAFKA_SRC_DIR         where the source copy lives (default: <repo>/target/librdkafka-src)
#   RDKAFKA_CONFIGURE_ARGS  extra arguments for ./configure (changing them re-runs configure)
#   JOBS                    make parallelism (default: nproc)
set -euo pipefail

RDKAFKA_SYS_VERSION=4.10.0
LIBRDKAFKA_VERSION=2.12.1

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
target=${CARGO_TARGET_DIR:-$repo/target}
src=${RDKAFKA_SRC_DIR:-$target/librdkafka-src}
jobs=${JOBS:-$(nproc)}

# Only builtin codecs (lz4, snappy); no TLS, SASL, curl, zlib or zstd, so the build does
# not depend on which -dev packages happen to be installed and never installs any.
configure_args=(--no-download --disable-ssl --disable-gssapi --disable-curl
    --disable-zlib --disable-zstd --disable-lz4-ext ${RDKAFKA_CONFIGURE_ARGS:-})

log() { printf '[rdkafka-build] %s\n' "$*" >&2; }

for tool in cargo cc c++ make python3; do
    command -v "$tool" >/dev/null || { log "missing required tool: $tool"; exit 1; }
done

# 1. Source: fetch the crate with a throwaway cargo project and copy librdkafka out of
#    the cargo registry (the registry copy is never modified).
if [[ ! -f $src/.gregor-source-ok ]]; then
    fetch=$target/rdkafka-fetch
    mkdir -p "$fetch/src"
    cat >"$fetch/Cargo.toml" <<EOF
[package]
name = "rdkafka-fetch"
version = "0.0.0"
edition = "2021"
publish = false

[dependencies]
rdkafka-sys = { version = "=$RDKAFKA_SYS_VERSION", default-features = false }

# Not part of the gregor workspace.
[workspace]
EOF
    echo 'fn main() {}' >"$fetch/src/main.rs"
    log "cargo fetch rdkafka-sys =$RDKAFKA_SYS_VERSION"
    (cd "$fetch" && cargo fetch --quiet)

    cargo_home=${CARGO_HOME:-$HOME/.cargo}
    crate_dir=
    for d in "$cargo_home"/registry/src/*/rdkafka-sys-"$RDKAFKA_SYS_VERSION"*; do
        if [[ -f $d/librdkafka/configure && -f $d/librdkafka/examples/rdkafka_performance.c ]]; then
            crate_dir=$d
            break
        fi
    done
    if [[ -z $crate_dir ]]; then
        log "rdkafka-sys $RDKAFKA_SYS_VERSION not found under $cargo_home/registry/src after cargo fetch"
        exit 1
    fi
    log "copying $crate_dir/librdkafka -> $src"
    rm -rf "$src"
    mkdir -p "$(dirname "$src")"
    cp -a "$crate_dir/librdkafka" "$src"
    # The crate's file modes are not always executable.
    chmod +x "$src/configure" "$src/lds-gen.py" 2>/dev/null || true
    grep -Eq "define RD_KAFKA_VERSION +0x020c01" "$src/src/rdkafka.h" ||
        log "warning: source does not look like librdkafka $LIBRDKAFKA_VERSION"
    echo "rdkafka-sys $RDKAFKA_SYS_VERSION from $crate_dir" >"$src/.gregor-source-ok"
fi

cd "$src"

# 2. Configure (re-run only when the arguments change or it never completed).
#    Logs must not be named configure.*: mklove loads every ./configure.* as a module.
stamp=.gregor-configure-args
if [[ ! -f Makefile.config || ! -f config.h || "$(cat $stamp 2>/dev/null)" != "${configure_args[*]}" ]]; then
    log "./configure ${configure_args[*]}"
    ./configure "${configure_args[@]}" >gregor-configure.log 2>&1 || {
        tail -40 gregor-configure.log >&2
        log "configure failed, full output in $src/gregor-configure.log"
        exit 1
    }
    echo "${configure_args[*]}" >$stamp
fi

# 3. Build the libraries and the tool (make skips what is up to date).
log "make libs (-j$jobs)"
make -j"$jobs" libs >gregor-make-libs.log 2>&1 || {
    tail -40 gregor-make-libs.log >&2
    log "make libs failed, full output in $src/gregor-make-libs.log"
    exit 1
}
log "make -C examples rdkafka_performance"
make -C examples rdkafka_performance >gregor-make-examples.log 2>&1 || {
    tail -40 gregor-make-examples.log >&2
    log "make rdkafka_performance failed, full output in $src/gregor-make-examples.log"
    exit 1
}

bin=$src/examples/rdkafka_performance
[[ -x $bin ]] || { log "$bin was not built"; exit 1; }
if [[ ${1:-} == tests ]]; then
    log "make -C tests test-runner (-j$jobs)"
    make -C tests -j"$jobs" test-runner >gregor-make-tests.log 2>&1 || {
        tail -40 gregor-make-tests.log >&2
        log "make test-runner failed, full output in $src/gregor-make-tests.log"
        exit 1
    }
    bin=$src/tests/test-runner
    [[ -x $bin ]] || { log "$bin was not built"; exit 1; }
fi
echo "$bin"
