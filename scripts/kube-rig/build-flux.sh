#!/usr/bin/env bash
# Builds the rig's Flux parts (start.sh --flux) into a cache keyed by flux.env, apart from the control
# plane's cache so that a rig without --flux never waits for them; prints the cache directory.
#   bin/source-controller, bin/helm-controller  from their Go modules (a consumer module each)
#   crds/flux/*.yaml                            their CRDs, from the same module zips
#   charts/*.tgz                                upstream charts packaged from their module zips
#   upstream/...                                the operator's release files (copy_upstream below)
# With --check: only say whether it is built (exit 1 when not).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=flux.env
source "$here/flux.env"
key="$(sha256sum < "$here/flux.env" | cut -c1-16)"
root="${RIG_FLUX_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/spin-aks/kube-rig-flux}"
cache="$root/$key"
bin="$cache/bin"
log() { echo "kube-rig-flux: $*" >&2; }

complete() {
  [ -x "$bin/source-controller" ] && [ -x "$bin/helm-controller" ] && [ -f "$cache/charts/done" ] &&
    [ -f "$cache/upstream/done" ] && [ -n "$(ls "$cache"/crds/flux/*.yaml 2>/dev/null)" ]
}
if complete; then echo "$cache"; exit 0; fi
if [ "${1:-}" = "--check" ]; then echo "kube-rig-flux: not built (run without --check to build)" >&2; exit 1; fi
command -v go >/dev/null || { log "go is not installed"; exit 1; }
mkdir -p "$bin" "$cache/crds/flux" "$cache/work"
export CGO_ENABLED=0 GOFLAGS=-buildvcs=false
started=$SECONDS

# shellcheck source=flux-lib.sh
source "$here/flux-lib.sh"

# Charts, packaged as their release processes do (version fields set at packaging time).
package_chart() { # module-dir chart-subdir chart-version app-version
  local dir="$1" sub="$2" chart_version="$3" app_version="$4" stage
  stage="$cache/work/charts/$(basename "$sub")"
  rm -rf "$stage" && mkdir -p "$stage" && cp -r "$dir/$sub/." "$stage" && chmod -R u+w "$stage"
  helm package --version "$chart_version" --app-version "$app_version" -d "$cache/charts" "$stage" >&2
}
package_charts() {
  [ -f "$cache/charts/done" ] && return
  command -v helm >/dev/null || { log "helm is not installed (scripts/install-test-tools.sh installs it)"; exit 1; }
  rm -rf "$cache/charts" && mkdir -p "$cache/charts"
  local cm rcm op
  cm="$(module_dir github.com/cert-manager/cert-manager "$CERT_MANAGER_VERSION")"
  # cert-manager keeps a Chart.template.yaml whose version fields its release tool fills in
  # (make/manifests.mk: version = appVersion = the release, prerelease annotation); we do the same.
  package_chart_cert_manager() {
    local stage="$cache/work/charts/cert-manager"
    rm -rf "$stage" && mkdir -p "$stage" && cp -r "$cm/deploy/charts/cert-manager/." "$stage" && chmod -R u+w "$stage"
    sed -e 's/{{IS_PRERELEASE}}/false/' "$stage/Chart.template.yaml" > "$stage/Chart.yaml"
    rm -f "$stage/Chart.template.yaml" "$stage/README.template.md" "$stage/signkey_annotation.txt" "$stage/values.linter.exceptions"
    helm package --version "$CERT_MANAGER_VERSION" --app-version "$CERT_MANAGER_VERSION" -d "$cache/charts" "$stage" >&2
  }
  package_chart_cert_manager
  # runtime-class-manager v0.2.0's zip is served under github.com/spinkube/runtime-class-manager
  # (its go.mod already says spinframework, which the proxy does not serve); chart in deploy/helm.
  # Its release workflow packages with the version minus its v, appVersion the tag.
  rcm="$(module_dir github.com/spinkube/runtime-class-manager "$RUNTIME_CLASS_MANAGER_VERSION")"
  package_chart "$rcm" deploy/helm "${RUNTIME_CLASS_MANAGER_VERSION#v}" "$RUNTIME_CLASS_MANAGER_VERSION"
  # spin-operator v0.6.1 (module github.com/spinkube/spin-operator): chart version without its v.
  op="$(module_dir github.com/spinkube/spin-operator "$SPIN_OPERATOR_CHART_VERSION")"
  package_chart "$op" charts/spin-operator "${SPIN_OPERATOR_CHART_VERSION#v}" "$SPIN_OPERATOR_CHART_VERSION"
  touch "$cache/charts/done"
}

# What a real install fetches besides charts, laid out to be served over loopback HTTP:
#   upstream/spin-operator/<v>/spin-operator.crds.yaml, spin-operator.shim-executor.yaml
#     (the release assets, made as the operator's Makefile `dist` target makes them)
#   upstream/goproxy/<module>/@v/<v>.{info,mod,zip}  (a GOPROXY-style mirror of the operator module)
copy_upstream() {
  [ -f "$cache/upstream/done" ] && return
  local v="$SPIN_OPERATOR_CHART_VERSION" module=github.com/spinkube/spin-operator dir json out proxy
  rm -rf "$cache/upstream"
  out="$cache/upstream/spin-operator/$v" proxy="$cache/upstream/goproxy/$module/@v"
  mkdir -p "$out" "$proxy"
  json="$(module_json "$module" "$v")"
  dir="$(sed -n 's/.*"Dir": "\(.*\)".*/\1/p' <<<"$json")"
  for f in "$dir"/config/crd/bases/*.yaml; do cat "$f"; done > "$out/spin-operator.crds.yaml"
  cp "$dir/config/samples/spin-shim-executor.yaml" "$out/spin-operator.shim-executor.yaml"
  for pair in Info:info GoMod:mod Zip:zip; do
    cp "$(sed -n 's/.*"'"${pair%:*}"'": "\(.*\)".*/\1/p' <<<"$json")" "$proxy/$v.${pair#*:}"
  done
  chmod -R u+w "$cache/upstream"
  touch "$cache/upstream/done"
}

build_controller source-controller "$SOURCE_CONTROLLER_VERSION" \
  "replace github.com/fluxcd/pkg/artifact => github.com/fluxcd/pkg/artifact $FLUXCD_PKG_ARTIFACT_REPLACE"
build_controller helm-controller "$HELM_CONTROLLER_VERSION"
chmod -R u+w "$cache/crds"
package_charts
copy_upstream
complete || { log "build finished but parts are missing in $cache"; exit 1; }
log "built in $((SECONDS - started)) s into $cache"
# Older version sets are not needed any more.
find "$root" -mindepth 1 -maxdepth 1 -type d ! -name "$key" -exec rm -rf {} +
echo "$cache"
