#!/usr/bin/env bash
# Builds Shopify's Toxiproxy server, the TCP fault injector of the API-server fault tests
# (tests/it/api_faults.rs), from the Go module proxy into a cache keyed by its version; prints the binary.
# Cached: a second run only checks the file exists. With --check: only say whether it is built.
# TOXIPROXY_CACHE (default ${XDG_CACHE_HOME:-~/.cache}/spin-aks) holds toxiproxy-<version>/.
set -euo pipefail
TOXIPROXY_VERSION=v2.5.0
root="${TOXIPROXY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/spin-aks}"
cache="$root/toxiproxy-$TOXIPROXY_VERSION"
bin="$cache/toxiproxy-server"
if [ -x "$bin" ]; then echo "$bin"; exit 0; fi
if [ "${1:-}" = "--check" ]; then echo "toxiproxy: not built (run without --check to build)" >&2; exit 1; fi
command -v go >/dev/null || { echo "toxiproxy: go is not installed" >&2; exit 1; }
export CGO_ENABLED=0 GOFLAGS=-buildvcs=false
work="$cache/work"
mkdir -p "$work" && cd "$work"
# A consumer module pins the version; its go.sum comes from the proxy's checksums.
package=github.com/Shopify/toxiproxy/v2/cmd/server
printf 'module spinaks.test/toxiproxy\ngo 1.24.0\ntool %s\nrequire github.com/Shopify/toxiproxy/v2 %s\n' \
  "$package" "$TOXIPROXY_VERSION" > go.mod
go mod tidy >&2
echo "toxiproxy: building $TOXIPROXY_VERSION" >&2
go build -trimpath -ldflags="-s -w -X github.com/Shopify/toxiproxy/v2.Version=$TOXIPROXY_VERSION" \
  -o "$bin.tmp" "$package"
mv "$bin.tmp" "$bin"
# Older versions are not needed any more.
find "$root" -mindepth 1 -maxdepth 1 -type d -name 'toxiproxy-*' ! -name "toxiproxy-$TOXIPROXY_VERSION" -exec rm -rf {} +
echo "$bin"
