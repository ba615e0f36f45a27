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

run() {
  local name=$1; shift
  local before after reqs
  before=$(cpu_ticks)
  $BIN/xks-conformance load --endpoint "https://localhost:$PORT" --uri-path /demo/kms/xks/v1 \
    --access-key-id "$AK" --secret-access-key-file "$WORK/secret_access_key" --ca-file "$WORK/ca.pem" \
    --key-id demo-key-1 --duration "$DURATION" --json "$@" > "$WORK/report.json" || true
  after=$(cpu_ticks)
  reqs=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["requests"])' "$WORK/report.json")
  python3 - "$WORK/report.json" "$name" "$before" "$after" "$TICK" "$reqs" "$DURATION" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); name = sys.argv[2]
before, after, tick, reqs, dur = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]), float(sys.argv[7])
cpu_s = (after - before) / tick
# CPU is sampled over warm-up + measured window; warm-up requests are not counted in `requests`.
per_req = cpu_s / max(reqs, 1) * 1e6 * dur / (dur + 1.0)
print(f"{name}: {r['achieved_rps']:.0f} req/s, p50 {r['p50_us']/1000:.3f} ms, p99 {r['p99_us']/1000:.3f} ms, "
      f"p99.9 {r['p999_us']/1000:.3f} ms, max {r['max_us']/1000:.1f} ms, errors {sum(r['errors'].values())}, "
      f"proxy CPU ~{per_req:.1f} us/req")
PY
}

run "encrypt 32 B, concurrency 32      " --concurrency 32 --sizes 32
run "encrypt 4 KiB, concurrency 32     " --concurrency 32 --sizes 4096
run "decrypt 32 B, concurrency 32      " --concurrency 32 --sizes 32 --mix decrypt
run "encrypt 32 B, steady 1800 req/s   " --concurrency 32 --sizes 32 --rate 1800
