#!/usr/bin/env bash
# Fault drill: kill -9 of kms-core under mixed write load (CreateKey,
# CreateAlias, Encrypt from 4 clients), restart on the same data directory,
# then check that every acknowledged key, alias and ciphertext is intact.
# Prints acknowledged vs found per round; exits 1 on any loss.
#   scripts/drill-kms-kill9.sh [ROUNDS] [LOAD_SECONDS]
# BIN=target/release to drill a release build (default: target/debug,
# built when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
ROUNDS="${1:-3}"
SECS="${2:-3}"
BIN="${BIN:-target/debug}"
[ -x "$BIN/kms-core" ] || cargo build -q --locked -p kms-core --bin kms-core
WORK="$(mktemp -d)"
PID=""
cleanup() { [ -n "$PID" ] && kill -9 "$PID" 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
PORT="$(random_port)"

start_kms() {
  "$BIN/kms-core" --listen "127.0.0.1:$PORT" --data-dir "$WORK/data" >> "$WORK/kms.log" 2>&1 &
  PID=$!
  wait_port "$PORT" || { tail -20 "$WORK/kms.log"; echo "kms-core did not start"; exit 1; }
}

start_kms
for round in $(seq "$ROUNDS"); do
  python3 scripts/drill/kms_client.py load "$PORT" "$((SECS + 30))" "$WORK/acked.jsonl" &
  LOAD=$!
  # Kill at a point in the middle of the load (the load itself runs on).
  sleep "$SECS"
  kill -9 "$PID"
  wait "$PID" 2>/dev/null || true
  wait "$LOAD" || true
  start_kms
  echo -n "round $round: "
  python3 scripts/drill/kms_client.py check "$PORT" "$WORK/acked.jsonl"
done
kill "$PID"; wait "$PID" 2>/dev/null || true; PID=""
echo "drill kill -9: $ROUNDS rounds, nothing acknowledged was lost"
