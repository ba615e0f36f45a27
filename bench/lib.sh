# Shared by the bench/*.sh scripts (sourced, after `cd` to the repository
# root and `set -euo pipefail`; WORK and BIN set by the caller).

# wait_for FILE PATTERN [TENTHS]: until FILE has a line matching PATTERN
# (grep), polling every 0.1 s, at most TENTHS times (default 100).
wait_for() {
  for _ in $(seq "${3:-100}"); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
  return 1
}

# wait_port PORT: until something accepts TCP connections on 127.0.0.1:PORT
# (at most 10 s).
wait_port() {
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done
  return 1
}

# random_port: a port number for a benchmark server.
random_port() { echo $((20000 + RANDOM % 20000)); }

# demo_config BACKEND: certificates, credentials and config.toml of
# `xks-proxy demo` in $WORK (the demo is started, then stopped), with a
# fixed port, the key store on backend BACKEND and no rate limit. Sets AK
# and PORT.
demo_config() {
  "$BIN/xks-proxy" demo --dir "$WORK" --listen 127.0.0.1:0 > "$WORK/demo.out" 2>&1 &
  PID=$!
  wait_for "$WORK/demo.out" "Manage keys" || true
  kill $PID; wait $PID 2>/dev/null || true
  AK=$(grep "access key id" "$WORK/demo.out" | awk '{print $NF}')
  PORT=$(random_port)
  sed -i "s/^listen = .*/listen = \"127.0.0.1:$PORT\"/" "$WORK/config.toml"
  sed -i "s/^backend = \"embedded\"\$/backend = \"$1\"\nrate_limit = { requests_per_second = 0 }/" "$WORK/config.toml"
}

# start_proxy: xks-proxy with $WORK/config.toml, log in $WORK/proxy.log;
# sets PID once it listens.
start_proxy() {
  "$BIN/xks-proxy" --config "$WORK/config.toml" > "$WORK/proxy.log" 2>&1 &
  PID=$!
  wait_for "$WORK/proxy.log" "listening"
}

# cpu_ticks: user + system CPU ticks of process $PID so far.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$PID/stat"; }
TICK=$(getconf CLK_TCK)

# start_kms_core: kms-core on a random port with one credential (AK, SK,
# account 111122223333) and its data in $WORK; sets AK, SK, PORT and PID.
# KMS_CORE_ARGS: extra arguments (e.g. --bench-allow-all).
start_kms_core() {
  AK=AKIALOADLOADLOADLOAD SK=load-test-secret-load-test-secret
  cat > "$WORK/credentials.toml" <<TOML
[[credentials]]
access_key_id = "$AK"
secret_access_key = "$SK"
account_id = "111122223333"
TOML
  PORT=$(random_port)
  RUST_LOG=warn "$BIN/kms-core" --listen "127.0.0.1:$PORT" --credentials "$WORK/credentials.toml" \
    --data-dir "$WORK/data" ${KMS_CORE_ARGS:-} > "$WORK/kms.log" 2>&1 &
  PID=$!
  wait_port "$PORT" || true
}

# proxy_load NAME KEY_ID [LOAD ARGS...]: one `xks-conformance load` scenario
# of DURATION seconds against the proxy of demo_config/start_proxy, printed
# on one line with the proxy's CPU time per request; ERRORS_DETAIL=1 adds
# the errors by kind.
proxy_load() {
  local name=$1 key=$2; shift 2
  local before after reqs
  before=$(cpu_ticks)
  "$BIN/xks-conformance" load --endpoint "https://localhost:$PORT" --uri-path /demo/kms/xks/v1 \
    --access-key-id "$AK" --secret-access-key-file "$WORK/secret_access_key" --ca-file "$WORK/ca.pem" \
    --key-id "$key" --duration "$DURATION" --json "$@" > "$WORK/report.json" || true
  after=$(cpu_ticks)
  reqs=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["requests"])' "$WORK/report.json")
  python3 - "$WORK/report.json" "$name" "$before" "$after" "$TICK" "$reqs" "$DURATION" "${ERRORS_DETAIL:-0}" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); name = sys.argv[2]
before, after, tick, reqs, dur = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]), float(sys.argv[7])
detail = f" {r['errors']}" if sys.argv[8] == "1" else ""
cpu_s = (after - before) / tick
# CPU is sampled over warm-up + measured window; warm-up requests are not counted in `requests`.
per_req = cpu_s / max(reqs, 1) * 1e6 * dur / (dur + 1.0)
print(f"{name}: {r['achieved_rps']:.0f} req/s, p50 {r['p50_us']/1000:.3f} ms, p99 {r['p99_us']/1000:.3f} ms, "
      f"p99.9 {r['p999_us']/1000:.3f} ms, max {r['max_us']/1000:.1f} ms, errors {sum(r['errors'].values())}{detail}, "
      f"proxy CPU ~{per_req:.1f} us/req")
PY
}
