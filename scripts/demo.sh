#!/usr/bin/env bash
# The main job on the bundled example: build the image, export it for air-gapped transfer, and —
# when the local Kubernetes rig is built (`bash scripts/test.sh` builds it) — `up` it end to end:
# build → push into a local registry → server-side apply → rollout wait, then status and a
# request through port-forward. Without the rig it stops after the furthest honest step (export).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
app="$root/examples/hello-aks"
cargo build --release --quiet --manifest-path "$root/Cargo.toml"
bin="$root/target/release/spin-aks"

"$bin" build -f "$app"
"$bin" export -f "$app"

if ! bash "$root/scripts/kube-rig/build.sh" --check >/dev/null 2>&1 || ! command -v docker-registry >/dev/null; then
  echo "demo: no cluster here (the local rig is not built); build and export done." >&2
  echo "demo: run \`bash scripts/test.sh\` once to build the rig, then this script deploys to it." >&2
  exit 0
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
