#!/usr/bin/env bash
# The web console in a real browser: playwright-core drives Debian's
# chromium (/usr/bin/chromium, or $CHROMIUM) against a real `mpmeter serve`.
# Screenshots of every page go to $CONSOLE_SCREENSHOTS (default: a new
# temporary directory; the test prints it).
#
#   test/console/run.sh
#   MPMETER_BIN=/path/to/mpmeter CONSOLE_SCREENSHOTS=/tmp/shots test/console/run.sh
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cd "$here"

chromium="${CHROMIUM:-/usr/bin/chromium}"
if [[ ! -x "$chromium" ]]; then
  # .ci/run installs Debian's chromium; only where that failed is this skipped.
  echo "run.sh: SKIPPED the browser test: no chromium at $chromium (apt-get install chromium, or set CHROMIUM)" >&2
  exit 0
fi
export CHROMIUM="$chromium"

stamp="node_modules/.mpmeter-lock-sha256"
want="$(sha256sum package-lock.json | cut -d' ' -f1)"
if [[ ! -d node_modules || ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
  echo "run.sh: npm ci" >&2
  npm ci --no-audit --no-fund --loglevel=error
  echo "$want" > "$stamp"
fi

if [[ -z "${MPMETER_BIN:-}" ]]; then
  out="${TMPDIR:-/tmp}/mpmeter-console"
  mkdir -p "$out"
  (cd "$repo" && go build -o "$out/mpmeter" ./cmd/mpmeter)
  MPMETER_BIN="$out/mpmeter"
fi
export MPMETER_BIN

exec node --test --test-concurrency=1 --test-timeout=180000 "$@" "$here"/*.test.js
