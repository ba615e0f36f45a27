#!/usr/bin/env bash
# Runs the cargo-fuzz targets (fuzz/, see docs/testing.md).
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
# CI: every target for a short bounded time (default 20 s each), starting
# from the seed corpus fuzz/corpus/<target>; new inputs go to
# fuzz/corpus-local/<target> (not committed). A crash leaves its input in
# fuzz/artifacts/<target>/ and fails the script: add that input to
# fuzz/corpus/<target>/ (it is then replayed by `cargo test` on stable),
# write a unit test for it, fix it.
# Without a nightly toolchain the run is skipped with a message; the corpus
# replay (the fuzz_replay tests) still runs in `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."

secs="${1:-20}"
shift || true
if [ $# -gt 0 ]; then
  targets=("$@")
else
  targets=()
  for f in fuzz/fuzz_targets/*.rs; do targets+=("$(basename "$f" .rs)"); done
fi

if ! cargo +nightly --version >/dev/null 2>&1; then
  echo "fuzz: no nightly toolchain here; skipping the fuzz run (the corpora are replayed by cargo test)"
  exit 0
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  echo "== installing cargo-fuzz"
  cargo +nightly install cargo-fuzz --locked
fi

echo "== building ${#targets[@]} fuzz targets"
(cd fuzz && cargo +nightly fuzz build -O)

failed=()
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
for t in "${targets[@]}"; do
  mkdir -p "fuzz/corpus-local/$t"
  rm -rf "fuzz/artifacts/$t"
  echo "== fuzz $t for ${secs}s"
  # An input using more than 2 GiB or 10 s counts as a failure too.
  status=0
  (cd fuzz && cargo +nightly fuzz run -O "$t" "corpus-local/$t" "corpus/$t" -- \
      -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1) >"$log" 2>&1 || status=$?
  grep -E "^(Done|stat::number_of_executed_units|stat::new_units_added)|ERROR|panicked|Test unit written|SUMMARY" "$log" || true
  if [ "$status" -ne 0 ]; then
    tail -40 "$log"
    echo "fuzz: $t failed (exit $status); the input is in fuzz/artifacts/$t/"
    failed+=("$t")
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: failures in ${failed[*]}"
  exit 1
fi
echo "fuzz: ${#targets[@]} targets, ${secs}s each, no failure"
