#!/usr/bin/env bash
# Verify benchmark, in one run: `spin-aks verify` against `notation verify` (v1.3.2, the pinned
# independent verifier) on the same signed image in a fresh docker-registry (no referrers API, so
# both read the signature through the tag schema), each with the same root certificate and the
# same required identity; medians of N runs, alternating. The image is pushed by `spin-aks push
# --sign` with its SBOM and provenance (signed too), which `spin-aks verify` reports and notation
# does not read. spin-aks keeps what a registry served by digest, so a repeated verify asks only for
# the referrer lists: it is timed as it runs again, and with an empty cache each run.
# Usage: benches/verify-compare.sh [runs]  (default 21)
# Needs: cargo, go, openssl, docker-registry, curl, bc, python3.
# SPIN_AKS_BIN=path times that binary instead of a release build.
set -euo pipefail
runs=${1:-21}
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=benches/lib.sh
source "$root/benches/lib.sh"
scratch_dir

spin_aks_bin
notation=$(bash "$root/scripts/build-notation.sh")
export SPIN_AKS_STATE_FILE="$work/state" DOCKER_CONFIG="$work/docker" HOME="$work/home"
mkdir -p "$work/docker" "$HOME"

pki="$work/pki"
signing_pki "$pki"
identity=$SIGNING_IDENTITY

start_registry verify
app="$work/hello-aks"
cp -r "$root/examples/hello-aks" "$app"
image=$("$bin" -q --output json -f "$app" push "$registry/verify/hello-aks:1" \
  --sign "$pki/leaf.key" --sign-cert "$pki/chain.pem" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["digest"])')
pinned="$registry/verify/hello-aks@$image"

# notation's trust store and policy (trust-store-trust-policy.md; v1.3.2 reads trustpolicy.json).
export XDG_CONFIG_HOME="$work/xdg"
mkdir -p "$XDG_CONFIG_HOME/notation/truststore/x509/ca/bench"
cp "$pki/root.pem" "$XDG_CONFIG_HOME/notation/truststore/x509/ca/bench/root.pem"
cat > "$XDG_CONFIG_HOME/notation/trustpolicy.json" <<JSON
{"version": "1.0", "trustPolicies": [{"name": "bench", "registryScopes": ["*"],
  "signatureVerification": {"level": "strict"}, "trustStores": ["ca:bench"],
  "trustedIdentities": ["x509.subject: $identity"]}]}
JSON

ours=("$bin" -q verify "$pinned" --plain-http --trust-cert "$pki/root.pem" --subject "$identity")
theirs=("$notation" verify --insecure-registry "$pinned")
"${ours[@]}" >/dev/null || { echo "spin-aks verify refused the image" >&2; exit 1; }
"${theirs[@]}" >/dev/null 2>&1 || { echo "notation verify refused the image" >&2; exit 1; }

: > "$work/ours"
: > "$work/cold"
: > "$work/theirs"
for i in $(seq 1 "$runs"); do
  # Warm: the cache holds what the first verify fetched by digest (the usual case: a CI job or
  # `up --verify` verifying an image it verified before). Cold: an empty cache each run.
  seconds "${ours[@]}" >> "$work/ours"
  SPIN_AKS_CACHE_DIR="$work/cold-$i" seconds "${ours[@]}" >> "$work/cold"
  seconds "${theirs[@]}" >> "$work/theirs"
done
a=$(median < "$work/ours")
c=$(median < "$work/cold")
b=$(median < "$work/theirs")
ms() { echo "$1 * 1000" | bc -l; }
printf '| tool | median of %s | against notation |\n|---|---|---|\n' "$runs"
printf '| spin-aks verify | %.1f ms | %.2fx |\n' "$(ms "$a")" "$(echo "$a / $b" | bc -l)"
printf '| spin-aks verify, empty cache | %.1f ms | %.2fx |\n' "$(ms "$c")" "$(echo "$c / $b" | bc -l)"
printf '| notation verify | %.1f ms | |\n' "$(ms "$b")"
