#!/usr/bin/env bash
# The project's test command (README): installs what the tests need on a
# fresh Debian machine, then runs formatting, lint and every test.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v curl >/dev/null 2>&1 || need_apt+=(curl)
command -v cc >/dev/null 2>&1 || need_apt+=(build-essential)
# SoftHSM2 for the PKCS#11 backend tests (xks-proxy, conformance).
[ -e /usr/lib/softhsm/libsofthsm2.so ] || need_apt+=(softhsm2)
# Headless Chromium for the conformance report's end-to-end screenshot.
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "== installing ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
command -v cargo >/dev/null 2>&1 || { echo "cargo (Rust toolchain) is required: https://rustup.rs" >&2; exit 1; }
rustup component list --installed 2>/dev/null | grep -q clippy || rustup component add clippy rustfmt

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== PyKMIP for the KMIP tests"
bash scripts/pykmip-venv.sh
echo "== cargo test"
cargo test --workspace --locked
echo "== end-to-end: kms-core with the aws CLI and boto3"
bash scripts/e2e-kms.sh
echo "== end-to-end: the conformance HTML report in headless Chromium"
bash scripts/e2e-conformance-report.sh

# ---- issue 17: fuzzing (short run of every target; the corpora are also
# replayed on stable by the fuzz_replay tests above; FUZZ_SECONDS=0 skips)
# and the fault drills (scripts/drill-*.sh, each prints what it checked).
if [ "${FUZZ_SECONDS:-15}" != "0" ]; then
  echo "== fuzz: every target for ${FUZZ_SECONDS:-15}s"
  bash scripts/fuzz.sh "${FUZZ_SECONDS:-15}"
fi
echo "== fault drills (short form): kill -9 under load, disk full, KMIP outage"
bash scripts/drill-kms-kill9.sh 2 2
bash scripts/drill-kms-diskfull.sh
bash scripts/drill-proxy-kmip-outage.sh 3
# ---- end issue 17
