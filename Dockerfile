# chatd in a container: built on Debian bookworm, run from a slim image that holds only
# the binary and its runtime libraries. The model is not in the image; mount it:
#   docker build -t chatd .
#   docker run --rm -p 8080:8080 -v "$HOME/models:/models:ro" \
#     -e CHATD_MODEL=/models/qwen2.5-0.5b-instruct-q4_k_m.gguf chatd

# ---- build: the same packages and commands as the plain build ----
FROM debian:bookworm AS build
# The --runtime-only package set of scripts/install-deps.sh.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      build-essential cmake pkg-config libmicrohttpd-dev libcjson-dev libopenblas-dev \
      curl ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cmake -S . -B build -DCMAKE_BUILD_TYPE=Release && cmake --build build -j"$(nproc)"

# ---- runtime ----
FROM debian:bookworm-slim
# curl is only for the HEALTHCHECK below.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libmicrohttpd12 libcjson1 libopenblas0-pthread ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --user-group --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin chatd \
 && mkdir -p /models
COPY --from=build /src/build/chatd /usr/local/bin/chatd

# The model file: mount a directory on /models, or point CHATD_MODEL elsewhere.
ENV CHATD_MODEL=/models/model.gguf
VOLUME ["/models"]
USER chatd
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
  CMD curl -fsS -o /dev/null http://127.0.0.1:8080/health || exit 1
# 0.0.0.0, not chatd's default 127.0.0.1: inside a container the loopback address is not
# reachable from outside, so the server listens on every interface of the container and
# `docker run -p` decides what the host exposes.
CMD ["sh", "-c", "exec chatd serve --host 0.0.0.0 --port 8080 --model \"$CHATD_MODEL\""]
