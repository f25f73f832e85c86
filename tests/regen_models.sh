#!/bin/sh
# Generates the synthetic test models from the shared material into the build tree
# (cached: regen.sh keeps a file whose sha256 already matches). Never writes into shared.
OUT=$1
SHARED=${CHATD_SHARED:-$2}
if [ ! -d "$SHARED/models" ]; then
  if [ -n "${CHATD_REQUIRE_SHARED:-}" ] && [ "$CHATD_REQUIRE_SHARED" != 0 ]; then
    echo "FAIL (CHATD_REQUIRE_SHARED is set): shared test material not found at $SHARED"; exit 1
  fi
  echo "SKIP: shared test material not found at $SHARED (set CHATD_SHARED)"; exit 77
fi
exec sh "$SHARED/models/regen.sh" "$OUT"
