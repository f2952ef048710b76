#!/usr/bin/env bash
# End-to-end build benchmark: `spin-aks build` of a generated ~70 MB / 300-file Spin app against
# one `sha256sum` pass over the same input files (the floor: every byte read and hashed once).
# Also reports peak RSS for that app and for one 4x larger, which should stay flat.
# Usage: benches/build-compare.sh [runs]   (needs: cargo, sha256sum, GNU time at /usr/bin/time)
set -euo pipefail
runs=${1:-5}
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cargo build --release --quiet --manifest-path "$root/Cargo.toml"
bin="$root/target/release/spin-aks"

# shellcheck source=benches/gen-app.sh
source "$root/benches/gen-app.sh"

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
seconds() { local s e; s=$(date +%s.%N); "$@" >/dev/null 2>&1; e=$(date +%s.%N); echo "$e - $s" | bc -l; }
peak_rss_kib() { /usr/bin/time -f '%M' "$@" 2>&1 >/dev/null | tail -1; }

gen_app "$work/app" 300 233
input_mb=$(du -sm "$work/app" | cut -f1)
cat "$work/app"/static/* "$work/app"/*.wasm > /dev/null   # warm the page cache

hash_times=(); cold_times=(); warm_times=()
for _ in $(seq 1 "$runs"); do
  hash_times+=("$(seconds sh -c "sha256sum '$work'/app/static/* '$work'/app/*.wasm")")
  rm -rf "$work/app/.spin-aks"
  cold_times+=("$(seconds "$bin" build -q -f "$work/app")")
  warm_times+=("$(seconds "$bin" build -q -f "$work/app")")
done
hash=$(printf '%s\n' "${hash_times[@]}" | median)
cold=$(printf '%s\n' "${cold_times[@]}" | median)
warm=$(printf '%s\n' "${warm_times[@]}" | median)

gen_app "$work/big" 300 932
big_mb=$(du -sm "$work/big" | cut -f1)
rss_small=$(rm -rf "$work/app/.spin-aks"; peak_rss_kib "$bin" build -q -f "$work/app")
rss_big=$(peak_rss_kib "$bin" build -q -f "$work/big")

printf 'input: %s MB, 300 files, %s runs (medians)\n' "$input_mb" "$runs"
printf 'sha256sum pass:        %.3f s\n' "$hash"
printf 'spin-aks build (cold): %.3f s  (%.2fx the hash pass)\n' "$cold" "$(echo "$cold / $hash" | bc -l)"
printf 'spin-aks build (warm): %.3f s  (%.2fx the hash pass)\n' "$warm" "$(echo "$warm / $hash" | bc -l)"
printf 'peak RSS: %s KiB for %s MB, %s KiB for %s MB\n' "$rss_small" "$input_mb" "$rss_big" "$big_mb"
