#!/bin/sh
# Writes the qwen2-tiny preset (seed 1) in every quantization recipe into $1, for
# test_quant_error. The generator is deterministic, so a file that already exists and is not
# empty is kept. Never writes into shared.
#   usage: sh make_quant_models.sh OUTDIR [SHARED]      ($CHATD_SHARED overrides SHARED)
set -eu
OUT=$1
SHARED=${CHATD_SHARED:-${2:-}}
if [ ! -f "$SHARED/tools/make_test_model.py" ]; then
  if [ -n "${CHATD_REQUIRE_SHARED:-}" ] && [ "$CHATD_REQUIRE_SHARED" != 0 ]; then
    echo "FAIL (CHATD_REQUIRE_SHARED is set): shared test material not found at $SHARED"; exit 1
  fi
  echo "SKIP: shared test material not found at $SHARED (set CHATD_SHARED)"; exit 77
fi
PY=/usr/bin/python3
if ! [ -x "$PY" ] || ! "$PY" -c "import numpy" 2>/dev/null; then
  if [ -n "${CHATD_REQUIRE_SHARED:-}" ] && [ "$CHATD_REQUIRE_SHARED" != 0 ]; then
    echo "FAIL (CHATD_REQUIRE_SHARED is set): $PY with numpy is needed"; exit 1
  fi
  echo "SKIP: $PY with numpy is needed to generate the models"; exit 77
fi
mkdir -p "$OUT"
for r in f32 q4_1 q5_0 q5_1 q2_k q3_k_m q5_k_m q4_0 q8_0 q6_k q4_k_m; do
  f="$OUT/qwen2-tiny-$r.gguf"
  if [ -s "$f" ]; then
    echo "ok (kept)    $f"
    continue
  fi
  # the generator writes FILE.tmp and renames it, so an interrupted run leaves no truncated model
  "$PY" "$SHARED/tools/make_test_model.py" --preset qwen2-tiny --quant "$r" --seed 1 -o "$f" \
    > /dev/null
  echo "ok (written) $f"
done
