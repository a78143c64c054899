#!/usr/bin/env bash
# Builds mpmeter's container image with podman (scripts/image.sh: the
# static binary FROM scratch), runs it the way
# examples/github-actions/mpmeter.yml's service container does, and meters
# through the published port (test_image.py).
#
# Skips, saying why, where podman is missing or cannot run containers;
# MPMETER_REQUIRE_CONTAINERS=1 makes that a failure. .ci/run installs
# podman and runc (Debian's).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cd "$repo"

skip() {
	echo "SKIPPED: container test: $*" >&2
	if [[ "${MPMETER_REQUIRE_CONTAINERS:-}" == 1 ]]; then exit 1; fi
	exit 0
}
command -v podman >/dev/null || skip "podman is not installed (apt-get install -y podman runc)"

work="$(mktemp -d)"
tag="localhost/mpmeter-citest:$$"
cleanup() {
	podman rmi -f "$tag" >/dev/null 2>&1 || true
	# The prebuilt stage's untagged image, a new one per binary.
	podman image prune -f --filter label=io.mpmeter.stage=prebuilt >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT

# Debian's podman on these machines: runc as the runtime, no default
# ulimits (raising RLIMIT_NOFILE is refused: "error setting rlimit type
# 7"), no systemd for cgroups or events.
cat > "$work/containers.conf" <<'CONF'
[containers]
default_ulimits = []

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
export CONTAINERS_CONF="$work/containers.conf"
podman --version

export VERSION="v0.0.0-citest" DATE="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
export COMMIT="$(git rev-parse HEAD 2>/dev/null || echo unknown)"
bash scripts/image.sh "$tag"

# Can this machine run a container at all? podman's own failures exit
# 125-127; anything else is the image's, and a failure.
set +e
probe="$(podman run --rm --no-healthcheck "$tag" version 2>&1)"
rc=$?
set -e
if [[ $rc -ge 125 ]]; then
	skip "podman cannot run containers here (exit $rc): $probe"
elif [[ $rc -ne 0 ]]; then
	echo "mpmeter version in the image failed (exit $rc): $probe" >&2
	exit 1
fi

python=python3
python3 -c 'import boto3, yaml' 2>/dev/null || python=/usr/bin/python3
MPMETER_IMAGE="$tag" MPMETER_IMAGE_VERSION="$VERSION" MPMETER_IMAGE_COMMIT="$COMMIT" \
	"$python" -m unittest discover -s "$here" -p 'test_*.py' -v
