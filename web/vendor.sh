#!/usr/bin/env bash
# Vendors the console's front-end packages into static/vendor/ from the npm
# registry, at the versions web/assets/package-lock.json pins: the built,
# minified files the pages load, their licenses, and README.md (package, version, file, license). The result is
# committed, so `go build` needs no npm.
#
#   web/vendor.sh           # refresh static/vendor/ (after changing assets/package.json: npm install there first)
#   web/vendor.sh --check   # fail when static/vendor/ differs from what the pinned packages contain (CI)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
assets="$here/assets"
dest="$here/static/vendor"
check=""
[[ "${1:-}" == "--check" ]] && check=yes

cd "$assets"
stamp="node_modules/.mpmeter-lock-sha256"
want="$(sha256sum package-lock.json | cut -d' ' -f1)"
if [[ ! -d node_modules || ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
  npm ci --no-audit --no-fund --loglevel=error >&2
  echo "$want" > "$stamp"
fi

out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
version() { node -p "require('./node_modules/$1/package.json').version"; }
cp node_modules/htmx.org/dist/htmx.min.js "$out/htmx.min.js"
cp node_modules/htmx.org/LICENSE "$out/htmx.LICENSE"
cp node_modules/chart.js/dist/chart.umd.min.js "$out/chart.umd.min.js"
cp node_modules/chart.js/LICENSE.md "$out/chart.js.LICENSE.md"
# Chart.js's UMD build bundles @kurkle/color.
cp node_modules/@kurkle/color/LICENSE.md "$out/kurkle-color.LICENSE.md"
{
  echo "# Vendored front-end packages"
  echo
  echo "Copied by web/vendor.sh from the npm registry at the versions web/assets/package-lock.json pins; do not edit."
  echo "CI (test/all.sh) runs web/vendor.sh --check: these files must equal the pinned packages' own."
  echo
  echo "| package | version | file | license |"
  echo "|---|---|---|---|"
  echo "| htmx.org | $(version htmx.org) | htmx.min.js (dist/htmx.min.js) | 0BSD (htmx.LICENSE) |"
  echo "| chart.js | $(version chart.js) | chart.umd.min.js (dist/chart.umd.min.js) | MIT (chart.js.LICENSE.md) |"
  echo "| @kurkle/color | $(version @kurkle/color) | bundled in chart.umd.min.js | MIT (kurkle-color.LICENSE.md) |"
} > "$out/README.md"

if [[ -n "$check" ]]; then
  if ! diff -r "$out" "$dest" >/dev/null; then
    echo "web/static/vendor/ differs from the packages web/assets/package-lock.json pins: run web/vendor.sh and commit" >&2
    diff -rq "$out" "$dest" >&2 || true
    exit 1
  fi
  echo "web/static/vendor/ matches the pinned npm packages"
  exit 0
fi
rm -rf "$dest"
mkdir -p "$dest"
cp "$out"/* "$dest"/
echo "vendored into $dest:" >&2
cat "$dest/README.md" >&2
