#!/usr/bin/env bash
# End-to-end push benchmark: `spin-aks push --from-layout` against `skopeo copy oci:… docker://…`
# for the same layout of a generated ~70 MB / 300-file Spin app, each into its own fresh
# docker-registry per run (neither benefits from the other's blobs); medians of N runs, then a warm
# re-push of each. Also the peak RSS of pushing a ~500 MB app, which must stay flat.
# Usage: benches/push-compare.sh [runs]  (needs: cargo, docker-registry, skopeo, curl, bc, /usr/bin/time)
set -euo pipefail
runs=${1:-3}
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=benches/lib.sh
source "$root/benches/lib.sh"
scratch_dir

cargo build --release --quiet --manifest-path "$root/Cargo.toml"
bin="$root/target/release/spin-aks"
export SPIN_AKS_STATE_FILE="$work/state" DOCKER_CONFIG="$work/docker"

# shellcheck source=benches/gen-app.sh
source "$root/benches/gen-app.sh"

ours() { "$bin" push -q "$1/bench/app:1.0.0" --from-layout "$2"; }
theirs() { skopeo --insecure-policy copy --quiet --dest-tls-verify=false "oci:$2:1.0.0" "docker://$1/bench/app:1.0.0"; }

gen_app "$work/app" 300 233
"$bin" build -q -f "$work/app" --layout "$work/layout" >/dev/null
layout_mb=$(du -sm "$work/layout" | cut -f1)
layers=$(ls "$work/layout/blobs/sha256" | wc -l)
cat "$work/layout"/blobs/sha256/* > /dev/null   # warm the page cache for both tools

cold_ours=(); cold_theirs=()
for _ in $(seq 1 "$runs"); do
  start_registry "ours-$RANDOM$RANDOM"; reg_ours=$registry
  cold_ours+=("$(seconds ours "$reg_ours" "$work/layout")")
  start_registry "theirs-$RANDOM$RANDOM"; reg_theirs=$registry
  cold_theirs+=("$(seconds theirs "$reg_theirs" "$work/layout")")
done
warm_ours=$(seconds ours "$reg_ours" "$work/layout")
warm_theirs=$(seconds theirs "$reg_theirs" "$work/layout")
co=$(printf '%s\n' "${cold_ours[@]}" | median)
ct=$(printf '%s\n' "${cold_theirs[@]}" | median)

gen_app "$work/big" 300 1700
"$bin" build -q -f "$work/big" --layout "$work/big-layout" >/dev/null
big_mb=$(du -sm "$work/big-layout" | cut -f1)
start_registry big; reg_big=$registry
rss_big=$(/usr/bin/time -f '%M' "$bin" push -q "$reg_big/bench/big:1.0.0" --from-layout "$work/big-layout" 2>&1 >/dev/null | tail -1)
start_registry small; reg_small=$registry
rss_small=$(/usr/bin/time -f '%M' "$bin" push -q "$reg_small/bench/app:1.0.0" --from-layout "$work/layout" 2>&1 >/dev/null | tail -1)

printf 'layout: %s MB, %s blobs; %s cold runs each (medians), fresh registry per run\n' "$layout_mb" "$layers" "$runs"
printf 'skopeo copy (cold):    %.3f s  runs: %s\n' "$ct" "${cold_theirs[*]}"
printf 'spin-aks push (cold):  %.3f s  (%.2fx skopeo)  runs: %s\n' "$co" "$(echo "$co / $ct" | bc -l)" "${cold_ours[*]}"
printf 'skopeo copy (warm):    %.3f s\n' "$warm_theirs"
printf 'spin-aks push (warm):  %.3f s  (%.2fx skopeo)\n' "$warm_ours" "$(echo "$warm_ours / $warm_theirs" | bc -l)"
printf 'peak RSS of spin-aks push: %s KiB for %s MB, %s KiB for %s MB\n' "$rss_small" "$layout_mb" "$rss_big" "$big_mb"
