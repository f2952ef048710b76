#!/usr/bin/env bash
# Builds the Notary Project's `notation` CLI, the independent verifier of spin-aks's signatures
# (tests/it/notation.rs), from the Go module proxy into a cache keyed by its version; prints the binary.
# Cached: a second run only checks the file exists. With --check: only say whether it is built.
# NOTATION_CACHE (default ${XDG_CACHE_HOME:-~/.cache}/spin-aks/notation) holds one folder per version.
set -euo pipefail
NOTATION_VERSION=v1.3.2
cache="${NOTATION_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/spin-aks/notation}/$NOTATION_VERSION"
bin="$cache/notation"
if [ -x "$bin" ]; then echo "$bin"; exit 0; fi
if [ "${1:-}" = "--check" ]; then echo "notation: not built (run without --check to build)" >&2; exit 1; fi
command -v go >/dev/null || { echo "notation: go is not installed" >&2; exit 1; }
export CGO_ENABLED=0 GOFLAGS=-buildvcs=false
work="$cache/work"
mkdir -p "$work" && cd "$work"
# A consumer module, so the tool's own replace directives do not apply and the version is pinned.
package=github.com/notaryproject/notation/cmd/notation
printf 'module spinaks.test/notation\ngo 1.24.0\ntool %s\nrequire github.com/notaryproject/notation %s\n' \
  "$package" "$NOTATION_VERSION" > go.mod
go mod tidy >&2
echo "notation: building $NOTATION_VERSION" >&2
go build -trimpath -ldflags="-s -w -X github.com/notaryproject/notation/internal/version.Version=$NOTATION_VERSION -X github.com/notaryproject/notation/internal/version.BuildMetadata=" \
  -o "$bin.tmp" "$package"
mv "$bin.tmp" "$bin"
# Older versions are not needed any more.
find "$(dirname "$cache")" -mindepth 1 -maxdepth 1 -type d ! -name "$NOTATION_VERSION" -exec rm -rf {} +
echo "$bin"
