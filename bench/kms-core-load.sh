#!/usr/bin/env bash
# Load benchmark of kms-core: Encrypt 32 B and GenerateDataKey with SigV4
# verified on every request (configured credentials), HTTP/1.1 keep-alive,
# load generator (kms-load) on the same machine.
#
#   bash bench/kms-core-load.sh            # DURATION=10 by default
#   OVERHEADS_ONLY=1 bash bench/kms-core-load.sh   # only the A/B rounds below
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
DURATION=${DURATION:-10}
cargo build --release -q -p kms-core -p loadgen
BIN=target/release
WORK=$(mktemp -d)
trap 'kill $PID 2>/dev/null || true; rm -rf "$WORK"' EXIT
start_kms_core
run() {
  local name=$1; shift
  local before after
  before=$(cpu_ticks)
  $BIN/kms-load --endpoint "http://127.0.0.1:$PORT" --access-key-id "$AK" --secret-access-key "$SK" \
    --duration "$DURATION" --json "$@" > "$WORK/report.json" || true
  after=$(cpu_ticks)
  python3 - "$WORK/report.json" "$name" "$before" "$after" "$TICK" "$DURATION" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); name = sys.argv[2]
before, after, tick, dur = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6])
per_req = (after - before) / tick / max(r["requests"], 1) * 1e6 * dur / (dur + 1.0)
print(f"{name}: {r['achieved_rps']:.0f} req/s, p50 {r['p50_us']/1000:.3f} ms, p99 {r['p99_us']/1000:.3f} ms, "
      f"p99.9 {r['p999_us']/1000:.3f} ms, max {r['max_us']/1000:.1f} ms, errors {sum(r['errors'].values())}, "
      f"kms-core CPU ~{per_req:.1f} us/req")
PY
}
if [ "${OVERHEADS_ONLY:-0}" != 1 ]; then
  run "Encrypt 32 B, concurrency 32          " --op encrypt --size 32 --concurrency 32
  run "GenerateDataKey, concurrency 32       " --op generate-data-key --concurrency 32
  run "Encrypt 32 B, steady 2000 req/s       " --op encrypt --size 32 --concurrency 32 --rate 2000
fi

# The cost of authorization (key policy, identity side, grants), of the
# audit log and of metrics on the hot path: the same Encrypt load in each
# configuration, alternating, in one session. "baseline" is the default
# (authorization on, no audit log, no metrics); --bench-allow-all installs
# AllowAll (benchmarks only).
restart() {
  kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true
  rm -rf "$WORK/data" "$WORK"/audit.log*
  KMS_CORE_ARGS="$1" start_kms_core
}
for round in 1 2 3; do
  restart "--bench-allow-all"
  run "Encrypt 32 B, c=32, AllowAll           ($round)" --op encrypt --size 32 --concurrency 32
  restart ""
  run "Encrypt 32 B, c=32, baseline (authz)   ($round)" --op encrypt --size 32 --concurrency 32
  restart "--audit-log $WORK/audit.log"
  run "Encrypt 32 B, c=32, + audit log fsync  ($round)" --op encrypt --size 32 --concurrency 32
  restart "--metrics-listen 127.0.0.1:0"
  run "Encrypt 32 B, c=32, + metrics          ($round)" --op encrypt --size 32 --concurrency 32
done
