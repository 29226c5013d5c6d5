# opencode-relay's container image: the relay (Python), its built web UI, and the pinned
# opencode (npm's opencode-ai, a native binary) so one image serves as the relay and, in
# deploy/compose.yaml, as the opencode server too.
#
#   docker build -t opencode-relay .
#   docker run -p 8000:8000 -e REDIS_URL=redis://redis:6379/0 opencode-relay
#
# Runs as the unprivileged user `relay` (uid 10001). `serve --host 0.0.0.0` turns auth on by
# itself (RELAY_AUTH); create a token with `docker exec … opencode-relay token create`.
#
# The base images are arguments: where no registry can be pulled from,
# scripts/local_base_images.sh builds it on images made from a Debian debootstrap (NODE_IMAGE
# with node 20 and npm 10, PYTHON_IMAGE with Debian's python3 and pip).
ARG NODE_IMAGE=node:20-bookworm-slim
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- 1. the web UI and the pinned opencode, built with node -------------------------------
FROM ${NODE_IMAGE} AS node
WORKDIR /build
# opencode-ai's postinstall links the native binary of this platform into bin/opencode.exe.
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund --loglevel=error \
 && cp -L node_modules/opencode-ai/bin/opencode.exe /build/opencode \
 && /build/opencode --version
COPY web/ web/
RUN cd web && npm ci --no-audit --no-fund --loglevel=error && npm run --silent build

# --- 2. the Python package, as a wheel with the built UI inside ---------------------------
FROM ${PYTHON_IMAGE} AS wheel
WORKDIR /build
COPY pyproject.toml README.md ./
COPY src/ src/
COPY --from=node /build/src/opencode_relay/web/dist/ src/opencode_relay/web/dist/
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels . \
 && pip wheel --no-cache-dir --wheel-dir /wheels "$(ls /wheels/opencode_relay-*.whl)"

# --- 3. what runs -------------------------------------------------------------------------
FROM ${PYTHON_IMAGE}
# git: opencode snapshots projects with it (undo) and the relay makes its default workspace a
# repository; redis-server: the embedded Redis when REDIS_URL is unset (one container, trying
# it out); ca-certificates: model providers over HTTPS.
RUN apt-get update \
 && apt-get install -y --no-install-recommends git redis-server ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --create-home --uid 10001 --user-group relay \
 && mkdir -p /data /workspace && chown relay:relay /data /workspace
COPY --from=wheel /wheels /tmp/wheels
RUN pip install --no-cache-dir --no-index --find-links /tmp/wheels opencode-relay \
 && rm -rf /tmp/wheels
COPY --from=node /build/opencode /usr/local/bin/opencode

USER relay
WORKDIR /home/relay
ENV RELAY_DATA_DIR=/data \
    RELAY_WORKSPACE_ROOTS=/workspace \
    OPENCODE_DEFAULT_DIRECTORY=/workspace \
    RELAY_LOG_FORMAT=json \
    PYTHONUNBUFFERED=1
VOLUME ["/data", "/workspace"]
EXPOSE 8000
# Liveness only (the process answers); a load balancer asks /readyz (README, "Scaling out").
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"
CMD ["opencode-relay", "serve", "--host", "0.0.0.0", "--port", "8000"]
