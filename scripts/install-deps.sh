#!/bin/sh
# Installs the Debian packages chatd needs to build, test and run, skipping those
# already present. Uses sudo when not root. Safe to run again.
set -eu
PKGS="build-essential cmake pkg-config libmicrohttpd-dev libcjson-dev libopenblas-dev"
# tests: model generation (numpy), clang for libFuzzer and sanitizers, formatting and lint,
# Node for the OpenAI SDK tests, curl/ca-certificates for the model download
PKGS="$PKGS python3 python3-numpy clang libclang-rt-14-dev clang-format cppcheck curl ca-certificates"
# Node.js and npm run the HTTP tests with the official OpenAI SDK. A machine may already
# have a Node.js that bundles npm (e.g. from NodeSource): then Debian's npm must not be
# installed over it.
if ! command -v node >/dev/null 2>&1; then PKGS="$PKGS nodejs"; fi
if ! command -v npm >/dev/null 2>&1; then PKGS="$PKGS npm"; fi
if [ "${1:-}" = "--runtime-only" ]; then
  PKGS="build-essential cmake pkg-config libmicrohttpd-dev libcjson-dev libopenblas-dev curl ca-certificates"
fi
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
SUDO=""
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "install-deps: need root or sudo to install:$missing" >&2; exit 1; }
  SUDO=sudo
fi
echo "install-deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing
