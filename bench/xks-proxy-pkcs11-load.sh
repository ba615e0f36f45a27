#!/usr/bin/env bash
# Load benchmark of xks-proxy on the PKCS#11 backend with SoftHSM2 (token
# made in a temp dir), over TLS with keep-alive, load generator
# (xks-conformance load) on the same machine. Prints one report per scenario
# and the proxy's CPU time per request.
#
#   bash bench/xks-proxy-pkcs11-load.sh
#   DURATION=20 MAX_SESSIONS=4 bash bench/xks-proxy-pkcs11-load.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
DURATION=${DURATION:-10}
LOG_LEVEL=${LOG_LEVEL:-info}
MAX_SESSIONS=${MAX_SESSIONS:-8}
MODULE=${SOFTHSM2_MODULE:-/usr/lib/softhsm/libsofthsm2.so}
[ -e "$MODULE" ] || { echo "SoftHSM2 module $MODULE not found: apt-get install softhsm2" >&2; exit 1; }
cargo build --release -q -p xks-proxy -p conformance --bins --example pkcs11_keygen
BIN=target/release
WORK=$(mktemp -d)
trap 'kill $PID 2>/dev/null || true; rm -rf "$WORK"' EXIT

# A SoftHSM2 token with the benchmark key and the health key.
mkdir -p "$WORK/tokens"
printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' "$WORK/tokens" > "$WORK/softhsm2.conf"
export SOFTHSM2_CONF="$WORK/softhsm2.conf"
softhsm2-util --init-token --free --label xks-bench --so-pin 87654321 --pin 12345678 >/dev/null
printf '12345678\n' > "$WORK/hsm.pin"
XKS_PKCS11_PIN=12345678 $BIN/examples/pkcs11_keygen "$MODULE" xks-bench bench-key xks-health >/dev/null

# Certificates and credentials from the demo, then point its key store at the token.
PID=
demo_config hsm
cat >> "$WORK/config.toml" <<EOC

[backends.hsm]
type = "pkcs11"
module = "$MODULE"
token_label = "xks-bench"
user_pin_file = "hsm.pin"
health_key_label = "xks-health"
max_sessions = $MAX_SESSIONS

[log]
level = "$LOG_LEVEL"
EOC

start_proxy || { cat "$WORK/proxy.log"; exit 1; }

ERRORS_DETAIL=1
run() { proxy_load "$1" bench-key "${@:2}"; }

echo "loadavg before: $(cat /proc/loadavg)"
run "encrypt 32 B, concurrency 32      " --concurrency 32 --sizes 32
run "encrypt 4 KiB, concurrency 32     " --concurrency 32 --sizes 4096
run "decrypt 32 B, concurrency 32      " --concurrency 32 --sizes 32 --mix decrypt
run "encrypt 32 B, steady 1800 req/s   " --concurrency 32 --sizes 32 --rate 1800
echo "loadavg after: $(cat /proc/loadavg)"
