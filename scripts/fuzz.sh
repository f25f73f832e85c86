#!/bin/sh
# Runs every libFuzzer harness built in BUILD for SECONDS each, starting from its seed
# corpus in tests/fuzz/corpus/NAME (new inputs go to a scratch copy, not into git).
set -eu
BUILD=$1
SECONDS_EACH=${2:-60}
HERE=$(cd "$(dirname "$0")/.." && pwd)
status=0
for bin in "$BUILD"/tests/fuzz/fuzz_*; do
  case "$bin" in *_replay) continue ;; esac
  [ -x "$bin" ] || continue
  name=$(basename "$bin")
  work=$(mktemp -d)
  cp -r "$HERE/tests/fuzz/corpus/$name/." "$work/" 2>/dev/null || true
  echo "fuzz: $name for ${SECONDS_EACH}s"
  if ! "$bin" -max_total_time="$SECONDS_EACH" -print_final_stats=1 -rss_limit_mb=4096 \
      -artifact_prefix="$BUILD/$name-" "$work" 2>"$BUILD/$name.log"; then
    echo "fuzz: $name FAILED (log: $BUILD/$name.log)"; tail -40 "$BUILD/$name.log"; status=1
  fi
  grep -E "stat::number_of_executed_units|cov:" "$BUILD/$name.log" | tail -2
  rm -rf "$work"
done
exit $status
