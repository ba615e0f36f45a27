#!/usr/bin/env bash
# Load benchmark of the whole external key store chain: GenerateDataKey on
# alias/demo-xks through kms-core (SigV4 verified on every request) →
# mutual TLS + SigV4 → the in-process xks-proxy → embedded key manager,
# keep-alive everywhere, double encryption, load generator (kms-load) on
# the same machine.
#
#   bash bench/kms-core-xks-load.sh            # DURATION=10 by default
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10}
cargo build --release -q -p kms-core -p loadgen
BIN=target/release
WORK=$(mktemp -d)
trap 'kill $PID 2>/dev/null || true; rm -rf "$WORK"' EXIT
AK=AKIALOADLOADLOADLOAD SK=load-test-secret-load-test-secret
cat > "$WORK/credentials.toml" <<TOML
[[credentials]]
access_key_id = "$AK"
secret_access_key = "$SK"
account_id = "111122223333"
TOML
PORT=$((20000 + RANDOM % 20000))
RUST_LOG=warn $BIN/kms-core --listen "127.0.0.1:$PORT" --credentials "$WORK/credentials.toml" \
  --data-dir "$WORK/data" --demo-xks --demo-xks-dir "$WORK/demo-xks" --demo-xks-listen "127.0.0.1:$((PORT + 1))" \
  > "$WORK/kms.log" 2>&1 &
PID=$!
for _ in $(seq 300); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done
cpu_ticks() { awk '{print $14 + $15}' "/proc/$PID/stat"; }
TICK=$(getconf CLK_TCK)
echo "loadavg before: $(cat /proc/loadavg)"
run() {
  local name=$1; shift
  local before after
  before=$(cpu_ticks)
  $BIN/kms-load --endpoint "http://127.0.0.1:$PORT" --access-key-id "$AK" --secret-access-key "$SK" \
    --key-id alias/demo-xks --duration "$DURATION" --json "$@" > "$WORK/report.json" || true
  after=$(cpu_ticks)
  python3 - "$WORK/report.json" "$name" "$before" "$after" "$TICK" "$DURATION" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); name = sys.argv[2]
before, after, tick, dur = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6])
per_req = (after - before) / tick / max(r["requests"], 1) * 1e6 * dur / (dur + 1.0)
print(f"{name}: {r['achieved_rps']:.0f} req/s, p50 {r['p50_us']/1000:.3f} ms, p99 {r['p99_us']/1000:.3f} ms, "
      f"p99.9 {r['p999_us']/1000:.3f} ms, max {r['max_us']/1000:.1f} ms, errors {sum(r['errors'].values())}, "
      f"kms-core+proxy CPU ~{per_req:.1f} us/req")
PY
}
run "XKS GenerateDataKey, concurrency 32       " --op generate-data-key --concurrency 32
run "XKS GenerateDataKey, steady 1800 req/s    " --op generate-data-key --concurrency 32 --rate 1800
run "XKS Encrypt 32 B, concurrency 32          " --op encrypt --size 32 --concurrency 32
echo "loadavg after: $(cat /proc/loadavg)"
