#!/usr/bin/env bash
# Runs every test: go vet, the Go tests (aws-sdk-go v1 against in-process
# servers, the store conformance suite on SQLite and — when
# MPMETER_TEST_POSTGRES_DSN is set — PostgreSQL), then the boto3/AWS CLI and
# JavaScript v3 suites against a real `mpmeter serve` process. The fuzz
# targets run for MPMETER_FUZZTIME each (default 10s).
set -euo pipefail
cd "$(dirname "$0")/.."

bin_dir=$(mktemp -d)
trap 'rm -rf "$bin_dir"' EXIT
export MPMETER_BIN="$bin_dir/mpmeter"

echo "== go vet"
go vet ./...
echo "== go build"
go build -o "$MPMETER_BIN" ./cmd/mpmeter
echo "== go test"
go test -count=1 ./...
echo "== fuzz (each target for a bounded time; a crasher fails the run and becomes a testdata/fuzz regression)"
fuzztime=${MPMETER_FUZZTIME:-10s}
for target in awsjson:FuzzDecodeValidate sigv4:FuzzParseAuthorization sigv4:FuzzVerifyForgery seed:FuzzParse mpmetertest:FuzzHandler; do
    go test -run '^$' -fuzz "^${target#*:}\$" -fuzztime "$fuzztime" -parallel 2 "./${target%%:*}"
done
echo "== Python suite (boto3, AWS CLI)"
bash test/python/run.sh
echo "== Node suite (AWS SDK for JavaScript v3)"
bash test/node/run.sh
echo "== all tests passed"
