#!/usr/bin/env bash
# Load benchmark of xks-proxy with the embedded key manager, over TLS with
# keep-alive, load generator (xks-conformance load) on the same machine.
# Prints one report per scenario and the proxy's CPU time per request.
#
#   bash bench/xks-proxy-load.sh            # default scenarios
#   DURATION=20 bash bench/xks-proxy-load.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
DURATION=${DURATION:-10}
LOG_LEVEL=${LOG_LEVEL:-info}
cargo build --release -q -p xks-proxy -p conformance
BIN=target/release
WORK=$(mktemp -d)
trap 'kill $PID 2>/dev/null || true; rm -rf "$WORK"' EXIT

# Certificates, credentials and the demo key; benchmark settings: no rate
# limit, chosen log level, fixed port.
demo_config embedded
printf '\n[log]\nlevel = "%s"\n' "$LOG_LEVEL" >> "$WORK/config.toml"

start_proxy || true

run() { proxy_load "$1" demo-key-1 "${@:2}"; }

run "encrypt 32 B, concurrency 32      " --concurrency 32 --sizes 32
run "encrypt 4 KiB, concurrency 32     " --concurrency 32 --sizes 4096
run "decrypt 32 B, concurrency 32      " --concurrency 32 --sizes 32 --mix decrypt
run "encrypt 32 B, steady 1800 req/s   " --concurrency 32 --sizes 32 --rate 1800
