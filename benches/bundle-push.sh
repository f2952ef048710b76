#!/usr/bin/env bash
# Air-gap bundle benchmark, in one run (#29):
#   1. `spin-aks bundle push` of a bundle into a fresh registry (cold) against `oras cp` of the
#      same content (each part of the bundle's OCI layout, its referrers with it: `oras cp -r
#      --from-oci-layout DIR@DIGEST REGISTRY/NAME:TAG`, one after another, as a user copies a
#      list of images), medians of N runs;
#   2. the same bundle pushed again into the registry that holds it (warm);
#   3. `cluster install --mirror` from that registry against `cluster install` from the
#      publishers (the rig's chart registry and module proxy), each on a fresh `--bare
#      --flux-on-install` rig, medians of N.
# The bundle is made from a stand-in publisher registry: every image SpinKube's pinned charts
# and Flux run, each one platform with one random layer of LAYER_KIB, the three charts (from the
# rig's chart cache), the module zips (Go module cache) and two shim archives of 8 MiB.
# Usage: [SPIN_AKS_BIN=path] [LAYER_KIB=4096] [INSTALL=0: no install runs] benches/bundle-push.sh [runs]  (default 5)
# Needs: cargo, go, docker-registry, helm, curl, bc, python3, and the rig's Flux cache
# (scripts/kube-rig/build.sh --flux).
set -euo pipefail
runs=${1:-5}
layer_kib=${LAYER_KIB:-4096}
ORAS_VERSION=v1.3.6
CRANE_VERSION=v0.22.1
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=benches/lib.sh
source "$root/benches/lib.sh"
scratch_dir
spin_aks_bin
export SPIN_AKS_STATE_FILE="$work/state" DOCKER_CONFIG="$work/docker"
mkdir -p "$work/docker"

