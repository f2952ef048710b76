#!/usr/bin/env bash
# What signing and attestations cost, in one run:
#   1. a cold push of the generated ~70 MB / 300-file app (a fresh copy with no layout, into a fresh
#      docker-registry: build, SBOM, provenance, signature and push) against the same push with
#      `--sbom none --provenance none` and no `--sign`; medians of N runs, alternating;
#   2. `up` of the unchanged example app on the kube rig, signed (a key file) with its SBOM and
#      provenance, against the same app deployed with none of them (the referrers already in
#      the registry: nothing new is written); medians of N runs.
# Usage: benches/attest-overhead.sh [runs]  (default 5)
# Needs: cargo, go, openssl, docker-registry, curl, bc, python3 (and the kube rig's cache).
# SPIN_AKS_BIN=path times that binary instead of a release build. BENCH_DIR as build-compare.sh.
set -euo pipefail
runs=${1:-5}
root=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "${BENCH_DIR:=$root/target}"
# shellcheck source=benches/lib.sh
source "$root/benches/lib.sh"
# shellcheck source=benches/gen-app.sh
source "$root/benches/gen-app.sh"
scratch_dir "$BENCH_DIR"

spin_aks_bin
export SPIN_AKS_STATE_FILE="$work/state" DOCKER_CONFIG="$work/docker"
mkdir -p "$work/docker"

pki="$work/pki"
signing_pki "$pki"
signed=(--sign "$pki/leaf.key" --sign-cert "$pki/chain.pem")
plain=(--sbom none --provenance none)

# 1. Cold pushes: every run a fresh copy of the app and a fresh registry for each variant.
gen_app "$work/app" 300 233
echo "app: $(du -sm "$work/app" | cut -f1) MB in $(find "$work/app" -type f | wc -l) files" >&2
cold() { # cold NAME FLAGS…: seconds of a push of a fresh copy into a fresh registry
  local name=$1; shift
  rm -rf "$work/copy-$name"
  cp -r "$work/app" "$work/copy-$name"
  start_registry "$name"
  seconds "$bin" -q -f "$work/copy-$name" push "$registry/bench:1" "$@"
}
: > "$work/cold-plain"
: > "$work/cold-signed"
for i in $(seq 1 "$runs"); do
  cold "plain-$i" "${plain[@]}" >> "$work/cold-plain"
  cold "signed-$i" "${signed[@]}" >> "$work/cold-signed"
done
a=$(median < "$work/cold-plain")
b=$(median < "$work/cold-signed")
printf '%-44s %.3f s\n' "cold push, no SBOM/provenance/signature" "$a"
printf '%-44s %.3f s (+%.1f %%)\n' "cold push, SBOM + provenance + signature" "$b" "$(echo "($b / $a - 1) * 100" | bc -l)"

# 2. Unchanged up on the rig, two apps side by side.
bash "$root/scripts/kube-rig/start.sh" "$work/rig" $$ 2>/dev/null
export KUBECONFIG="$work/rig/kubeconfig"
start_registry up
for variant in plain signed; do
  cp -r "$root/examples/hello-aks" "$work/up-$variant"
done
"$bin" -q -f "$work/up-plain" up "$registry/plain" -n up-plain --secret api_token=x "${plain[@]}" >/dev/null
"$bin" -q -f "$work/up-signed" up "$registry/signed" -n up-signed --secret api_token=x "${signed[@]}" >/dev/null
: > "$work/t-up-plain"
: > "$work/t-up-signed"
for _ in $(seq 1 "$runs"); do
  seconds "$bin" -q -y -f "$work/up-plain" up "${plain[@]}" >> "$work/t-up-plain"
  seconds "$bin" -q -y -f "$work/up-signed" up >> "$work/t-up-signed"
done
a=$(median < "$work/t-up-plain")
b=$(median < "$work/t-up-signed")
printf '%-44s %.3f s\n' "up, unchanged, no SBOM/provenance/signature" "$a"
printf '%-44s %.3f s (%+.1f ms)\n' "up, unchanged, SBOM + provenance + signature" "$b" "$(echo "($b - $a) * 1000" | bc -l)"
