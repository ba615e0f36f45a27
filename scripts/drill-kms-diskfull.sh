#!/usr/bin/env bash
# Fault drill: the disk fills up under kms-core's data directory (a small
# tmpfs), writes go on until 20 in a row fail; the failures must be proper
# AWS errors and the process must keep answering; then space returns (the
# tmpfs grows), writes succeed again, and every write acknowledged before,
# during and after is intact — also after a restart.
# Needs root and `mount -t tmpfs`; skipped with a message otherwise.
#   scripts/drill-kms-diskfull.sh [TMPFS_SIZE]   (default 2m)
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
SIZE="${1:-2m}"
BIN="${BIN:-target/debug}"
[ -x "$BIN/kms-core" ] || cargo build -q --locked -p kms-core --bin kms-core
WORK="$(mktemp -d)"
DATA="$WORK/data"
mkdir -p "$DATA"
if ! mount -t tmpfs -o "size=$SIZE" tmpfs "$DATA" 2>/dev/null; then
  echo "drill disk full: cannot mount a tmpfs here (needs root); skipped"
  rm -rf "$WORK"
  exit 0
fi
PID=""
cleanup() {
  [ -n "$PID" ] && kill -9 "$PID" 2>/dev/null || true
  umount "$DATA" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
PORT="$(random_port)"
start_kms() {
  "$BIN/kms-core" --listen "127.0.0.1:$PORT" --data-dir "$DATA" >> "$WORK/kms.log" 2>&1 &
  PID=$!
  wait_port "$PORT" || { tail -20 "$WORK/kms.log"; echo "kms-core did not start"; exit 1; }
}

start_kms
python3 scripts/drill/kms_client.py fill "$PORT" "$WORK/acked.jsonl"
kill -0 "$PID" || { echo "kms-core died when the disk filled"; tail -20 "$WORK/kms.log"; exit 1; }
df -h "$DATA" | tail -1
echo -n "while full: "
python3 scripts/drill/kms_client.py check "$PORT" "$WORK/acked.jsonl"
mount -o remount,size=64m "$DATA"
python3 scripts/drill/kms_client.py write "$PORT" "$WORK/acked.jsonl"
echo -n "space back: "
python3 scripts/drill/kms_client.py check "$PORT" "$WORK/acked.jsonl"
kill "$PID"; wait "$PID" 2>/dev/null || true
start_kms
echo -n "after restart: "
python3 scripts/drill/kms_client.py check "$PORT" "$WORK/acked.jsonl"
kill "$PID"; wait "$PID" 2>/dev/null || true; PID=""
echo "drill disk full: errors while full, nothing acknowledged lost, writes resumed"
