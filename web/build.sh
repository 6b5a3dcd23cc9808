#!/usr/bin/env bash
# Builds web/examples/uppy.bundle.js (+ .css) from npm: Uppy core, dashboard and aws-s3, bundled by esbuild.
# Needs node >= 18 and npm; reaches only the npm registry. Idempotent; `make dev` and `make test` call it.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
src="$here/examples/uppy-src"
cd "$src"
if [ ! -x node_modules/.bin/esbuild ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
node_modules/.bin/esbuild main.js --bundle --minify --format=iife --target=es2020 \
  --outfile="$here/examples/uppy.bundle.js" --log-level=warning
echo "built $here/examples/uppy.bundle.js"
