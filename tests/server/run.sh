#!/bin/sh
# Runs the HTTP server tests (node's test runner) against the chatd binary of a build.
#   run.sh BUILD_DIR [test files...]
# Installs the pinned npm packages (package-lock.json) on first use.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
BUILD=$1
shift
if ! command -v node >/dev/null 2>&1; then
  if [ -n "${CHATD_REQUIRE_SHARED:-}" ] && [ "$CHATD_REQUIRE_SHARED" != 0 ]; then
    echo "FAIL: node is not installed"; exit 1
  fi
  echo "SKIP: node is not installed (the server tests need Node.js)"; exit 77
fi
if [ ! -d "$HERE/node_modules/openai" ]; then
  (cd "$HERE" && npm ci --no-audit --no-fund --loglevel=error)
fi
export CHATD_BIN="$BUILD/chatd"
export CHATD_MODELS_DIR="${CHATD_MODELS_DIR:-$BUILD/models}"
cd "$HERE"
if [ $# -eq 0 ]; then set -- *.test.mjs; fi
exec node --test --test-concurrency=1 "$@"
