#!/usr/bin/env bash
# Load benchmark of xks-proxy on the KMIP backend in front of a real PyKMIP
# server (TLS 1.2, client certificates), everything on this machine: the
# PyKMIP harness (kmip crate, example pykmip-bench-server), the release
# proxy, and `xks-conformance load` over TLS with keep-alive.
# Needs PyKMIP in .venv (bash scripts/pykmip-venv.sh).
#
#   bash bench/xks-proxy-kmip-load.sh
#   DURATION=20 POOL=16 bash bench/xks-proxy-kmip-load.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
DURATION=${DURATION:-10}
POOL=${POOL:-8}
LOG_LEVEL=${LOG_LEVEL:-info}
cargo build --release -q -p xks-proxy -p conformance
cargo build --release -q -p kmip --features testing --example pykmip-bench-server
BIN=target/release
WORK=$(mktemp -d)
PID=""; KPID=""
trap 'kill $PID $KPID 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$WORK"' EXIT

$BIN/examples/pykmip-bench-server > "$WORK/kmip.out" 2>&1 &
KPID=$!
wait_for "$WORK/kmip.out" "^READY" 300 || { cat "$WORK/kmip.out"; exit 1; }
eval "$(grep '^KMIP_' "$WORK/kmip.out")"

# Certificates and credentials of the demo, then its key store moved to KMIP.
demo_config pykmip
# PyKMIP answers in milliseconds: the proxy's per-call budget is raised.
sed -i 's/^\[server\]$/[server]\nbackend_timeout_ms = 2000/' "$WORK/config.toml"
cat >> "$WORK/config.toml" <<TOML

[backends.pykmip]
type = "kmip"
server = "$KMIP_ADDRESS"
ca_file = "$KMIP_CA"
client_cert_file = "$KMIP_CERT"
client_key_file = "$KMIP_KEY"
health_key = "xks-health"
pool_size = $POOL
request_timeout_ms = 2000
tag_mismatch_reasons = ["cryptographic_failure", "general_failure"]

[log]
level = "$LOG_LEVEL"
TOML

start_proxy || true

run() {
  local name=$1; shift
  $BIN/xks-conformance load --endpoint "https://localhost:$PORT" --uri-path /demo/kms/xks/v1 \
    --access-key-id "$AK" --secret-access-key-file "$WORK/secret_access_key" --ca-file "$WORK/ca.pem" \
    --key-id bench-key --duration "$DURATION" --json "$@" > "$WORK/report.json" || true
  python3 - "$WORK/report.json" "$name" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); name = sys.argv[2]
print(f"{name}: {r['achieved_rps']:.0f} req/s, p50 {r['p50_us']/1000:.2f} ms, p99 {r['p99_us']/1000:.2f} ms, "
      f"p99.9 {r['p999_us']/1000:.2f} ms, max {r['max_us']/1000:.1f} ms, errors {r['errors']}")
PY
}

echo "loadavg before: $(cat /proc/loadavg)"
run "encrypt 32 B, concurrency 1  " --concurrency 1 --sizes 32
run "encrypt 32 B, concurrency 8  " --concurrency 8 --sizes 32
run "encrypt 32 B, concurrency 32 " --concurrency 32 --sizes 32
run "decrypt 32 B, concurrency 8  " --concurrency 8 --sizes 32 --mix decrypt
run "encrypt 32 B, steady 50 req/s" --concurrency 8 --sizes 32 --rate 50
echo "loadavg after: $(cat /proc/loadavg)"
