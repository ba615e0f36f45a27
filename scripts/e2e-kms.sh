#!/usr/bin/env bash
# End-to-end test of kms-core with the official AWS clients (aws CLI, boto3
# and the AWS Encryption SDK, installed from PyPI into .venv), and interop
# of the asymmetric key types with Python `cryptography` and the openssl
# command line. Run by scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
if [ ! -x "$VENV/bin/python" ]; then
  if ! python3 -m venv "$VENV" 2>/dev/null; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-venv >/dev/null
    python3 -m venv "$VENV"
  fi
fi
if ! command -v openssl >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq openssl >/dev/null
fi
"$VENV/bin/pip" install -q --disable-pip-version-check awscli==1.46.3 boto3==1.44.5 aws-encryption-sdk==4.0.7 cryptography==50.0.2
cargo build -q -p kms-core
WORK=$(mktemp -d)
PORT=$((20000 + RANDOM % 20000))
# --demo-xks: an in-process xks-proxy (mutual TLS, embedded key manager), a
# connected external key store and alias/demo-xks, for the XKS cases.
target/debug/kms-core --listen "127.0.0.1:$PORT" --data-dir "$WORK/data" \
  --demo-xks --demo-xks-dir "$WORK/demo-xks" --demo-xks-listen "127.0.0.1:$((PORT + 1))" > "$WORK/kms.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null || true; rm -rf "$WORK"' EXIT
for _ in $(seq 300); do grep -q "kms-core listening" "$WORK/kms.log" 2>/dev/null && break; sleep 0.1; done
# Isolate the clients from any local AWS configuration.
export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
export AWS_ACCESS_KEY_ID=111122223333 AWS_SECRET_ACCESS_KEY=development-mode-accepts-any AWS_DEFAULT_REGION=us-east-1
PATH="$(pwd)/$VENV/bin:$PATH" "$VENV/bin/python" e2e/kms_clients.py "http://127.0.0.1:$PORT" "$WORK"
