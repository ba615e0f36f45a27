#!/usr/bin/env bash
# Fault drill: xks-proxy's KMIP key manager (a real PyKMIP server) frozen
# with SIGSTOP under steady encrypt load, then thawed with SIGCONT. During
# the outage every answer must be the spec's 503 DependencyTimeoutException
# (within the proxy's backend budget, not a hang); after it, service must
# come back. Prints the answers per phase. Needs PyKMIP in .venv
# (scripts/pykmip-venv.sh) and curl.
#   scripts/drill-proxy-kmip-outage.sh [OUTAGE_SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
OUTAGE="${1:-4}"
BIN="${BIN:-target/debug}"
cargo build -q --locked -p xks-proxy --bin xks-proxy
cargo build -q --locked -p kmip --features testing --example pykmip-bench-server
WORK="$(mktemp -d)"
PID=""; KPID=""; STOPPED=""
cleanup() {
  [ -n "$STOPPED" ] && kill -CONT $STOPPED 2>/dev/null || true
  kill $PID $KPID 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

"$BIN/examples/pykmip-bench-server" > "$WORK/kmip.out" 2>&1 &
KPID=$!
wait_for "$WORK/kmip.out" "^READY" 600 || { cat "$WORK/kmip.out"; exit 1; }
eval "$(grep '^KMIP_' "$WORK/kmip.out")"
# The PyKMIP processes (the launcher and the helpers it forked): every
# launcher.py process naming the server's directory.
KDIR="$(dirname "$KMIP_CA")"
kmip_pids() {
  local f cmd
  for f in /proc/[0-9]*/cmdline; do
    cmd="$( { tr '\0' ' ' < "$f"; } 2>/dev/null )" || continue
    case "$cmd" in *launcher.py*"$KDIR"*) f="${f#/proc/}"; echo -n "${f%/cmdline} " ;; esac
  done
}

demo_config pykmip
sed -i 's/^\[server\]$/[server]\nbackend_timeout_ms = 500/' "$WORK/config.toml"
cat >> "$WORK/config.toml" <<TOML

[backends.pykmip]
type = "kmip"
server = "$KMIP_ADDRESS"
ca_file = "$KMIP_CA"
client_cert_file = "$KMIP_CERT"
client_key_file = "$KMIP_KEY"
health_key = "xks-health"
pool_size = 4
request_timeout_ms = 500
tag_mismatch_reasons = ["cryptographic_failure", "general_failure"]
TOML
start_proxy || { tail -20 "$WORK/proxy.log"; exit 1; }
SK="$(cat "$WORK/secret_access_key")"

# One signed encrypt; prints "STATUS ERRORNAME SECONDS".
encrypt() {
  local out
  out=$(curl -s -m 5 -o "$WORK/body" -w '%{http_code} %{time_total}' --cacert "$WORK/ca.pem" \
    --aws-sigv4 aws:amz:us-east-1:kms-xks-proxy --user "$AK:$SK" -H 'Content-Type: application/json' \
    -d '{"requestMetadata":{"awsPrincipalArn":"arn:aws:iam::111122223333:user/drill","kmsKeyArn":"arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab","kmsOperation":"Encrypt","kmsRequestId":"drill"},"plaintext":"aGVsbG8=","encryptionAlgorithm":"AES_GCM"}' \
    "https://localhost:$PORT/demo/kms/xks/v1/keys/bench-key/encrypt" || echo "000 5")
  local name
  name=$(python3 -c 'import json,sys
try: print(json.load(open(sys.argv[1])).get("errorName","-"))
except Exception: print("-")' "$WORK/body" 2>/dev/null || echo "-")
  echo "${out%% *} $name ${out##* }"
}

# phase NAME SECONDS: encrypt every 100 ms; prints the answers counted.
phase() {
  local name=$1 secs=$2 end=$((SECONDS + $2))
  : > "$WORK/$name.txt"
  while [ $SECONDS -lt $end ]; do encrypt >> "$WORK/$name.txt"; sleep 0.1; done
  local slowest
  slowest=$(awk '{ if ($3 > m) m = $3 } END { print m }' "$WORK/$name.txt")
  echo "$name: $(awk '{print $1, $2}' "$WORK/$name.txt" | sort | uniq -c | awk '{printf "%s x%s  ", $2" "$3, $1}') slowest ${slowest}s"
}

phase before 2
STOPPED="$(kmip_pids)"
kill -STOP $STOPPED
phase outage "$OUTAGE"
kill -CONT $STOPPED
STOPPED=""
phase recovery 6

fail=0
grep -qv '^200 ' "$WORK/before.txt" && { echo "errors before the outage"; fail=1; }
grep -qv '^\(503 DependencyTimeoutException\|200 -\) ' "$WORK/outage.txt" && { echo "answers other than 503 DependencyTimeoutException during the outage"; fail=1; }
awk '$3 > 2.0 { bad = 1 } END { exit !bad }' "$WORK/outage.txt" && { echo "an answer took over 2 s during the outage"; fail=1; }
grep -q '^503 ' "$WORK/outage.txt" || { echo "no 503 during the outage"; fail=1; }
# Recovered: the last 2 s of the recovery phase all 200.
tail -10 "$WORK/recovery.txt" | grep -qv '^200 ' && { echo "not recovered after the outage"; fail=1; }
[ $fail -eq 0 ] && echo "drill KMIP outage: 503 DependencyTimeoutException during, full recovery after"
exit $fail
