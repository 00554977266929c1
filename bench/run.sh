#!/usr/bin/env bash
# Runs the benchmark on this machine and prints its tables (see bench/main.rs for what it does).
#
#   bench/run.sh                           # 10 s per target, 64 connections
#   BENCH_SECONDS=30 BENCH_CONNS=128 bench/run.sh
#
# Installs nginx (the baseline), curl (the direct client) and wrk (the load) when missing, builds Garage (the
# production S3 store) once per machine when missing (cargo install garage --locked, about 20
# minutes on 2 cores), builds the gateway and the benchmark in release mode, and prints the
# machine it ran on with the results.
set -euo pipefail
cd "$(dirname "$0")/.."

for pkg in nginx curl wrk; do
    if ! command -v "$pkg" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$pkg" ]; then
        sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo -n"
        $sudo apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$pkg" >/dev/null \
            || { echo "bench: install the Debian package $pkg" >&2; exit 1; }
    fi
done
# The TLS front of the store is an nginx `stream` server: Debian ships that module apart.
if [ ! -e /usr/lib/nginx/modules/ngx_stream_module.so ]; then
    sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo -n"
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends libnginx-mod-stream >/dev/null \
        || { echo "bench: install the Debian package libnginx-mod-stream" >&2; exit 1; }
fi
export NGINX="${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}"
if [ -z "${GARAGE:-}" ]; then
    if ! command -v garage >/dev/null 2>&1; then
        echo "bench: building Garage, the production S3 store (cargo install garage --locked; about 20 minutes, once per machine)" >&2
        cargo install garage --locked
    fi
    GARAGE="$(command -v garage || echo "$HOME/.cargo/bin/garage")"
    export GARAGE
fi

cargo build --release --locked --bin gateway --example bench
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "date: $(date -u +%Y-%m-%d)"
GATEWAY_BIN=target/release/gateway target/release/examples/bench
