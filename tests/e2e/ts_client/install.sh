#!/usr/bin/env bash
# Installs what tests/e2e/test_generated_client.py needs (openapi-typescript, openapi-fetch, typescript)
# from package-lock.json into node_modules here, as web/build.sh installs Uppy: idempotent, and again
# only when the lock file changed. npm's cache first (--offline: nothing reached), then the registry.
# Needs node >= 18 and npm; `make e2e` and `make test` call it, the test too when node_modules is missing.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
if [ -x node_modules/.bin/openapi-typescript ] && [ -x node_modules/.bin/tsc ] \
   && [ ! package-lock.json -nt node_modules/.package-lock.json ]; then
  exit 0
fi
npm ci --offline --no-audit --no-fund --loglevel=error 2>/dev/null \
  || npm ci --no-audit --no-fund --loglevel=error
