#!/usr/bin/env bash
# Cluster benchmark on the kube rig (scripts/kube-rig), in one run:
#   1. `spin-aks apply` of the example's objects vs `kubectl apply --server-side` of the same files
#      (first apply into a fresh namespace, then an unchanged re-apply; medians of N runs). Each
#      timed command starts from a quiet cluster: the operator's and controllers' reaction to the
#      previous apply is waited out, so neither tool pays for the other's rollout;
#   2. `spin-aks up` of an unchanged app (build + push + apply + wait) against a local registry;
#   3. how long after the Deployment becomes available the rollout wait notices it (a parallel
#      `kubectl get -w` stamps the same watch event);
#   4. the peak RSS of `up`.
# Usage: benches/apply-compare.sh [runs]  (needs: cargo, kubectl, docker-registry, go, /usr/bin/time)
set -euo pipefail
runs=${1:-5}
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=benches/lib.sh
source "$root/benches/lib.sh"
scratch_dir

cargo build --release --quiet --manifest-path "$root/Cargo.toml"
bin="$root/target/release/spin-aks"
bash "$root/scripts/kube-rig/start.sh" "$work/rig" $$ 2>/dev/null
export KUBECONFIG="$work/rig/kubeconfig" SPIN_AKS_STATE_FILE="$work/state" DOCKER_CONFIG="$work/docker"

app="$work/hello-aks"
cp -r "$root/examples/hello-aks" "$app"
image="registry.example/hello-aks@sha256:$(printf 'ab%.0s' $(seq 32))"
"$bin" -q -f "$app" scaffold --type kube -o "$work/objects" --image "$image" >/dev/null
kubectl create secret generic hello-aks-variables --from-literal=api_token=x --dry-run=client -o yaml > "$work/objects/secret.yaml"

namespace() { kubectl create namespace "$1" >/dev/null; kubectl apply -n "$1" -f "$root/manifests/spinapp-executor.yaml" >/dev/null; }
# settle NS…: the operator's Deployment exists and has rolled out in each namespace.
settle() {
  for ns in "$@"; do
    kubectl wait -n "$ns" --for=create deployment/hello-aks --timeout=60s >/dev/null
    kubectl rollout status -n "$ns" deployment/hello-aks --timeout=60s >/dev/null
  done
  sleep 0.5
}

ours_first=() theirs_first=() ours_again=() theirs_again=()
for i in $(seq "$runs"); do
  namespace "ours-$i"; namespace "theirs-$i"; sleep 0.5
  ours_first+=("$(seconds "$bin" -q -f "$app" apply --dir "$work/objects" -n "ours-$i" --image "$image" --no-wait)")
  settle "ours-$i"
  theirs_first+=("$(seconds kubectl apply --server-side --field-manager=bench -n "theirs-$i" -f "$work/objects")")
  settle "theirs-$i"
  ours_again+=("$(seconds "$bin" -q -f "$app" apply --dir "$work/objects" -n "ours-$i" --image "$image" --no-wait)")
  theirs_again+=("$(seconds kubectl apply --server-side --field-manager=bench -n "theirs-$i" -f "$work/objects")")
done
# Instructions (user space) of one unchanged apply each, on the first run's namespaces.
ir_ours=$(instructions "$bin" -q -f "$app" apply --dir "$work/objects" -n ours-1 --image "$image" --no-wait)
ir_theirs=$(instructions kubectl apply --server-side --field-manager=bench -n theirs-1 -f "$work/objects")
m() { printf '%s\n' "$@" | median; }
report() { printf '%-34s spin-aks %.3f s   kubectl %.3f s   ratio %.2f×\n' "$1" "$2" "$3" "$(echo "$2 / $3" | bc -l)"; }
report "apply, new namespace" "$(m "${ours_first[@]}")" "$(m "${theirs_first[@]}")"
report "apply, unchanged" "$(m "${ours_again[@]}")" "$(m "${theirs_again[@]}")"
printf '%-34s spin-aks %s M   kubectl %s M (user space)\n' "apply, unchanged: instructions" "$(millions "$ir_ours")" "$(millions "$ir_theirs")"

# up of an unchanged app: one up to get there, then timed ones.
start_registry up
"$bin" -q -f "$app" up "$registry/hello-aks" -n up-bench --secret api_token=x >/dev/null
ups=()
for _ in $(seq "$runs"); do ups+=("$(seconds "$bin" -q -y -f "$app" up)"); done
printf '%-34s %.3f s (median of %s)\n' "up, unchanged app" "$(m "${ups[@]}")" "$runs"
/usr/bin/time -o "$work/rss" -f '%M' "$bin" -q -y -f "$app" up >/dev/null 2>&1
rss=$(tail -1 "$work/rss")
printf '%-34s %.1f MB\n' "up, peak RSS" "$(echo "$rss / 1024" | bc -l)"

# Rollout noticed: stamp the watch event where the Deployment is available, then compare with
# the moment apply returns (both see the same event stream from the API server).
lags=()
for i in $(seq "$runs"); do
  ns="lag-$i"; namespace "$ns"
  (kubectl get deployments -n "$ns" -w -o jsonpath='{.status.availableReplicas}{"\n"}' 2>/dev/null \
    | while read -r n; do [ "$n" = 2 ] && { now > "$work/available-$i"; break; }; done) &
  watcher=$!
  sleep 0.5
  "$bin" -q -f "$app" apply --dir "$work/objects" -n "$ns" --image "$image" >/dev/null
  done_at=$(now)
  # The watch ends only at its next event, which may never come: stop it once it has seen.
  for _ in $(seq 100); do [ -s "$work/available-$i" ] && break; sleep 0.1; done
  pkill -f "kubectl get deployments -n $ns -w" 2>/dev/null || true
  wait "$watcher" 2>/dev/null || true
  lags+=("$(echo "($done_at - $(cat "$work/available-$i")) * 1000" | bc -l)")
done
printf '%-34s %.0f ms after kubectl sees it available (median of %s)\n' "rollout noticed" "$(m "${lags[@]}")" "$runs"
