#!/usr/bin/env bash
# Dev-loop benchmark on the kube rig with the real spin-operator and a local registry: the time
# from a file's change (the watcher's first event) to the new digest ready, as `dev --output json`
# reports it per round, for an edit to a mounted file and to a component's source (the build
# command's own time excluded), medians of N rounds each, with each step's median.
# Usage: [GAP=seconds] benches/dev-loop.sh [runs]  (needs: cargo, kubectl, docker-registry, python3 with wasmtime)
# GAP (default 2) is the pause after each round before the next edit, as between a developer's
# saves; with GAP=0.5 a round starts while the cluster still settles the last rollout.
# SPIN_AKS_BIN=path uses that binary instead of a release build.
set -euo pipefail
runs=${1:-9}
gap=${GAP:-2}
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=benches/lib.sh
source "$root/benches/lib.sh"
scratch_dir
spin_aks_bin
bash "$root/scripts/kube-rig/start.sh" "$work/rig" $$ >/dev/null 2>&1
export KUBECONFIG="$work/rig/kubeconfig" SPIN_AKS_STATE_FILE="$work/state" DOCKER_CONFIG="$work/docker"
start_registry dev
kubectl create namespace bench >/dev/null
kubectl apply -n bench -f "$root/manifests/spinapp-executor.yaml" >/dev/null

app="$work/app"
cp -r "$root/tests/fixtures/dev-app" "$app"
mkdir -p "$app/static"
head -c 65536 /dev/urandom | base64 > "$app/static/index.html"
(cd "$app" && python3 build.py)

"$bin" -f "$app" dev "$registry/dev-bench" -n bench --output json --no-logs > "$work/rounds.jsonl" 2> "$work/dev.log" &
pids+=($!)
wait_round() { # wait_round N: until line N is written
  for _ in $(seq 1 1200); do
    local written
    written=$(wc -l < "$work/rounds.jsonl" 2>/dev/null || true)
    [ "${written:-0}" -ge "$1" ] && return 0
    sleep 0.05
  done
  echo "no round $1; dev said:" >&2; cat "$work/dev.log" >&2; exit 1
}
wait_round 1
n=1
for run in $(seq "$runs"); do
  echo "run $run $RANDOM" >> "$app/static/index.html"; n=$((n + 1)); wait_round $n; sleep "$gap"
  # a new greeting: new wasm (a comment alone would compile to the same bytes)
  sed -i -E "s/greeting: [a-z0-9 ]*/greeting: run $run/" "$app/src/api.wat"; n=$((n + 1)); wait_round $n; sleep "$gap"
done
load=$(cut -d' ' -f1-3 /proc/loadavg)
python3 - "$work/rounds.jsonl" "$load" "$gap" <<'PY'
import json, statistics, sys
rounds = [json.loads(l) for l in open(sys.argv[1])][1:]
assert all(r["ok"] for r in rounds), [r for r in rounds if not r["ok"]]
steps = ["debounce", "build_command", "image", "push", "apply", "rollout"]
for kind, pick in [("mounted file", lambda r: not r["built"]), ("component", lambda r: bool(r["built"]))]:
    chosen = [r for r in rounds if pick(r)]
    total = statistics.median(r["seconds"]["total"] - r["seconds"]["build_command"] for r in chosen)
    split = ", ".join(f"{s} {statistics.median(r['seconds'][s] for r in chosen):.3f}" for s in steps)
    print(f"{kind}: change → ready median {total:.3f} s over {len(chosen)} rounds (build command excluded; goal ≤ 0.3 s); medians: {split}")
print(f"load average {sys.argv[2]}; {sys.argv[3]} s between a round and the next edit")
PY
