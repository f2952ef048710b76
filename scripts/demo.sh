#!/usr/bin/env bash
# The main job on the bundled example, end to end on this machine: build the image (and export it
# for air-gapped transfer), push it into a local registry, `up` it into the local Kubernetes
# control plane, show its status and answer a request through port-forward (the app's own wasm
# answers, run by the control plane's stand-in for the Spin shim).
# What is missing is made first, side by side: spin-aks itself (the debug build `bash
# scripts/test.sh` shares), Debian's docker-registry (apt), and the control plane, built once
# from Go modules into ~/.cache/spin-aks (scripts/kube-rig/build.sh; the test command builds the
# same cache).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
app="$root/examples/hello-aks"
say() { echo "demo: $*" >&2; }
started=$SECONDS

# The control plane builds in the background while spin-aks compiles: the two overlap their
# downloads and links, and a warm machine skips both.
rig_pid=""
if ! bash "$root/scripts/kube-rig/build.sh" --check >/dev/null 2>&1; then
  say "building the local control plane from Go modules in the background (once; cached in ~/.cache/spin-aks)…"
  # Its progress is the kube-rig lines; Go's one line per module downloaded is left out.
  bash "$root/scripts/kube-rig/build.sh" 2> >(grep -v '^go: downloading' >&2) >/dev/null &
  rig_pid=$!
fi
# kubectl (the control plane's scripts use it) and wasmtime-py (the stand-in for the Spin shim
# that runs the app's wasm behind port-forward), when missing.
bash "$root/scripts/install-rig-tools.sh"
if ! command -v docker-registry >/dev/null; then
  say "installing Debian's docker-registry (the local registry the image is pushed to)…"
  sudo=""
  if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null; then sudo=sudo; fi
  $sudo apt-get update -qq >&2 && $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-registry >&2
fi
say "building spin-aks…"
cargo build --locked --quiet --manifest-path "$root/Cargo.toml"
bin="${CARGO_TARGET_DIR:-$root/target}/debug/spin-aks"
say "spin-aks ready after $((SECONDS - started)) s"

"$bin" build -f "$app"
"$bin" export -f "$app"

if [ -n "$rig_pid" ]; then
  say "waiting for the control plane build…"
  wait "$rig_pid" || { say "the control plane did not build (see the kube-rig lines above)"; exit 1; }
  say "control plane built; $((SECONDS - started)) s so far"
fi

# shellcheck source=benches/lib.sh
source "$root/benches/lib.sh"
scratch_dir
say "starting the local control plane (etcd, kube-apiserver, kwok nodes, spin-operator)…"
bash "$root/scripts/kube-rig/start.sh" "$work/rig" $$
start_registry demo
export KUBECONFIG="$work/rig/kubeconfig" SPIN_AKS_STATE_FILE="$work/state"

"$bin" up -f "$app" "$registry/hello-aks" -n demo --secret api_token=demo-token
"$bin" status -f "$app"
# kwok's pods run nothing: each pod's forwarded connections go to the WAGI stand-in for the Spin
# shim, which runs the wasm of the image that pod names.
bash "$root/scripts/kube-rig/serve-wasm.sh" "$KUBECONFIG" demo
"$bin" port-forward -f "$app" --port 0 --output json > "$work/forward.json" &
pids+=($!)
for _ in $(seq 50); do [ -s "$work/forward.json" ] && break; sleep 0.1; done
url=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["url"])' "$work/forward.json")
answer=$(curl -sS -m 10 "$url/")
say "GET $url → $answer"
say "done in $((SECONDS - started)) s: built examples/hello-aks into an OCI image (and an oci-archive for an air gap), pushed it to $registry/hello-aks, deployed it with \`spin-aks up\` into namespace demo of the local control plane, and a request was answered."
