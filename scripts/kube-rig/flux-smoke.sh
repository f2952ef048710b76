#!/usr/bin/env bash
# Smoke test of the rig's Flux mode: starts a bare rig with --flux, then installs the three upstream
# charts from the rig's chart registry through source-controller and helm-controller (HelmRepository
# + HelmRelease, applied with kubectl), timing each HelmRelease until Ready=True, with the documented
# steps between them (a Shim, the operator CRDs and executor from the rig's upstream server), then a
# SpinApp rolled out by the real operator the rig starts once it is installed; stops the rig.
#   flux-smoke.sh [RUN_DIR]     (default: a temp dir, removed afterwards)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
run="${1:-}" temp=""
[ -n "$run" ] || { run="$(mktemp -d)"; temp=1; }
# shellcheck source=flux.env
source "$here/flux.env"
log() { echo "flux-smoke: $*" >&2; }
trap 'bash "$here/stop.sh" "$run"; [ -z "$temp" ] || rm -rf "$run"' EXIT

t0=$SECONDS
bash "$here/start.sh" "$run" --bare --flux
log "rig (bare, flux) started in $((SECONDS - t0)) s"
registry="$(sed -n 's/^CHART_REGISTRY=//p' "$run/rig.env")"
upstream="$(sed -n 's/^UPSTREAM_URL=//p' "$run/rig.env")/spin-operator/$SPIN_OPERATOR_CHART_VERSION"
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

step() { log "$1 in $((SECONDS - started)) s"; }
started=$SECONDS
"${kc[@]}" label node --all spin=true >/dev/null
"${kc[@]}" apply --server-side -f - >/dev/null <<YAML
apiVersion: runtime.spinkube.dev/v1alpha1
kind: Shim
metadata: {name: spin-v2}
spec:
  nodeSelector: {spin: "true"}
  fetchStrategy:
    type: anonymousHttp
    anonHttp: {location: "https://example.invalid/containerd-shim-spin-v2-linux-x86_64.tar.gz"}
  runtimeClass: {name: wasmtime-spin-v2, handler: spin}
  rolloutStrategy: {type: recreate}
YAML
"${kc[@]}" wait --for jsonpath='{.status.nodesReady}'=2 --timeout 60s shim/spin-v2 >/dev/null
"${kc[@]}" get runtimeclass wasmtime-spin-v2 >/dev/null
step "Shim spin-v2 provisioned on 2 nodes (rig stand-in), RuntimeClass created"

started=$SECONDS
"${kc[@]}" apply --server-side -f "$upstream/spin-operator.crds.yaml" >/dev/null
"${kc[@]}" wait --for condition=Established --timeout 30s crd/spinapps.core.spinkube.dev crd/spinappexecutors.core.spinkube.dev >/dev/null
step "operator CRDs (from the rig's upstream server) established"
release spin-operator spin-operator "${SPIN_OPERATOR_CHART_VERSION#v}" spin-operator
started=$SECONDS
"${kc[@]}" apply --server-side -n default -f "$upstream/spin-operator.shim-executor.yaml" >/dev/null
"${kc[@]}" apply --server-side -n default -f - >/dev/null <<YAML
apiVersion: core.spinkube.dev/v1alpha1
kind: SpinApp
metadata: {name: smoke}
spec: {image: "ghcr.io/example/smoke:1", executor: containerd-shim-spin, replicas: 1}
YAML
until "${kc[@]}" get deployment smoke -n default >/dev/null 2>&1; do
  [ $((SECONDS - started)) -lt 60 ] || { log "the operator made no Deployment for the SpinApp"; tail -n 20 "$run/logs/spin-operator.log" >&2; exit 1; }
  sleep 0.5
done
"${kc[@]}" rollout status deployment/smoke -n default --timeout 60s >/dev/null
step "SpinApp rolled out by the real operator"
"${kc[@]}" get deployments -A
"${kc[@]}" get issuers,certificates -A
log "all releases Ready; total $((SECONDS - t0)) s"
