#!/usr/bin/env bash
# Runs the Node.js end-to-end tests of mpmeter: the AWS SDK for JavaScript v3
# against a real `mpmeter serve --demo` (one per test file, on a free port).
#
#   test/node/run.sh                          # build ./cmd/mpmeter, run all tests
#   MPMETER_BIN=/path/to/mpmeter test/node/run.sh
#   test/node/run.sh --test-name-pattern=RegisterUsage
#
# Extra arguments go to `node --test`. Needs Node.js >= 20 and, unless
# MPMETER_BIN is set, Go.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cd "$here"

# Install the exact locked dependencies when node_modules is missing or was
# installed from another package-lock.json.
stamp="node_modules/.mpmeter-lock-sha256"
want="$(sha256sum package-lock.json | cut -d' ' -f1)"
if [[ ! -d node_modules || ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
  echo "run.sh: npm ci" >&2
  npm ci --no-audit --no-fund --loglevel=error
  echo "$want" > "$stamp"
fi

if [[ -z "${MPMETER_BIN:-}" ]]; then
  out="${TMPDIR:-/tmp}/mpmeter-node"
  mkdir -p "$out"
  echo "run.sh: go build -o $out/mpmeter ./cmd/mpmeter" >&2
  (cd "$repo" && go build -o "$out/mpmeter" ./cmd/mpmeter)
  MPMETER_BIN="$out/mpmeter"
fi
if [[ ! -x "$MPMETER_BIN" ]]; then
  echo "run.sh: MPMETER_BIN=$MPMETER_BIN is not an executable" >&2
  exit 1
fi
export MPMETER_BIN
# The SDK warns once per process that its 2027 releases need Node 22.
export AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED=true

exec node --test --test-timeout=120000 "$@" "$here"/*.test.js
