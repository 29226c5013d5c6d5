#!/usr/bin/env bash
# Builds the web UI into src/opencode_relay/web/dist (not committed).
set -euo pipefail
cd "$(dirname "$0")/../web" 2>/dev/null || exit 0
[ -f package.json ] || exit 0
if [ ! -f node_modules/.installed ] || [ package-lock.json -nt node_modules/.installed ]; then
  npm install --no-audit --no-fund --loglevel=error
  touch node_modules/.installed
fi
npm run --silent build
