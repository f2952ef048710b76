#!/usr/bin/env bash
# Builds Flux's kustomize-controller (start.sh --kustomize) into a cache keyed by flux-kustomize.env,
# apart from build-flux.sh's cache; prints the cache directory.
#   bin/kustomize-controller  from its Go module (a consumer module, flux-lib.sh)
#   crds/flux/*.yaml          its CRDs (Kustomization), from the same module zip
# With --check: only say whether it is built (exit 1 when not).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=flux-kustomize.env
source "$here/flux-kustomize.env"
key="$(sha256sum < "$here/flux-kustomize.env" | cut -c1-16)"
root="${RIG_FLUX_KUSTOMIZE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/spin-aks/kube-rig-flux-kustomize}"
cache="$root/$key"
bin="$cache/bin"
log() { echo "kube-rig-flux-kustomize: $*" >&2; }

complete() { [ -x "$bin/kustomize-controller" ] && [ -n "$(ls "$cache"/crds/flux/*.yaml 2>/dev/null)" ]; }
if complete; then echo "$cache"; exit 0; fi
if [ "${1:-}" = "--check" ]; then log "not built (run without --check to build)"; exit 1; fi
command -v go >/dev/null || { log "go is not installed"; exit 1; }
mkdir -p "$bin" "$cache/crds/flux" "$cache/work"
export CGO_ENABLED=0 GOFLAGS=-buildvcs=false
started=$SECONDS
# shellcheck source=flux-lib.sh
source "$here/flux-lib.sh"
build_controller kustomize-controller "$KUSTOMIZE_CONTROLLER_VERSION"
chmod -R u+w "$cache/crds"
complete || { log "build finished but parts are missing in $cache"; exit 1; }
log "built in $((SECONDS - started)) s into $cache"
find "$root" -mindepth 1 -maxdepth 1 -type d ! -name "$key" -exec rm -rf {} +
echo "$cache"
