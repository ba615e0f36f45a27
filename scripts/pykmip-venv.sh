#!/usr/bin/env bash
# Installs PyKMIP (a real KMIP server) into the repository's .venv for the
# kmip crate's and the KMIP backend's tests (kmip::testing::PyKmip).
# Versions pinned: PyKMIP 0.11.0 with the cryptography and SQLAlchemy
# releases it was tested with here. Run by scripts/test.sh.
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
"$VENV/bin/pip" install -q --disable-pip-version-check \
  pykmip==0.11.0 cryptography==50.0.2 SQLAlchemy==2.1.9 requests==2.34.2 six==1.17.0
"$VENV/bin/python" -W ignore -c "import kmip.services.server.server" >/dev/null
