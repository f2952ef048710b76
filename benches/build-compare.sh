#!/usr/bin/env bash
# End-to-end build benchmark on a generated ~70 MB / 300-file Spin app, in one run:
#   - the Spin artifact build against one `openssl dgst -sha256` pass over the same input files
#     (the floor: every byte read and hashed once);
#   - the plain image (`--format image`) against GNU `tar | gzip -6` of the same files;
#   - peak RSS for that app and for one 4x larger, which should stay flat.
# Usage: benches/build-compare.sh [runs]
# Needs: cargo, openssl, GNU tar and gzip, bc, GNU time at /usr/bin/time.
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
ratio() { echo "$1 / $2" | bc -l; }

gen_app "$work/app" 300 233
input_mb=$(du -sm "$work/app" | cut -f1)
cat "$work/app"/static/* "$work/app"/*.wasm > /dev/null   # warm the page cache

hash_pass() { (cd "$work/app" && openssl dgst -sha256 static/* ./*.wasm); }
tar_gzip() { (cd "$work/app" && tar -cf - spin.toml ./*.wasm static | gzip -6 > "$work/ref.tar.gz"); }
plain() { "$bin" build -q -f "$work/app" --format image --layout "$work/plain"; }

hash_times=(); cold_times=(); warm_times=(); gzip_times=(); plain_times=()
for _ in $(seq 1 "$runs"); do
  hash_times+=("$(seconds hash_pass)")
  rm -rf "$work/app/.spin-aks"; sync   # the previous layout's writeback is not this build's cost
  cold_times+=("$(seconds "$bin" build -q -f "$work/app")")
  warm_times+=("$(seconds "$bin" build -q -f "$work/app")")
  gzip_times+=("$(seconds tar_gzip)")
  rm -rf "$work/plain"; sync
  plain_times+=("$(seconds plain)")
done
hash=$(printf '%s\n' "${hash_times[@]}" | median)
cold=$(printf '%s\n' "${cold_times[@]}" | median)
warm=$(printf '%s\n' "${warm_times[@]}" | median)
gz=$(printf '%s\n' "${gzip_times[@]}" | median)
image=$(printf '%s\n' "${plain_times[@]}" | median)

gen_app "$work/big" 300 932
big_mb=$(du -sm "$work/big" | cut -f1)
rss_small=$(rm -rf "$work/app/.spin-aks"; peak_rss_kib "$bin" build -q -f "$work/app")
rss_big=$(peak_rss_kib "$bin" build -q -f "$work/big")
rss_image=$(rm -rf "$work/plain"; peak_rss_kib "$bin" build -q -f "$work/big" --format image --layout "$work/plain")

printf 'input: %s MB, 300 files, %s runs (medians), %s CPUs\n' "$input_mb" "$runs" "$(nproc)"
printf 'openssl dgst -sha256 pass:  %.3f s\n' "$hash"
printf 'spin-aks build (cold):      %.3f s  (%.2fx the hash pass; goal <= 1.2x)\n' "$cold" "$(ratio "$cold" "$hash")"
printf 'spin-aks build (warm):      %.3f s  (%.2fx the hash pass)\n' "$warm" "$(ratio "$warm" "$hash")"
printf 'tar | gzip -6:              %.3f s\n' "$gz"
printf 'spin-aks build image:       %.3f s  (%.2fx tar | gzip -6; goal <= 0.5x)\n' "$image" "$(ratio "$image" "$gz")"
printf 'peak RSS: %s KiB for %s MB, %s KiB for %s MB; plain image of %s MB: %s KiB\n' \
  "$rss_small" "$input_mb" "$rss_big" "$big_mb" "$big_mb" "$rss_image"
