#!/usr/bin/env bash
# The control-plane faults of tests/it/control_plane.rs, on one private kube rig, against three
# ways to deploy the example app's objects (a SpinApp and its variables Secret, image pinned):
#   spin-aks   `spin-aks apply --dir <objects>` (it waits for the rollout);
#   kubectl    `kubectl apply --server-side -f <objects>`, then `kubectl wait --for=create` and
#              `kubectl rollout status` of the Deployment the operator makes;
#   helm       `helm upgrade --install --wait` of the chart `spin-aks scaffold --type helm` writes,
#              with the same Secret added to its templates.
# Faults, each in a fresh namespace per tool and run:
#   a. kube-apiserver SIGKILLed during the rollout wait, started again 5 s later (the controller
#      manager is stopped first, so the rollout cannot end before; the kill comes once the
#      SpinApp exists, a point each tool reaches by its own write, not by the clock);
#   b. kube-apiserver SIGSTOPped 5 s the same way;
#   c. etcd SIGSTOPped 5 s the same way.
# A run that fails is run again once, without a fault. Counted per tool and fault: finished on
# its own, finished after one re-run, data lost (after the re-run: the SpinApp or the Secret
# missing or not as applied, more than one SpinApp, the Deployment not running the image 120 s on, or a
# helm release not `deployed`), and whether the Deployment had rolled out when the command
# returned 0 (helm waits for its own objects only). Prints a table.
# Usage: RUNS=3 benches/cluster-faults.sh  (needs: go, kubectl, helm; the rig's build is cached)
#   SPIN_AKS_BIN=target/debug/spin-aks: use that binary instead of a release build.
set -euo pipefail
runs=${RUNS:-3}
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=benches/lib.sh
source "$root/benches/lib.sh"
scratch_dir

spin_aks_bin
bash "$root/scripts/kube-rig/start.sh" "$work/rig" $$ 2>/dev/null
export KUBECONFIG="$work/rig/kubeconfig" SPIN_AKS_STATE_FILE="$work/state" DOCKER_CONFIG="$work/docker"
export HELM_CACHE_HOME="$work/helm/cache" HELM_CONFIG_HOME="$work/helm/config" HELM_DATA_HOME="$work/helm/data"

# The objects: the example's SpinApp pinned to a made-up digest (kwok pods never pull) and the
# Secret of its variables; the same two as a chart.
app="$work/hello-aks"
cp -r "$root/examples/hello-aks" "$app"
image="registry.example/hello-aks@sha256:$(printf '15%.0s' $(seq 32))"
"$bin" -q -y -f "$app" scaffold --type kube -o "$work/objects" --image "$image" 2>/dev/null
kubectl create secret generic hello-aks-variables --from-literal=api_token=x --dry-run=client -o yaml \
  > "$work/objects/secret.yaml"
"$bin" -q -y -f "$app" scaffold --type helm -o "$work/chart" --image "$image" 2>/dev/null
rm -rf "$work/chart/.spin-aks-scaffold"
cp "$work/objects/secret.yaml" "$work/chart/templates/secret.yaml"

# The rig's parts, as tests/it/support/rig.rs drives them: the last pid rig.env names.
pid_of() { sed -n "s/^$1_pid=//p" "$work/rig/rig.env" | tail -1; }
signal() { kill "-$2" "$(pid_of "$1")"; }
# kill_and_restart PART SECONDS: SIGKILL, then the same command line and environment again.
kill_and_restart() {
  local pid argv=() envs=()
  pid=$(pid_of "$1")
  mapfile -d '' argv < "/proc/$pid/cmdline"
  mapfile -d '' envs < "/proc/$pid/environ"
  kill -KILL "$pid"
  sleep "$2"
  env -i "${envs[@]}" "${argv[@]}" >> "$work/rig/logs/${1//_/-}.log" 2>&1 &
  echo "$1_pid=$!" >> "$work/rig/rig.env"
  disown # stop.sh stops it with the rig
}
ready() { # waits until the API server answers again
  for _ in $(seq 600); do kubectl get --raw /readyz >/dev/null 2>&1 && return; sleep 0.1; done
  echo "the API server did not come back" >&2; exit 1
}
# namespace NS: a namespace with the executor and its default ServiceAccount (which the controller
# manager makes moments later), as a user's namespace is.
namespace() {
  kubectl create namespace "$1" >/dev/null
  kubectl apply -n "$1" -f "$root/manifests/spinapp-executor.yaml" >/dev/null
  kubectl wait -n "$1" --for=create serviceaccount/default --timeout=60s >/dev/null
}

# deploy TOOL NS: one deployment of the objects by TOOL into NS, as a user runs it.
deploy() {
  case "$1" in
    spin-aks) "$bin" -q -f "$app" apply --dir "$work/objects" -n "$2" --image "$image" --timeout 120s ;;
    kubectl)
      kubectl apply --server-side --field-manager=bench -n "$2" -f "$work/objects" \
        && kubectl wait -n "$2" --for=create deployment/hello-aks --timeout=120s \
        && kubectl rollout status -n "$2" deployment/hello-aks --timeout=120s ;;
    helm) helm upgrade --install hello-aks "$work/chart" -n "$2" --wait --timeout 120s ;;
  esac
}

