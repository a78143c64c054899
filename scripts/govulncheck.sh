#!/usr/bin/env bash
# Runs govulncheck (pinned) over the module. The vulnerability database is
# MPMETER_VULNDB when set (a local copy: a directory in the format of
# https://vuln.go.dev, passed as -db file://DIR), else vuln.go.dev; when
# neither can be read (a machine without that network) the check is skipped
# with a message, never passed silently.
set -uo pipefail
cd "$(dirname "$0")/.."
tool=golang.org/x/vuln/cmd/govulncheck@v1.9.0
args=()
if [[ -n "${MPMETER_VULNDB:-}" ]]; then
	args=(-db "file://$(cd "$MPMETER_VULNDB" && pwd)")
fi
out=$(go run "$tool" "${args[@]}" ./... 2>&1)
rc=$?
if [[ $rc -ne 0 ]] && grep -q "fetching vulnerabilities" <<<"$out"; then
	echo "govulncheck: SKIPPED: no vulnerability database could be read (set MPMETER_VULNDB to a local copy):"
	grep "fetching vulnerabilities" <<<"$out" | head -1
	exit 0
fi
printf '%s\n' "$out"
exit $rc
