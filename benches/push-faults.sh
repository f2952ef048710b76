#!/usr/bin/env bash
# Push under faults: `spin-aks push` and `skopeo copy --retry-times 5` of the same ~130-blob layout
# through the same seeded fault front (tests/it/support/fault_proxy.rs: cuts anywhere in a request or
# its answer, 503s, 429 + Retry-After, slow answers), each run into a fresh registry; per fault mix
# the pushes that succeeded, spin-aks's mean retries, and the mean extra time over a clean push.
# Usage: [PROFILE=debug] benches/push-faults.sh [runs]  (needs: cargo, docker-registry, skopeo, curl,
# bc). The times are mostly waiting (backoff, Retry-After), so a debug build measures the same.
set -euo pipefail
runs=${1:-3}
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=benches/lib.sh
source "$root/benches/lib.sh"
scratch_dir

profile=${PROFILE:-release}
cargo build --profile "$([ "$profile" = debug ] && echo dev || echo "$profile")" --quiet \
  --manifest-path "$root/Cargo.toml" --bin spin-aks --example fault-front
bin="$root/target/$profile/spin-aks"
front_bin="$root/target/$profile/examples/fault-front"
export SPIN_AKS_STATE_FILE="$work/state" DOCKER_CONFIG="$work/docker"

# shellcheck source=benches/gen-app.sh
source "$root/benches/gen-app.sh"

# start_front SEED MIX…: the fault front before the current registry; sets $front (host:port).
start_front() {
  "$front_bin" "$port" "$@" > "$work/front" &
  pids+=($!)
  for _ in $(seq 1 100); do [ -s "$work/front" ] && break; sleep 0.05; done
  front=$(cat "$work/front")
}

# 133 blobs: 130 files of 16 KiB (each its own layer), two wasm sources, the config.
gen_app "$work/app" 130 16
"$bin" build -q -f "$work/app" --layout "$work/layout" >/dev/null
blobs=$(ls "$work/layout/blobs/sha256" | wc -l)

# clean_time TOOL: sets $clean to the median time of a fault-free push through the front, for the
# "extra time" column. (Not in $(…), like start_registry.)
clean_time() {
  local times=() s
  for _ in $(seq 1 "$runs"); do
    start_registry "clean-$RANDOM$RANDOM"; start_front 0 0 0
    s=$(now); push_"$1" "$front" >/dev/null 2>&1; times+=("$(echo "$(now) - $s" | bc -l)")
  done
  clean=$(printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
}
push_ours() { "$bin" push "$1/bench/app:1.0.0" --from-layout "$work/layout" --output json; }
push_skopeo() {
  skopeo --insecure-policy copy --quiet --retry-times 5 --dest-tls-verify=false \
    "oci:$work/layout:1.0.0" "docker://$1/bench/app:1.0.0"
}

failures=()
clean_time ours; clean_ours=$clean
clean_time skopeo; clean_skopeo=$clean

printf 'layout: %s blobs; %s runs per mix, seeds 1..%s, a fresh registry per run\n' "$blobs" "$runs" "$runs"
printf '| fault mix (per request) | spin-aks pushes survived | spin-aks retries (mean) | spin-aks extra time (mean) | skopeo --retry-times 5 survived | skopeo extra time (mean) |\n'
printf '|---|---|---|---|---|---|\n'
for mix in "0.1 0.05 0 0" "0.2 0.1 0 0" "0.2 0.1 0.05 0.05" "0.3 0.15 0 0"; do
  read -r cut unavailable throttled slow <<<"$mix"
  ok_ours=0 ok_skopeo=0 retries=0 extra_ours=0 extra_skopeo=0
  for seed in $(seq 1 "$runs"); do
    start_registry "faults-$RANDOM$RANDOM"; start_front "$seed" $mix
    s=$(now)
    if json=$(push_ours "$front" 2>"$work/stderr"); then
      ok_ours=$((ok_ours + 1))
      retries=$((retries + $(echo "$json" | python3 -c 'import json,sys; print(json.load(sys.stdin)["retries"])')))
      extra_ours=$(echo "$extra_ours + $(now) - $s - $clean_ours" | bc -l)
    else
      failures+=("spin-aks, $mix, seed $seed: $(grep '^error' "$work/stderr" | cut -c1-300)")
    fi
    start_registry "faults-$RANDOM$RANDOM"; start_front "$seed" $mix
    s=$(now)
    if push_skopeo "$front" >/dev/null 2>&1; then
      ok_skopeo=$((ok_skopeo + 1))
      extra_skopeo=$(echo "$extra_skopeo + $(now) - $s - $clean_skopeo" | bc -l)
    fi
  done
  mean() { [ "$2" -gt 0 ] && printf '%+.1f s' "$(echo "$1 / $2" | bc -l)" || printf '–'; }
  label="${cut} cut, ${unavailable} 503"
  [ "$throttled" != 0 ] && label="$label, $throttled 429, $slow slow"
  printf '| %s | %s/%s | %s | %s | %s/%s | %s |\n' "$label" "$ok_ours" "$runs" \
    "$([ "$ok_ours" -gt 0 ] && echo $((retries / ok_ours)) || echo –)" "$(mean "$extra_ours" "$ok_ours")" \
    "$ok_skopeo" "$runs" "$(mean "$extra_skopeo" "$ok_skopeo")"
done
for failure in "${failures[@]}"; do printf 'failed: %s\n' "$failure"; done
printf 'clean push: spin-aks %.2f s, skopeo %.2f s (medians)\n' "$clean_ours" "$clean_skopeo"