# rolled_out NS: whether the Deployment the operator made runs the image, both replicas ready.
rolled_out() {
  [ "$(kubectl get deployment hello-aks -n "$1" \
    -o jsonpath='{.spec.template.spec.containers[0].image} {.status.readyReplicas}' 2>/dev/null)" = "$image 2" ]
}

# intact TOOL NS: prints nothing when NS holds what TOOL was to deploy, else what is wrong. The
# operator and the controllers are given 120 s (the tools' own timeout) to roll out what it left.
intact() {
  for _ in $(seq 1200); do rolled_out "$2" && break; sleep 0.1; done
  local spinapps
  spinapps=$(kubectl get spinapps -n "$2" -o name 2>/dev/null | wc -l)
  [ "$spinapps" = 1 ] || echo "$spinapps SpinApps"
  [ "$(kubectl get spinapp hello-aks -n "$2" -o jsonpath='{.spec.image}' 2>/dev/null)" = "$image" ] \
    || echo "SpinApp not as applied"
  kubectl get secret hello-aks-variables -n "$2" >/dev/null 2>&1 || echo "Secret missing"
  rolled_out "$2" || echo "Deployment not running the image"
  if [ "$1" = helm ]; then
    local status
    status=$(helm status hello-aks -n "$2" -o json 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["info"]["status"])' 2>/dev/null || echo none)
    [ "$status" = deployed ] || echo "release $status"
  fi
}

# run_fault FAULT TOOL NS: starts the deployment and, once its SpinApp exists, applies the fault
# while the rollout cannot end; the deployment's exit code.
run_fault() {
  local fault=$1 tool=$2 ns=$3 pid code=0
  signal kube_controller_manager STOP
  deploy "$tool" "$ns" >"$work/out" 2>&1 &
  pid=$!
  for _ in $(seq 600); do
    kubectl get spinapp hello-aks -n "$ns" >/dev/null 2>&1 && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  case "$fault" in
    a) kill_and_restart kube_apiserver 5; ready ;;
    b) signal kube_apiserver STOP; sleep 5; signal kube_apiserver CONT ;;
    c) signal etcd STOP; sleep 5; signal etcd CONT ;;
  esac
  signal kube_controller_manager CONT
  wait "$pid" || code=$?
  ready
  return "$code"
}

faults=(a b c)
tools=(spin-aks kubectl helm)
declare -A own waited again lost notes
# Every namespace first, before any fault, as a user's namespace is there before a deployment.
for fault in "${faults[@]}"; do
  for tool in "${tools[@]}"; do
    for i in $(seq "$runs"); do namespace "$fault-$tool-$i"; done
  done
done
for fault in "${faults[@]}"; do
  for tool in "${tools[@]}"; do
    own[$fault.$tool]=0 waited[$fault.$tool]=0 again[$fault.$tool]=0 lost[$fault.$tool]=0 notes[$fault.$tool]=""
    for i in $(seq "$runs"); do
      ns="$fault-$tool-$i"
      if run_fault "$fault" "$tool" "$ns"; then
        own[$fault.$tool]=$((own[$fault.$tool] + 1))
        rolled_out "$ns" && waited[$fault.$tool]=$((waited[$fault.$tool] + 1))
      else
        echo "fault $fault, $tool, run $i: exit $? — $(tail -1 "$work/out")" >&2
        if deploy "$tool" "$ns" >"$work/out" 2>&1; then
          again[$fault.$tool]=$((again[$fault.$tool] + 1))
        else
          echo "  the re-run failed too: $(tail -1 "$work/out")" >&2
        fi
      fi
      wrong=$(intact "$tool" "$ns" | paste -sd, -)
      if [ -n "$wrong" ]; then
        lost[$fault.$tool]=$((lost[$fault.$tool] + 1))
        notes[$fault.$tool]+="run $i: $wrong; "
        echo "fault $fault, $tool, run $i: $wrong" >&2
      fi
    done
  done
done

describe() {
  case "$1" in
    a) echo "kube-apiserver SIGKILLed during the rollout wait, back 5 s later" ;;
    b) echo "kube-apiserver SIGSTOPped 5 s during the rollout wait" ;;
    c) echo "etcd SIGSTOPped 5 s during the rollout wait" ;;
  esac
}
printf '| fault | tool | runs | finished on their own | of those, rolled out when it returned | finished after one re-run | data lost |\n'
printf '|---|---|---|---|---|---|---|\n'
for fault in "${faults[@]}"; do
  for tool in "${tools[@]}"; do
    k=$fault.$tool
    printf '| %s | %s | %s | %s | %s | %s | %s%s |\n' "$(describe "$fault")" "$tool" "$runs" "${own[$k]}" \
      "${waited[$k]}" "${again[$k]}" "${lost[$k]}" "${notes[$k]:+ (${notes[$k]%; })}"
  done
done
