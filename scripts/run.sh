#!/bin/sh
# scripts/run.sh CHATD - what `make run` runs: find the model, then start chatd on it.
#
# The model is $CHATD_MODEL when set (it must exist). Otherwise it is the default model,
# Qwen2.5-0.5B-Instruct Q4_K_M, in the cache directory
#   ${CHATD_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/chatd}/models/
# downloaded from Hugging Face the first time (about 490 MB) and checked (size, sha256,
# and that `chatd info` reads it) before it is put in place.
#
# Then: `chatd serve --model MODEL $CHATD_ARGS` when this chatd has a `serve` command,
# otherwise `chatd info MODEL`.
set -eu

CHATD=${1:-build/chatd}
if [ ! -x "$CHATD" ]; then
  echo "run: $CHATD is not an executable; build it first (make build)" >&2
  exit 1
fi

# The official GGUF release by the Qwen team. Size and sha256 are those of the Git LFS
# object of this file (repository revision 9217f5db79a29953eb74d5343926648285ec7e67).
MODEL_NAME=qwen2.5-0.5b-instruct-q4_k_m.gguf
MODEL_URL=https://huggingface.co/Qwen/Qwen2.5-0.5B-Instruct-GGUF/resolve/main/$MODEL_NAME
MODEL_SIZE=491400032
MODEL_SHA256=74a4da8c9fdbcd15bd1f6d01d621410d31c6fc00986f5eb687824e7b93d7a9db

local_model_hint() {
  cat >&2 <<EOF
run: to use a GGUF model file you already have, point CHATD_MODEL at it, e.g.
  CHATD_MODEL=../shared/models/stories260K.gguf make run
EOF
}

file_size() { wc -c <"$1" | tr -d ' '; }

file_sha256() {
  if command -v sha256sum >/dev/null 2>&1; then
    sha256sum "$1" | cut -d' ' -f1
  else
    shasum -a 256 "$1" | cut -d' ' -f1
  fi
}

# --connect-timeout: fail fast when offline; --speed-*: give up on a stalled transfer;
# -C -: continue a partial download.
fetch() {
  curl -fL --progress-bar --connect-timeout 10 --speed-limit 1024 --speed-time 60 \
    -C - -o "$1" "$MODEL_URL"
}

# Downloads the default model to $MODEL through $MODEL.part (kept on failure, so that a
# second run resumes it), verifies it and renames it into place.
download_model() {
  part=$MODEL.part
  mkdir -p "$(dirname "$MODEL")"
  if ! command -v curl >/dev/null 2>&1; then
    echo "run: curl is needed to download the default model (sudo apt-get install curl)" >&2
    local_model_hint
    exit 1
  fi
  have=0
  [ -f "$part" ] && have=$(file_size "$part")
  if [ "$have" -gt "$MODEL_SIZE" ]; then
    rm -f "$part"
    have=0
  fi
  if [ "$have" -lt "$MODEL_SIZE" ]; then
    echo "run: downloading the default model ($MODEL_SIZE bytes) to $MODEL" >&2
    echo "     from $MODEL_URL" >&2
    rc=0
    fetch "$part" || rc=$?
    if [ "$rc" = 33 ]; then # the server cannot resume: start again from the first byte
      rm -f "$part"
      rc=0
      fetch "$part" || rc=$?
    fi
    if [ "$rc" != 0 ]; then
      echo "run: could not download the default model (curl exit status $rc: offline?)" >&2
      [ -s "$part" ] && echo "run: the next run resumes the partial download $part" >&2
      local_model_hint
      exit 1
    fi
  fi
  size=$(file_size "$part")
  if [ "$size" != "$MODEL_SIZE" ]; then
    rm -f "$part"
    echo "run: the download has $size bytes, expected $MODEL_SIZE; removed it, run again" >&2
    exit 1
  fi
  echo "run: checking sha256" >&2
  sum=$(file_sha256 "$part")
  if [ "$sum" != "$MODEL_SHA256" ]; then
    rm -f "$part"
    echo "run: sha256 mismatch for the download: got $sum, expected $MODEL_SHA256; removed it" >&2
    exit 1
  fi
  if ! "$CHATD" info "$part" >/dev/null; then
    # The bytes are the published ones, so this is chatd's fault: keep the file.
    echo "run: the download is intact (sha256 matches) but chatd info cannot read it: $part" >&2
    exit 1
  fi
  mv -f "$part" "$MODEL"
  echo "run: model ready: $MODEL" >&2
}

if [ -n "${CHATD_MODEL:-}" ]; then
  MODEL=$CHATD_MODEL
  if [ ! -f "$MODEL" ]; then
    echo "run: CHATD_MODEL=$MODEL: no such file" >&2
    exit 1
  fi
else
  CACHE_DIR=${CHATD_CACHE_DIR:-${XDG_CACHE_HOME:-${HOME:?set HOME or CHATD_CACHE_DIR}/.cache}/chatd}
  MODEL=$CACHE_DIR/models/$MODEL_NAME
  [ -f "$MODEL" ] || download_model
fi

if "$CHATD" serve --help >/dev/null 2>&1; then
  # CHATD_ARGS is split into words on purpose: CHATD_ARGS="--port 9000 --threads 2".
  # shellcheck disable=SC2086
  exec "$CHATD" serve --model "$MODEL" ${CHATD_ARGS:-}
fi
echo "run: this chatd has no server yet (no 'chatd serve'); describing the model instead" >&2
exec "$CHATD" info "$MODEL"
