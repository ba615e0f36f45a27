#!/usr/bin/env bash
# End-to-end: the conformance suite's HTML report in a real browser.
# Renders the report of a run with failures (our proxy without required
# client certificates, plus a short load run; see html_report_of_a_failing_run
# in crates/conformance/tests/against_proxy.rs), opens it in headless
# Chromium (Debian's `chromium`), takes a screenshot and checks that the PNG
# exists and is not trivial. The page is self-contained: the browser runs
# with networking features off and the page fetches nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

browser=""
for b in chromium chromium-browser google-chrome; do
  if command -v "$b" >/dev/null 2>&1; then browser="$b"; break; fi
done
[ -n "$browser" ] || { echo "chromium is required (apt-get install -y chromium)" >&2; exit 1; }

out="${XKS_REPORT_DIR:-$(mktemp -d)}"
mkdir -p "$out"
html="$out/conformance-report.html"
png="$out/conformance-report.png"
rm -f "$html" "$png"

echo "== rendering the report ($html)"
XKS_CONFORMANCE_HTML_OUT="$html" cargo test -q -p conformance --test against_proxy --locked \
  html_report_of_a_failing_run >/dev/null
[ -s "$html" ] || { echo "no report was written" >&2; exit 1; }

echo "== screenshot with $browser ($png)"
profile="$(mktemp -d)"
trap 'rm -rf "$profile"' EXIT
timeout 120 "$browser" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --user-data-dir="$profile" --window-size=1280,2400 \
  --screenshot="$png" "file://$html" >"$out/chromium.log" 2>&1 || {
  echo "chromium failed:" >&2; cat "$out/chromium.log" >&2; exit 1; }

[ -s "$png" ] || { echo "no screenshot" >&2; cat "$out/chromium.log" >&2; exit 1; }
# A PNG signature, and more than a blank page's few kilobytes.
sig="$(head -c 8 "$png" | od -An -tx1 | tr -d ' \n')"
[ "$sig" = "89504e470d0a1a0a" ] || { echo "not a PNG: $sig" >&2; exit 1; }
size=$(stat -c %s "$png")
[ "$size" -gt 20000 ] || { echo "screenshot is only $size bytes: blank page?" >&2; exit 1; }
echo "ok: $png ($size bytes)"
