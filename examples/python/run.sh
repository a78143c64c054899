#!/usr/bin/env bash
# Runs the pytest example (pytest from Debian's python3-pytest) against
# $MPMETER_BIN, or a binary built from this checkout.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [[ -z "${MPMETER_BIN:-}" ]]; then
	tmp="$(mktemp -d)"
	trap 'rm -rf "$tmp"' EXIT
	(cd "$here/../.." && go build -o "$tmp/mpmeter" ./cmd/mpmeter)
	export MPMETER_BIN="$tmp/mpmeter"
fi
# The first Python with both pytest and boto3: the default python3, or
# Debian's (python3-pytest, python3-boto3).
for python in python3 /usr/bin/python3; do
	if "$python" -c 'import pytest, boto3' 2>/dev/null; then
		cd "$here"
		exec "$python" -m pytest -p no:cacheprovider -q "$@"
	fi
done
echo "examples/python: no Python with pytest and boto3 (apt-get install python3-pytest python3-boto3)" >&2
exit 1
