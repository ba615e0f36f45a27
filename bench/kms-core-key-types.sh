#!/usr/bin/env bash
# Benchmark of kms-core's asymmetric and HMAC operations (issue 7):
# Sign/Verify per second for ECC_NIST_P256, RSA_2048 and ML_DSA_65,
# GenerateMac (HMAC_256), and the effect of a burst of RSA_4096 CreateKey
# calls on the latency of concurrent Encrypt requests (p99 must stay under
# 10 ms), and the same Encrypt latency under RSA_4096 Sign load. SigV4 verified on every request; kms-load on the same machine.
#
#   bash bench/kms-core-key-types.sh        # DURATION=10 by default
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
DURATION=${DURATION:-10}
RATE=${RATE:-500}
cargo build --release -q -p kms-core -p loadgen
BIN=target/release
WORK=$(mktemp -d)
trap 'kill $PID 2>/dev/null || true; rm -rf "$WORK"' EXIT
start_kms_core
load() {
  $BIN/kms-load --endpoint "http://127.0.0.1:$PORT" --access-key-id "$AK" --secret-access-key "$SK" \
    --duration "$DURATION" --json "$@"
}
show() {
  python3 - "$1" "$2" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); name = sys.argv[2]
print(f"{name}: {r['achieved_rps']:.0f} req/s ({r['requests']} requests), p50 {r['p50_us']/1000:.3f} ms, "
      f"p99 {r['p99_us']/1000:.3f} ms, p99.9 {r['p999_us']/1000:.3f} ms, max {r['max_us']/1000:.1f} ms, "
      f"errors {sum(r['errors'].values())}")
PY
}
echo "loadavg before: $(cat /proc/loadavg)"
for spec in ECC_NIST_P256 RSA_2048 ML_DSA_65; do
  for op in sign verify; do
    load --op $op --key-spec $spec --size 32 --concurrency 16 > "$WORK/r.json" || true
    show "$WORK/r.json" "$(printf '%-7s %-14s concurrency 16' "$op" "$spec")"
  done
done
load --op generate-mac --key-spec HMAC_256 --size 32 --concurrency 16 > "$WORK/r.json" || true
show "$WORK/r.json" "$(printf '%-7s %-14s concurrency 16' "mac" "HMAC_256")"

# Encrypt latency alone, then under a burst of RSA_4096 key creations.
load --op encrypt --size 32 --concurrency 32 --rate "$RATE" > "$WORK/alone.json" || true
show "$WORK/alone.json" "Encrypt at $RATE req/s, alone                     "
load --op create-key --key-spec RSA_4096 --concurrency 8 --warmup 0 > "$WORK/burst.json" &
BURST=$!
load --op encrypt --size 32 --concurrency 32 --rate "$RATE" > "$WORK/during.json" || true
wait $BURST || true
show "$WORK/during.json" "Encrypt at $RATE req/s, during RSA_4096 CreateKey burst"
show "$WORK/burst.json" "CreateKey RSA_4096, 8 concurrent callers         "

# Encrypt latency while 8 callers keep RSA_4096 Sign requests outstanding
# (each a multi-millisecond private-key operation, run on the blocking pool).
load --op sign --key-spec RSA_4096 --size 32 --concurrency 8 > "$WORK/rsa.json" &
RSA=$!
load --op encrypt --size 32 --concurrency 32 --rate "$RATE" > "$WORK/during-sign.json" || true
wait $RSA || true
show "$WORK/during-sign.json" "Encrypt at $RATE req/s, during RSA_4096 Sign load "
show "$WORK/rsa.json" "Sign RSA_4096, 8 concurrent callers              "
echo "loadavg after: $(cat /proc/loadavg)"
