#!/usr/bin/env bash
# Sourced by the bench scripts: start_registry, using the caller's $work and pids array.

# start_registry NAME: a fresh docker-registry on a free loopback port; sets $registry to
# host:port. (Not called in $(…): the pid must reach the cleanup list of this shell.)
start_registry() {
  local dir="$work/registry-$1" port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  mkdir -p "$dir"
  cat > "$dir/config.yml" <<YAML
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $dir/storage
http:
  addr: 127.0.0.1:$port
YAML
  docker-registry serve "$dir/config.yml" >"$dir/log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 100); do
    curl -fsS "http://127.0.0.1:$port/v2/" >/dev/null 2>&1 && break
    sleep 0.05
  done
  registry="127.0.0.1:$port"
}
