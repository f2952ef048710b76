#!/usr/bin/env bash
# Stops a rig started by start.sh RUN_DIR (every process it recorded), then removes etcd's data.
set -uo pipefail
run="$1"
[ -f "$run/rig.env" ] || exit 0
# The last pid recorded under each name: a part killed and started again (kill_and_restart) is
# recorded again, and its old pid may since belong to another process.
pids="$(awk -F= '/^[a-z_0-9]*_pid=[0-9]+$/ { last[$1] = $2 } END { for (k in last) print last[k] }' "$run/rig.env")"
# shellcheck disable=SC2086
kill $pids 2>/dev/null
for _ in $(seq 50); do
  alive=0; for p in $pids; do kill -0 "$p" 2>/dev/null && alive=1; done
  [ $alive = 0 ] && break; sleep 0.1
done
# shellcheck disable=SC2086
kill -9 $pids 2>/dev/null
rm -rf "$run/etcd"
exit 0
