#!/usr/bin/env bash
# Smoke test of the rig's Flux mode: starts a bare rig with --flux, then installs the three upstream
# charts from the rig's chart registry through source-controller and helm-controller (HelmRepository
# + HelmRelease, applied with kubectl), timing each HelmRelease until Ready=True; stops the rig.
#   flux-smoke.sh [RUN_DIR]     (default: a temp dir, removed afterwards)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
run="${1:-$(mktemp -d)}"
# shellcheck source=flux.env
source "$here/flux.env"
log() { echo "flux-smoke: $*" >&2; }
trap 'bash "$here/stop.sh" "$run"' EXIT

t0=$SECONDS
bash "$here/start.sh" "$run" --bare --flux
log "rig (bare, flux) started in $((SECONDS - t0)) s"
registry="$(sed -n 's/^CHART_REGISTRY=//p' "$run/rig.env")"
kc=(kubectl --kubeconfig "$run/kubeconfig")

"${kc[@]}" apply --server-side -f - >/dev/null <<YAML
apiVersion: source.toolkit.fluxcd.io/v1
kind: HelmRepository
metadata: {name: rig-charts, namespace: flux-system}
spec:
  type: oci
  url: oci://$registry
  insecure: true
  interval: 10m
YAML

release() { # name chart version namespace [values-yaml]
  local name="$1" chart="$2" version="$3" ns="$4" values="${5:-{\}}" started=$SECONDS
  "${kc[@]}" apply --server-side -f - >/dev/null <<YAML
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata: {name: $name, namespace: flux-system}
spec:
  interval: 10m
  releaseName: $name
  targetNamespace: $ns
  install: {createNamespace: true, crds: CreateReplace, remediation: {retries: 0}}
  upgrade: {crds: CreateReplace}
  chart:
    spec:
      chart: $chart
      version: "$version"
      sourceRef: {kind: HelmRepository, name: rig-charts, namespace: flux-system}
  values: $values
YAML
  if "${kc[@]}" wait --for condition=Ready --timeout 300s "helmrelease/$name" -n flux-system >/dev/null; then
    log "HelmRelease $name Ready in $((SECONDS - started)) s: $("${kc[@]}" get helmrelease "$name" -n flux-system -o jsonpath='{.status.conditions[?(@.type=="Ready")].message}')"
  else
    log "HelmRelease $name not Ready after $((SECONDS - started)) s:"
    "${kc[@]}" get helmrelease "$name" -n flux-system -o yaml | sed -n '/^status:/,$p' >&2
    tail -n 30 "$run/logs/helm-controller.log" >&2
    exit 1
  fi
}

release cert-manager cert-manager "$CERT_MANAGER_VERSION" cert-manager '{crds: {enabled: true}}'
release runtime-class-manager runtime-class-manager "${RUNTIME_CLASS_MANAGER_VERSION#v}" runtime-class-manager
release spin-operator spin-operator "${SPIN_OPERATOR_CHART_VERSION#v}" spin-operator
"${kc[@]}" get deployments -A
"${kc[@]}" get issuers,certificates -A
log "all releases Ready; total $((SECONDS - t0)) s"
