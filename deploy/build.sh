#!/bin/sh
# Builds the herald binary the way the container image does: static (no cgo: the SQLite driver
# is pure Go), trimmed paths, the version stamped in. CI runs this same script and tests the
# binary it makes, so what the image ships is what was tested.
#
#   deploy/build.sh [OUTPUT]        (default: ./herald)
set -eu
out=${1:-herald}
case "$out" in /*) ;; *) out="$(pwd)/$out" ;; esac # relative to where it was called from
cd "$(dirname "$0")/.."
version=${HERALD_VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=$version" -o "$out" ./cmd/herald
echo "built $out ($version)"
