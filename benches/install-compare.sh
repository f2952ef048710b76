#!/usr/bin/env bash
# SpinKube install benchmark on bare kube rigs with the real Flux controllers (start.sh --bare
# --flux), in one run, each to a ready cluster (charts reconciled, the Shim on every labelled node):
#   1. `spin-aks cluster install` from the rig's chart registry and Go module proxy mirror;
#   2. the same again, unchanged;
#   3. on a second, fresh rig: the documented manual sequence with helm and kubectl against the
#      same chart registry — helm install cert-manager (crds.enabled=true, --wait), helm install
#      runtime-class-manager (--wait), kubectl apply a Shim, kubectl label nodes, kubectl apply
#      the operator's CRDs (its release file), helm install spin-operator (--wait), kubectl apply
#      the executor, then wait for the Shim on the nodes.
# On the rig, kwok pods run nothing: the stand-ins (scripts/kube-rig/standins.py) play the
# runtime-class-manager node installer and run the operator, the same for both.
# Usage: benches/install-compare.sh  (needs: cargo, go, helm, kubectl, docker-registry)
#   SPIN_AKS_BIN=target/debug/spin-aks: time that binary instead of a release build (the install
#   waits on the cluster, not on our CPU).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=benches/lib.sh
source "$root/benches/lib.sh"
scratch_dir

spin_aks_bin
export SPIN_AKS_STATE_FILE="$work/state" DOCKER_CONFIG="$work/docker"
export HELM_CACHE_HOME="$work/helm/cache" HELM_CONFIG_HOME="$work/helm/config" HELM_DATA_HOME="$work/helm/data"
# shellcheck source=scripts/kube-rig/flux.env
source "$root/scripts/kube-rig/flux.env"

rig() { # a fresh bare Flux rig in $work/rig; sets KUBECONFIG, $charts, $upstream, $proxy
  if [ -d "$work/rig" ]; then bash "$root/scripts/kube-rig/stop.sh" "$work/rig"; rm -rf "$work/rig"; fi
  bash "$root/scripts/kube-rig/start.sh" "$work/rig" $$ --bare --flux 2>/dev/null
  export KUBECONFIG="$work/rig/kubeconfig"
  env_of() { sed -n "s/^$1=//p" "$work/rig/rig.env"; }
  charts=$(env_of CHART_REGISTRY) upstream=$(env_of UPSTREAM_URL) proxy=$(env_of MODULE_PROXY)
  sleep 2 # the controllers' first list-and-watch settles
}
stamp() { date +%s.%N; }
since() { echo "$(stamp) - $1" | bc -l; }

# 1 and 2: ours.
rig
t0=$(stamp)
"$bin" cluster install --chart-registry "$charts" --module-proxy "$proxy" --output json > "$work/ours.json"
ours=$(since "$t0")
t0=$(stamp)
"$bin" cluster install --chart-registry "$charts" --module-proxy "$proxy" --output json > "$work/again.json"
again=$(since "$t0")
python3 - "$work/again.json" <<'PY'
import json, sys
changed = [o for o in json.load(open(sys.argv[1]))["objects"] if o["action"] != "unchanged"]
assert not changed, f"the re-run changed {changed}"
PY

# 3: the manual sequence on a fresh rig.
rig
v="$SPIN_OPERATOR_CHART_VERSION" rcm="$RUNTIME_CLASS_MANAGER_VERSION"
cat > "$work/shim.yaml" <<YAML
apiVersion: runtime.spinkube.dev/v1alpha1
kind: Shim
metadata: {name: spin-v2}
spec:
  nodeSelector: {spin: "true"}
  fetchStrategy:
    platforms:
    - {os: linux, arch: x86_64, location: https://github.com/spinframework/containerd-shim-spin/releases/download/v0.25.1/containerd-shim-spin-v2-linux-x86_64.tar.gz}
    - {os: linux, arch: aarch64, location: https://github.com/spinframework/containerd-shim-spin/releases/download/v0.25.1/containerd-shim-spin-v2-linux-aarch64.tar.gz}
  runtimeClass: {name: wasmtime-spin-v2, handler: spin-v2}
  rolloutStrategy: {type: recreate}
  containerdRuntimeOptions: {SystemdCgroup: "true"}
YAML
manual_stages=()
step() { # name command…: runs and times one step of the manual sequence (last in $took)
  local name="$1" t; shift
  t=$(stamp)
  "$@" >/dev/null
  took=$(since "$t")
  manual_stages+=("$(printf '%-28s %6.2f s' "$name" "$took")")
}
t0=$(stamp)
step "helm cert-manager" helm install cert-manager "oci://$charts/cert-manager" --version "$CERT_MANAGER_VERSION" \
  --namespace cert-manager --create-namespace --set crds.enabled=true --wait --plain-http
helm_cert_manager=$took
step "helm runtime-class-manager" helm install runtime-class-manager "oci://$charts/runtime-class-manager" --version "${rcm#v}" \
  --namespace runtime-class-manager --create-namespace --set image.tag="$rcm" \
  --set rcm.shimDownloaderImage.tag="$rcm" --set rcm.nodeInstallerImage.tag="$rcm" --wait --plain-http
step "kubectl apply Shim" kubectl apply -f "$work/shim.yaml"
step "kubectl label nodes" kubectl label nodes --all spin=true
step "kubectl apply CRDs" kubectl apply --server-side -f "$upstream/spin-operator/$v/spin-operator.crds.yaml"
step "helm spin-operator" helm install spin-operator "oci://$charts/spin-operator" --version "${v#v}" \
  --namespace spin-operator --create-namespace --wait --plain-http
helm_spin_operator=$took
step "kubectl apply executor" kubectl apply -f "$upstream/spin-operator/$v/spin-operator.shim-executor.yaml"
step "kubectl wait Shim" kubectl wait shim/spin-v2 --for=jsonpath='{.status.nodesReady}'=2 --timeout=300s
manual=$(since "$t0")

printf '%-34s %7.2f s\n' "spin-aks cluster install" "$ours"
python3 - "$work/ours.json" <<'PY'
import json, sys
# cert-manager and runtime-class-manager are waited for from the start, spin-operator once
# cert-manager's API serves, the Shim once runtime-class-manager is Ready (src/install/mod.rs).
for s in json.load(open(sys.argv[1]))["stages"]:
    print(f"    {s['name']:<28} {s['seconds']:6.2f} s")
PY
printf '%-34s %7.2f s\n' "helm + kubectl, manual sequence" "$manual"
printf '    %s\n' "${manual_stages[@]}"
printf '%-34s %7.2f×\n' "ratio" "$(echo "$ours / $manual" | bc -l)"
# The floor: the helm CLI's own installs of the critical path, cert-manager then spin-operator.
floor=$(echo "$helm_cert_manager + $helm_spin_operator" | bc -l)
printf '%-34s %7.2f s\n' "helm cert-manager + spin-operator" "$floor"
printf '%-34s %7.2f×\n' "ratio to that floor" "$(echo "$ours / $floor" | bc -l)"
printf '%-34s %7.2f s\n' "spin-aks cluster install, unchanged" "$again"
