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
    --data-dir "$WORK/data" > "$WORK/kms.log" 2>&1 &
  PID=$!
  wait_port "$PORT" || true
}
