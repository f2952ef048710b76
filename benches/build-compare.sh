#!/usr/bin/env bash
# End-to-end build benchmark on a generated ~70 MB / 300-file Spin app, in one run:
#   - the Spin artifact build against one `openssl dgst -sha256` pass over the same input files
#     (the floor: every byte read and hashed once), and against `cp -r` of them (the other floor:
#     a layout holds a copy of every byte, 300 new files);
#   - the plain image (`--format image`) against GNU `tar | gzip -6` of the same files;
#   - peak RSS for that app and for one 4x larger, which should stay flat.
# Usage: benches/build-compare.sh [runs]   (BENCH_DIR: where the app is generated, default target/;
# a real project's directory, not /tmp, whose ext4 groups here made each new file cost ~1 ms)
# Needs: cargo, openssl, GNU tar and gzip, bc, GNU time at /usr/bin/time; for instruction counts
# perf (where it may count them) or valgrind.
set -euo pipefail
runs=${1:-5}
root=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "${BENCH_DIR:=$root/target}"
# shellcheck source=benches/lib.sh
source "$root/benches/lib.sh"
scratch_dir "$BENCH_DIR"

cargo build --release --quiet --manifest-path "$root/Cargo.toml"
bin="$root/target/release/spin-aks"

# shellcheck source=benches/gen-app.sh
source "$root/benches/gen-app.sh"

peak_rss_kib() { /usr/bin/time -f '%M' "$@" 2>&1 >/dev/null | tail -1; }
ratio() { echo "$1 / $2" | bc -l; }

gen_app "$work/app" 300 233
input_mb=$(du -sm "$work/app" | cut -f1)
cat "$work/app"/static/* "$work/app"/*.wasm > /dev/null   # warm the page cache

hash_pass() { (cd "$work/app" && openssl dgst -sha256 static/* ./*.wasm); }
tar_gzip() { (cd "$work/app" && tar -cf - spin.toml ./*.wasm static | gzip -6 > "$work/ref-$1.tar.gz"); }

# Every build writes a layout of its own and nothing is deleted until the end: on ext4 without a
# journal (this machine) a new inode skips every inode deleted in the last 60 s, one inode-table
# lookup each, so deleting the previous run's layout first made each cold build pay for it.
hash_times=(); copy_times=(); cold_times=(); warm_times=(); gzip_times=(); plain_times=()
for run in $(seq 1 "$runs"); do
  hash_times+=("$(seconds hash_pass)")
  sync
  copy_times+=("$(seconds cp -r "$work/app/static" "$work/copy-$run")")
  sync   # the previous run's writeback is not this build's cost
  cold_times+=("$(seconds "$bin" build -q -f "$work/app" --layout "$work/cold-$run")")
  warm_times+=("$(seconds "$bin" build -q -f "$work/app" --layout "$work/cold-$run")")
  gzip_times+=("$(seconds tar_gzip "$run")")
  sync
  plain_times+=("$(seconds "$bin" build -q -f "$work/app" --format image --layout "$work/plain-$run")")
done
hash=$(printf '%s\n' "${hash_times[@]}" | median)
copy=$(printf '%s\n' "${copy_times[@]}" | median)
cold=$(printf '%s\n' "${cold_times[@]}" | median)
warm=$(printf '%s\n' "${warm_times[@]}" | median)
gz=$(printf '%s\n' "${gzip_times[@]}" | median)
image=$(printf '%s\n' "${plain_times[@]}" | median)

gen_app "$work/big" 300 932
big_mb=$(du -sm "$work/big" | cut -f1)
rss_small=$(peak_rss_kib "$bin" build -q -f "$work/app" --layout "$work/rss-small")
rss_big=$(peak_rss_kib "$bin" build -q -f "$work/big")
rss_image=$(peak_rss_kib "$bin" build -q -f "$work/big" --format image --layout "$work/rss-plain")

# Instructions (user space), one run each: stable where wall time is not.
ir_hash=$(instructions openssl dgst -sha256 "$work"/app/static/* "$work"/app/*.wasm)
ir_copy=$(instructions cp -r "$work/app/static" "$work/ir-copy")
ir_cold=$(instructions "$bin" build -q -f "$work/app" --layout "$work/ir-build")
ir_warm=$(instructions "$bin" build -q -f "$work/app" --layout "$work/ir-build")

printf 'input: %s MB, 300 files, %s runs (medians), %s CPUs\n' "$input_mb" "$runs" "$(nproc)"
printf 'openssl dgst -sha256 pass:  %.3f s\n' "$hash"
printf 'cp -r of the files:         %.3f s\n' "$copy"
floor=$(printf '%s\n' "$hash" "$copy" | sort -n | tail -1)
printf 'spin-aks build (cold):      %.3f s  (%.2fx the slower floor, goal <= 1.0x; %.2fx the hash pass, %.2fx cp -r)\n' \
  "$cold" "$(ratio "$cold" "$floor")" "$(ratio "$cold" "$hash")" "$(ratio "$cold" "$copy")"
printf 'spin-aks build (warm):      %.3f s  (%.2fx the hash pass)\n' "$warm" "$(ratio "$warm" "$hash")"
printf 'tar | gzip -6:              %.3f s\n' "$gz"
printf 'spin-aks build image:       %.3f s  (%.2fx tar | gzip -6; goal <= 0.5x)\n' "$image" "$(ratio "$image" "$gz")"
printf 'peak RSS: %s KiB for %s MB, %s KiB for %s MB; plain image of %s MB: %s KiB\n' \
  "$rss_small" "$input_mb" "$rss_big" "$big_mb" "$big_mb" "$rss_image"
printf 'instructions (millions, user space): openssl pass %s, cp -r %s, build cold %s, warm %s\n' \
  "$(millions "$ir_hash")" "$(millions "$ir_copy")" "$(millions "$ir_cold")" "$(millions "$ir_warm")"
