#!/usr/bin/env bash
# Runs the Vitest example against $MPMETER_BIN, or a binary built from this
# checkout. node_modules comes from package-lock.json (npm ci).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"
stamp="node_modules/.mpmeter-lock-sha256"
want="$(sha256sum package-lock.json | cut -d' ' -f1)"
if [[ ! -d node_modules || ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
	npm ci --no-audit --no-fund --loglevel=error
	echo "$want" > "$stamp"
fi
if [[ -z "${MPMETER_BIN:-}" ]]; then
	tmp="$(mktemp -d)"
	trap 'rm -rf "$tmp"' EXIT
	(cd "$here/../.." && go build -o "$tmp/mpmeter" ./cmd/mpmeter)
	export MPMETER_BIN="$tmp/mpmeter"
fi
export AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED=true
npx vitest run "$@"
