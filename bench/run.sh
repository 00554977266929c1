#!/usr/bin/env bash
# Runs the benchmark on this machine and prints its tables (see bench/main.rs for what it does).
#
#   bench/run.sh                           # 10 s per target, 64 connections
#   BENCH_SECONDS=30 BENCH_CONNS=128 bench/run.sh
#
# Installs nginx (the baseline) when missing, builds the gateway and the benchmark in release
# mode, and prints the machine it ran on with the results.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
    sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo -n"
    $sudo apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends nginx >/dev/null \
        || { echo "bench: install the Debian package nginx" >&2; exit 1; }
fi
export NGINX="${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}"

cargo build --release --locked --bin gateway --example bench
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "date: $(date -u +%Y-%m-%d)"
GATEWAY_BIN=target/release/gateway target/release/examples/bench
