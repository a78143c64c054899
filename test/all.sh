#!/usr/bin/env bash
# Runs every test: go vet, staticcheck, that go generate's output is
# committed, the Go tests (aws-sdk-go v1 against in-process
# servers, the store conformance suite on SQLite and — when
# MPMETER_TEST_POSTGRES_DSN is set — PostgreSQL), then the boto3/AWS CLI and
# JavaScript v3 suites against a real `mpmeter serve` process, the examples
# (examples/), and the container image with podman. The fuzz targets run for
# MPMETER_FUZZTIME each (default 10s).
set -euo pipefail
cd "$(dirname "$0")/.."

bin_dir=$(mktemp -d)
trap 'rm -rf "$bin_dir"' EXIT
export MPMETER_BIN="$bin_dir/mpmeter"

echo "== go vet"
go vet ./...
# A pinned version, fetched through the module proxy on a new machine.
echo "== staticcheck"
go run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...
echo "== govulncheck (skipped, with a message, where no vulnerability database can be read)"
bash scripts/govulncheck.sh
echo "== go generate output committed"
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	# Compared with the tree as it was, so uncommitted work elsewhere is no
	# failure; only what go generate changes is.
	before=$(git diff; git status --porcelain)
	go generate ./...
	after=$(git diff; git status --porcelain)
	if [ "$before" != "$after" ]; then
		echo "go generate changed the tree: run it and commit its output" >&2
		git status --short >&2
		exit 1
	fi
else
	echo "(not a git checkout: skipped)"
fi
echo "== docs: every link resolves, every guide is linked from the README"
python3 scripts/check-docs.py
echo "== web console assets equal the pinned npm packages (web/vendor.sh --check)"
bash web/vendor.sh --check
echo "== go build"
go build -o "$MPMETER_BIN" ./cmd/mpmeter
echo "== go test"
go test -count=1 ./...
echo "== fuzz (each target for a bounded time; a crasher fails the run and becomes a testdata/fuzz regression)"
fuzztime=${MPMETER_FUZZTIME:-10s}
for target in awsjson:FuzzDecodeValidate sigv4:FuzzParseAuthorization sigv4:FuzzVerifyForgery sigv4:FuzzSDKSigned seed:FuzzParse mpmetertest:FuzzHandler admin:FuzzAdminAPI; do
    go test -run '^$' -fuzz "^${target#*:}\$" -fuzztime "$fuzztime" -parallel 2 "./${target%%:*}"
done
echo "== Python suite (boto3, AWS CLI)"
bash test/python/run.sh
echo "== Node suite (AWS SDK for JavaScript v3)"
bash test/node/run.sh
echo "== examples (Go's runs in go test; pytest fixture, Vitest global setup)"
bash examples/python/run.sh
bash examples/node/run.sh
echo "== web console in a real browser (playwright-core, Debian's chromium)"
bash test/console/run.sh
echo "== container image (podman; skipped where containers cannot run)"
bash test/container/run.sh
echo "== all tests passed"
