#!/usr/bin/env bash
# Fleet benchmark on kube rigs with the real Flux source- and kustomize-controller (start.sh
# --kustomize) and the real spin-operator: the time from `up --fleet` start until every cluster runs
# the new digest, for 1, 2 and 3 rigs (medians of N runs; each run changes a static file, so a new
# image and deploy artifact are pushed once and every cluster converges on them). Flux's reconcile
# interval is set to INTERVAL seconds; `up --fleet` asks each cluster to fetch at once, so the
# times should not depend on it.
# Usage: benches/fleet.sh [runs] [interval]  (needs: cargo, kubectl, docker-registry, go, bc)
# SPIN_AKS_BIN=path uses that binary instead of a release build (the times are Flux's, mostly).
set -euo pipefail
runs=${1:-3}
interval=${2:-30}
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=benches/lib.sh
source "$root/benches/lib.sh"
scratch_dir

spin_aks_bin
rigs=(one two three)
for name in "${rigs[@]}"; do
  bash "$root/scripts/kube-rig/start.sh" "$work/rig-$name" $$ --kustomize 2>/dev/null &
done
wait
stop_rigs() { for name in "${rigs[@]}"; do bash "$root/scripts/kube-rig/stop.sh" "$work/rig-$name" || true; done; cleanup_scratch; }
trap stop_rigs EXIT
configs=()
for name in "${rigs[@]}"; do
  sed -e "s/- name: rig-admin/- name: $name-admin/" -e "s/- name: rig\$/- name: $name/" \
    -e "s/{cluster: rig, user: rig-admin}/{cluster: $name, user: $name-admin}/" \
    -e "s/current-context: rig/current-context: $name/" "$work/rig-$name/kubeconfig" > "$work/$name.kubeconfig"
  configs+=("$work/$name.kubeconfig")
done
KUBECONFIG=$(IFS=:; echo "${configs[*]}")
export KUBECONFIG SPIN_AKS_STATE_FILE="$work/state" DOCKER_CONFIG="$work/docker"
start_registry fleet
app="$work/hello-aks"
cp -r "$root/examples/hello-aks" "$app"
"$bin" -q -f "$app" push "$registry/hello-aks" --publish --env bench >/dev/null

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
declare -A result
for count in 1 2 3; do
  members=("${rigs[@]:0:$count}")
  "$bin" -q -f "$app" fleet add "${members[@]}" -n bench --env bench --secret api_token=x --interval "${interval}s" >/dev/null
  "$bin" -q -f "$app" up --fleet --env bench --timeout 3m >/dev/null  # settle on the current version
  times=()
  for run in $(seq "$runs"); do
    echo "run $run of $count cluster(s)" > "$app/static/bench.txt"
    start=$(date +%s.%N)
    "$bin" -q -f "$app" up --fleet --env bench --timeout 5m >/dev/null
    times+=("$(echo "$(date +%s.%N) - $start" | bc)")
  done
  result[$count]=$(printf '%s\n' "${times[@]}" | median)
  printf '%d cluster(s): median %.2f s over %d runs (%s)\n' "$count" "${result[$count]}" "$runs" "${times[*]}"
done
printf '3 clusters / 1 cluster: %.2f (goal ≤ 1.3); Flux interval %d s\n' "$(echo "${result[3]} / ${result[1]}" | bc -l)" "$interval"
