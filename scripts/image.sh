#!/usr/bin/env bash
# Builds mpmeter's container image from a static binary compiled on this
# host: no base image is pulled (FROM scratch), so it works where no
# container registry is reachable. The Containerfile's default path
# compiles in the golang image instead (docs/container.md).
#
#   scripts/image.sh [TAG]            default TAG: localhost/mpmeter:latest
#   CONTAINER_ENGINE=docker scripts/image.sh mpmeter:dev
#   VERSION=v1.2.0 scripts/image.sh   name the build (default: git describe)
set -euo pipefail
cd "$(dirname "$0")/.."

tag="${1:-localhost/mpmeter:latest}"
engine="${CONTAINER_ENGINE:-podman}"
version="${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}"
commit="${COMMIT:-$(git rev-parse HEAD 2>/dev/null || echo unknown)}"
date="${DATE:-$(date -u +%Y-%m-%dT%H:%M:%SZ)}"

ctx="$(mktemp -d)"
trap 'rm -rf "$ctx"' EXIT
mkdir -p "$ctx/bin/image/data"
CGO_ENABLED=0 go build -trimpath -buildvcs=false \
	-ldflags "-s -w -X main.version=$version -X main.commit=$commit -X main.date=$date" \
	-o "$ctx/bin/image/mpmeter" ./cmd/mpmeter

format=()
# podman/buildah default to the OCI format, which drops HEALTHCHECK.
[[ "$engine" == docker ]] || format=(--format docker)
"$engine" build "${format[@]}" --build-arg BINARY_SOURCE=prebuilt -f Containerfile -t "$tag" "$ctx"
echo "image.sh: built $tag ($version, commit $commit)" >&2
