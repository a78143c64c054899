#!/usr/bin/env bash
# Runs mpmeter's Python end-to-end tests (stdlib unittest + boto3/botocore +
# the AWS CLI v1) against a real `mpmeter serve` process.
#
#   test/python/run.sh                 build ./cmd/mpmeter once, run everything
#   MPMETER_BIN=/path/mpmeter run.sh   use that binary instead of building
#   run.sh -k Batch                    extra arguments go to unittest discover
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cd "$repo"

if [[ -z "${MPMETER_BIN:-}" ]]; then
	tmp="$(mktemp -d "${TMPDIR:-/tmp}/mpmeter-py-build.XXXXXX")"
	trap 'rm -rf "$tmp"' EXIT
	echo "run.sh: building ./cmd/mpmeter into $tmp" >&2
	go build -o "$tmp/mpmeter" ./cmd/mpmeter
	export MPMETER_BIN="$tmp/mpmeter"
fi

python3 -m unittest discover -s test/python -t test/python -v "$@"
