#!/usr/bin/env bash
# Push benchmark, in one run: `spin-aks push --from-layout` against `crane push`, `oras cp
# --from-oci-layout` and `skopeo copy` for the same layout of a generated app of many small files
# (~227 layers), cold (each try into a fresh docker-registry) and warm (the unchanged layout again);
# medians of N runs in a table, with the requests each tool sends (counted from a registry's
# access log in one more, untimed, cold and warm push, and the CPU that registry spent). Then the peak RSS of pushing a ~500 MB
# app, which must stay flat.
# crane and oras are built with `go install` at the pinned versions below, once, into
# ~/.cache/spin-aks/bench-tools/<tool>-<version> (outside the clone).
# Usage: [PROFILE=debug | SPIN_AKS_BIN=path] [SPIN_AKS_BEFORE=path] [RSS=0] benches/push-compare.sh [runs] [files] [KiB per file]  (defaults 5 225 4)
# Needs: cargo, go, docker-registry, skopeo, curl, bc, python3, /usr/bin/time.
set -euo pipefail
runs=${1:-5}
files=${2:-225}
kib=${3:-4}
CRANE_VERSION=v0.22.1 # github.com/google/go-containerregistry
ORAS_VERSION=v1.3.6   # oras.land/oras
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=benches/lib.sh
source "$root/benches/lib.sh"
scratch_dir

# go_tool NAME PACKAGE VERSION: the path of NAME built from PACKAGE@VERSION, built on first use.
go_tool() {
  local dir="${XDG_CACHE_HOME:-$HOME/.cache}/spin-aks/bench-tools/$1-$3"
  if [ ! -x "$dir/$1" ]; then
    echo "building $1 $3 with go install (once)…" >&2
    mkdir -p "$dir"
    (cd "$work" && GOBIN="$dir" GOFLAGS=-mod=mod go install "$2@$3") >&2
  fi
  echo "$dir/$1"
}
crane=$(go_tool crane github.com/google/go-containerregistry/cmd/crane "$CRANE_VERSION")
oras=$(go_tool oras oras.land/oras/cmd/oras "$ORAS_VERSION")

profile=${PROFILE:-release}
bin=${SPIN_AKS_BIN:-}
if [ -z "$bin" ]; then
  cargo build --profile "$([ "$profile" = debug ] && echo dev || echo "$profile")" --quiet \
    --manifest-path "$root/Cargo.toml" --bin spin-aks
  bin="$root/target/$profile/spin-aks"
fi
export SPIN_AKS_STATE_FILE="$work/state" DOCKER_CONFIG="$work/docker"
mkdir -p "$work/docker"