go_tool() { # NAME PACKAGE VERSION: built once into ~/.cache/spin-aks/bench-tools
  local dir="${XDG_CACHE_HOME:-$HOME/.cache}/spin-aks/bench-tools/$1-$3"
  if [ ! -x "$dir/$1" ]; then
    mkdir -p "$dir" && (cd "$work" && GOBIN="$dir" GOFLAGS=-mod=mod go install "$2@$3") >&2
  fi
  echo "$dir/$1"
}
oras=$(go_tool oras oras.land/oras/cmd/oras "$ORAS_VERSION")
crane=$(go_tool crane github.com/google/go-containerregistry/cmd/crane "$CRANE_VERSION")
charts_dir=$(ls -d "${XDG_CACHE_HOME:-$HOME/.cache}"/spin-aks/kube-rig-flux/*/charts 2>/dev/null | head -1)
[ -n "$charts_dir" ] || { echo "no rig chart cache: run scripts/kube-rig/build.sh --flux" >&2; exit 1; }

# The stand-in publishers.
start_registry publisher
pub=$registry
list_images() { # every upstream image of the pinned releases (src/install/images.rs), `repository:tag`
  cat <<LIST
quay.io/jetstack/cert-manager-controller:v1.20.0
quay.io/jetstack/cert-manager-webhook:v1.20.0
quay.io/jetstack/cert-manager-cainjector:v1.20.0
quay.io/jetstack/cert-manager-startupapicheck:v1.20.0
quay.io/jetstack/cert-manager-acmesolver:v1.20.0
ghcr.io/spinframework/runtime-class-manager:v0.2.0
ghcr.io/spinframework/shim-downloader:v0.2.0
ghcr.io/spinframework/node-installer:v0.2.0
ghcr.io/spinframework/spin-operator:v0.6.1
ghcr.io/fluxcd/source-controller:v1.9.5
ghcr.io/fluxcd/helm-controller:v1.6.4
ghcr.io/fluxcd/kustomize-controller:v1.9.5
LIST
}
n=0
for image in $(list_images); do
  n=$((n + 1))
  mkdir -p "$work/layer$n" && head -c "$((layer_kib * 1024))" /dev/urandom > "$work/layer$n/blob"
  tar -C "$work/layer$n" -cf "$work/layer$n.tar" blob
  "$crane" append --insecure --platform linux/amd64 -f "$work/layer$n.tar" -t "$pub/$image" >/dev/null 2>&1
done
for chart in "$charts_dir"/*.tgz; do
  case $(basename "$chart") in cert-manager-*) path=quay.io/jetstack/charts ;; *) path=ghcr.io/spinframework/charts ;; esac
  helm push "$chart" "oci://$pub/$path" --plain-http >/dev/null 2>&1
done
modcache=$(go env GOMODCACHE)/cache/download
for m in github.com/spinkube/spin-operator@v0.6.1 github.com/fluxcd/source-controller@v1.9.5 \
  github.com/fluxcd/helm-controller@v1.6.4 github.com/fluxcd/kustomize-controller@v1.9.5; do
  mkdir -p "$work/www/${m%@*}/@v" && cp "$modcache/${m%@*}/@v/${m#*@}.zip" "$work/www/${m%@*}/@v/"
done
mkdir -p "$work/www/shim/v0.25.1"
for arch in x86_64 aarch64; do
  head -c $((8 << 20)) /dev/urandom > "$work/containerd-shim-spin-v2"
  tar -C "$work" -czf "$work/www/shim/v0.25.1/containerd-shim-spin-v2-linux-$arch.tar.gz" containerd-shim-spin-v2
done
www=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
(cd "$work/www" && exec python3 -m http.server "$www" --bind 127.0.0.1 >/dev/null 2>&1) &
pids+=($!)
sleep 0.5
cat > "$work/registries.conf" <<CONF
[[registry]]
location = "quay.io"
[[registry.mirror]]
location = "$pub/quay.io"
insecure = true
[[registry]]
location = "ghcr.io"
[[registry.mirror]]
location = "$pub/ghcr.io"
insecure = true
CONF
bundle="$work/bundle.tar"
"$bin" bundle create -q -o "$bundle" --arch amd64,arm64 --registries-conf "$work/registries.conf" \
  --module-proxy "http://127.0.0.1:$www" --shim-base-url "http://127.0.0.1:$www/shim" >/dev/null
bundle_mb=$(du -m "$bundle" | cut -f1)
mkdir -p "$work/layout" && tar -C "$work/layout" -xf "$bundle"
# Each named part of the layout: DIGEST NAME:TAG.
python3 - "$work/layout/index.json" > "$work/parts" <<'PY'
import json, sys
for d in json.load(open(sys.argv[1]))["manifests"]:
    name = d.get("annotations", {}).get("org.opencontainers.image.ref.name")
    if name:
        print(d["digest"], name)
PY
parts=$(wc -l < "$work/parts")

timed() {
  local t0 t1
  t0=$(now)
  "$@" >"$work/out" 2>&1 || { echo "failed: $*" >&2; cat "$work/out" >&2; exit 1; }
  t1=$(now)
  printf '%.3f' "$(echo "$t1 - $t0" | bc -l)"
}
push_spin_aks() { "$bin" bundle push -q "$bundle" "$1"; }
push_oras() {
  while read -r digest name; do
    "$oras" cp -r --from-oci-layout "$work/layout@$digest" --to-plain-http "$1/$name" >/dev/null
  done < "$work/parts"
}

if [ "${PROBE:-0}" = 1 ]; then
  start_registry probe
  cpu_of() { awk -v tck="$(getconf CLK_TCK)" '{print ($14 + $15) / tck}' "/proc/$1/stat"; }
  c0=$(cpu_of "${pids[-1]}")
  /usr/bin/time -f 'spin-aks: %e s wall, %U user, %S sys' "$bin" bundle push -q "$bundle" "$registry" >/dev/null
  echo "registry cpu: $(echo "$(cpu_of "${pids[-1]}") - $c0" | bc -l)"
  exit 0
fi
declare -A cold registry_of
for _ in $(seq 1 "$runs"); do
  for tool in spin_aks oras; do
    start_registry "$tool-$RANDOM$RANDOM"
    registry_of[$tool]=$registry
    cold[$tool]+="$(timed "push_$tool" "$registry") "
  done
done
warm=""
for _ in $(seq 1 "$runs"); do warm+="$(timed push_spin_aks "${registry_of[spin_aks]}") "; done
start_registry warm-count log
push_spin_aks "$registry"
before=$(requests_in warm-count)
push_spin_aks "$registry"
warm_requests=$(($(requests_in warm-count) - before))

# 3: install from the mirror against install from the publishers, fresh rigs.
mirror_registry=${registry_of[spin_aks]}
rig() {
  if [ -d "$work/rig" ]; then bash "$root/scripts/kube-rig/stop.sh" "$work/rig"; rm -rf "$work/rig"; fi
  bash "$root/scripts/kube-rig/start.sh" "$work/rig" $$ --bare --flux-on-install >/dev/null 2>&1
  export KUBECONFIG="$work/rig/kubeconfig"
  charts=$(sed -n 's/^CHART_REGISTRY=//p' "$work/rig/rig.env")
  proxy=$(sed -n 's/^MODULE_PROXY=//p' "$work/rig/rig.env")
  sleep 2
}
installs_publishers="" installs_mirror=""
for _ in $(seq 1 "$([ "${INSTALL:-1}" = 0 ] && echo 0 || echo "$runs")"); do
  rig
  installs_publishers+="$(timed "$bin" cluster install -q --chart-registry "$charts" --module-proxy "$proxy") "
  rig
  installs_mirror+="$(timed "$bin" cluster install -q --mirror "$mirror_registry") "
done

med() { printf '%s\n' $1 | median; }
ratio() { printf '%.2f' "$(echo "$1 / $2" | bc -l)"; }
cs=$(med "${cold[spin_aks]}") co=$(med "${cold[oras]}") w=$(med "$warm")
ip=$(med "${installs_publishers:-0}") im=$(med "${installs_mirror:-0}")
cat <<TABLE
bundle: $parts parts, $bundle_mb MB ($(list_images | wc -l) images of ${layer_kib} KiB, 3 charts, 4 module zips, 2 shim archives of 8 MiB); medians of $runs, load $(cut -d' ' -f1-3 /proc/loadavg)

| what | seconds | vs anchor |
|---|---|---|
| spin-aks bundle push, cold | $cs | $(ratio "$cs" "$co")× oras |
| oras cp $ORAS_VERSION -r of each part, cold | $co | 1× |
| spin-aks bundle push, warm (all there) | $w | $warm_requests requests |
| cluster install --mirror | $im | $(ratio "$im" "$ip")× from publishers |
| cluster install from the publishers | $ip | 1× |
TABLE
