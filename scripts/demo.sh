#!/usr/bin/env bash
# The main job on the bundled example, end to end on this machine: build the image (and export it
# for air-gapped transfer), then build → push into a local registry → server-side apply → rollout
# wait into the local Kubernetes control plane, then status and a request through port-forward.
# What it needs and lacks is made first: Debian's docker-registry (apt), and the control plane,
# built once from Go modules into ~/.cache/spin-aks (scripts/kube-rig/build.sh, about 15 minutes
# cold on two cores; `bash scripts/test.sh` builds the same cache).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
app="$root/examples/hello-aks"
say() { echo "demo: $*" >&2; }
cargo build --release --quiet --manifest-path "$root/Cargo.toml"
bin="$root/target/release/spin-aks"

"$bin" build -f "$app"
"$bin" export -f "$app"

if ! command -v docker-registry >/dev/null; then
  say "installing Debian's docker-registry (the local registry the image is pushed to)…"
  sudo=""
  if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null; then sudo=sudo; fi
  $sudo apt-get update -qq >&2 && $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-registry >&2
fi
if ! bash "$root/scripts/kube-rig/build.sh" --check >/dev/null 2>&1; then
  say "building the local control plane from Go modules (once; cached in ~/.cache/spin-aks)…"
  started=$(date +%s)
  bash "$root/scripts/kube-rig/build.sh" >/dev/null
  say "control plane built in $(( $(date +%s) - started )) s"
fi

# shellcheck source=benches/lib.sh
source "$root/benches/lib.sh"
scratch_dir
echo "demo: starting the local control plane (etcd, kube-apiserver, kwok nodes, spin-operator)…" >&2
bash "$root/scripts/kube-rig/start.sh" "$work/rig" $$
start_registry demo
export KUBECONFIG="$work/rig/kubeconfig" SPIN_AKS_STATE_FILE="$work/state"

"$bin" up -f "$app" "$registry/hello-aks" -n demo --secret api_token=demo-token
"$bin" status -f "$app"
"$bin" port-forward -f "$app" --port 0 --output json > "$work/forward.json" &
pids+=($!)
for _ in $(seq 50); do [ -s "$work/forward.json" ] && break; sleep 0.1; done
url=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["url"])' "$work/forward.json")
echo "demo: GET $url → $(curl -sS -m 10 "$url/")" >&2