# shellcheck source=benches/gen-app.sh
source "$root/benches/gen-app.sh"
gen_app "$work/app" "$files" "$kib"
layout="$work/layout"
# The image alone, as the other tools push it (crane refuses a layout of several manifests).
"$bin" build -q -f "$work/app" --layout "$layout" --sbom none --provenance none >/dev/null
layout_kb=$(du -sk "$layout" | cut -f1)
digest=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["manifests"][0]["digest"])' "$layout/index.json")
layers=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["layers"]))' "$layout/blobs/sha256/${digest#sha256:}")
cat "$layout"/blobs/sha256/* >/dev/null # the page cache warm for every tool

target() { echo "$1/bench/app:1.0.0"; }
push_spin_aks() { "$bin" push -q "$(target "$1")" --from-layout "$layout"; }
push_crane() { "$crane" push --insecure "$layout" "$(target "$1")"; }
push_oras() { "$oras" cp --from-oci-layout "$layout:1.0.0" --to-plain-http "$(target "$1")"; }
push_skopeo() { skopeo --insecure-policy copy --quiet --dest-tls-verify=false "oci:$layout:1.0.0" "docker://$(target "$1")"; }
tools=(spin_aks crane oras skopeo)
# SPIN_AKS_BEFORE=path: an earlier spin-aks binary measured in the same run, for a before/after.
if [ -n "${SPIN_AKS_BEFORE:-}" ]; then
  push_before() { "$SPIN_AKS_BEFORE" push -q "$(target "$1")" --from-layout "$layout"; }
  tools=(spin_aks before crane oras skopeo)
fi

# timed CMD…: seconds CMD takes; stops the bench with CMD's output when it fails.
timed() {
  local t0 t1
  t0=$(now)
  if ! "$@" >"$work/out" 2>&1; then
    echo "failed: $*" >&2
    cat "$work/out" >&2
    exit 1
  fi
  t1=$(now)
  printf '%.3f' "$(echo "$t1 - $t0" | bc -l)"
}

# pushed_digest REGISTRY: the digest the registry serves for the tag.
pushed_digest() {
  curl -fsSI -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
    "http://$1/v2/bench/app/manifests/1.0.0" | tr -d '\r' | awk -F': ' 'tolower($1)=="docker-content-digest" {print $2}'
}

declare -A cold warm registry_of pid_of same
for _ in $(seq 1 "$runs"); do
  for tool in "${tools[@]}"; do
    [ -n "${pid_of[$tool]:-}" ] && kill "${pid_of[$tool]}" 2>/dev/null || true
    start_registry "$tool-$RANDOM$RANDOM"
    registry_of[$tool]=$registry
    pid_of[$tool]=${pids[-1]}
    cold[$tool]+="$(timed "push_$tool" "$registry") "
  done
done
for _ in $(seq 1 "$runs"); do
  for tool in "${tools[@]}"; do
    warm[$tool]+="$(timed "push_$tool" "${registry_of[$tool]}") "
  done
done
# One more cold push and its warm re-push per tool, untimed, into a registry that logs each
# request: what each tool asks of the registry, per blob (the layers and the config).
blobs=$((layers + 1))
declare -A cold_requests warm_requests registry_cpu
# cpu_of PID: the user and system seconds process PID has used so far.
cpu_of() { awk -v tck="$(getconf CLK_TCK)" '{print ($14 + $15) / tck}' "/proc/$1/stat"; }
for tool in "${tools[@]}"; do
  start_registry "count-$tool" log
  cpu0=$(cpu_of "${pids[-1]}")
  timed "push_$tool" "$registry" >/dev/null
  registry_cpu[$tool]=$(echo "$(cpu_of "${pids[-1]}") - $cpu0" | bc -l)
  cold_requests[$tool]=$(requests_in "count-$tool")
  timed "push_$tool" "$registry" >/dev/null
  warm_requests[$tool]=$(($(requests_in "count-$tool") - cold_requests[$tool]))
  kill "${pids[-1]}" 2>/dev/null || true
done
for tool in "${tools[@]}"; do
  if [ "$(pushed_digest "${registry_of[$tool]}")" = "$digest" ]; then same[$tool]=yes; else same[$tool]=NO; fi
done

med() { printf '%s\n' $1 | median; }
label() {
  case $1 in
    spin_aks) echo "spin-aks push" ;; before) echo "spin-aks push, before" ;; crane) echo "crane push $CRANE_VERSION" ;;
    oras) echo "oras cp $ORAS_VERSION" ;; skopeo) echo "skopeo copy $(skopeo --version | awk '{print $3}')" ;;
  esac
}

if [ "${RSS:-1}" != 0 ]; then
  gen_app "$work/big" 300 1700
  "$bin" build -q -f "$work/big" --layout "$work/big-layout" --sbom none --provenance none >/dev/null
  big_mb=$(du -sm "$work/big-layout" | cut -f1)
  start_registry big
  rss_big=$(/usr/bin/time -f '%M' "$bin" push -q "$registry/bench/big:1.0.0" --from-layout "$work/big-layout" 2>&1 >/dev/null | tail -1)
  start_registry small
  rss_small=$(/usr/bin/time -f '%M' "$bin" push -q "$registry/bench/app:1.0.0" --from-layout "$layout" 2>&1 >/dev/null | tail -1)
fi

printf 'layout: %s layers + config (an app of %s files of %s KiB and 2 components), %s KiB; %s runs each, medians;\n' \
  "$layers" "$files" "$kib" "$layout_kb" "$runs"
printf 'cold = into a fresh docker-registry on loopback per run, warm = the unchanged layout again;\n'
printf 'requests = from the access log of one more registry: cold per blob (total), warm in all;\n'
printf 'registry CPU = the user and system time that registry spent on the cold push\n\n'
printf '%-24s %10s %18s %9s %10s %9s  %-4s  %s\n' tool "cold (s)" "cold requests" "reg. CPU" "warm (s)" "warm req" \
  same "cold runs | warm runs"
for tool in "${tools[@]}"; do
  printf '%-24s %10.3f %9.2f/blob (%4d) %8.2fs %10.3f %9d  %-4s  %s| %s\n' "$(label "$tool")" "$(med "${cold[$tool]}")" \
    "$(echo "${cold_requests[$tool]} / $blobs" | bc -l)" "${cold_requests[$tool]}" "${registry_cpu[$tool]}" \
    "$(med "${warm[$tool]}")" "${warm_requests[$tool]}" "${same[$tool]}" "${cold[$tool]}" "${warm[$tool]}"
done
ours_cold=$(med "${cold[spin_aks]}")
best_cold=$(printf '%s\n' "$(med "${cold[crane]}")" "$(med "${cold[oras]}")" | sort -n | head -1)
printf '\nspin-aks cold = %.2fx the faster of crane and oras; warm = %.2fx crane\n' \
  "$(echo "$ours_cold / $best_cold" | bc -l)" "$(echo "$(med "${warm[spin_aks]}") / $(med "${warm[crane]}")" | bc -l)"
if [ "${RSS:-1}" != 0 ]; then
  printf 'peak RSS of spin-aks push: %s KiB for %s KiB, %s KiB for %s MB\n' "$rss_small" "$layout_kb" "$rss_big" "$big_mb"
fi
