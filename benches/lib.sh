#!/usr/bin/env bash
# Sourced by the bench scripts and scripts/demo.sh: a scratch directory cleaned up on exit (with
# the processes started into it), a fresh local registry, and timing helpers. Expects $root.

# scratch_dir: sets $work to a new temporary directory and, on exit, kills every pid in $pids,
# stops the kube rig if one was started in "$work/rig", and removes $work.
scratch_dir() {
  work=$(mktemp -d "${1:-${TMPDIR:-/tmp}}/spin-aks-bench.XXXXXX")
  pids=()
  trap cleanup_scratch EXIT
}

cleanup_scratch() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  if [ -d "$work/rig" ]; then bash "$root/scripts/kube-rig/stop.sh" "$work/rig" || true; fi
  rm -rf "$work"
}

# start_registry NAME [log]: a fresh docker-registry on a free loopback port; sets $port and
# $registry (host:port); with `log`, its access log (one line per request) goes to
# $work/registry-NAME/log (see requests_in). Not called in $(…): the pid must reach this shell's $pids.
start_registry() {
  local dir="$work/registry-$1" access_off=true
  [ "${2:-}" = log ] && access_off=false
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  mkdir -p "$dir"
  cat > "$dir/config.yml" <<YAML
version: 0.1
log:
  level: error
  accesslog:
    disabled: $access_off
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

# requests_in NAME: the requests registry NAME (started with `log`) has served so far, the
# readiness probes of start_registry left out.
requests_in() {
  grep -cE '"(GET|HEAD|POST|PUT|PATCH|DELETE) /v2/[^ ]' "$work/registry-$1/log" || true
}

# signing_pki DIR: a root CA (DIR/root.pem) and an EC P-256 code-signing leaf issued by it
# (DIR/leaf.key, its chain leaf first in DIR/chain.pem), as a Key Vault or a corporate CA would
# issue them; the leaf's subject in Notation's x509.subject form is $SIGNING_IDENTITY.
SIGNING_IDENTITY="C=US,ST=WA,O=spin-aks bench,CN=bench signer"
signing_pki() {
  local pki=$1
  mkdir -p "$pki"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj "/C=US/ST=WA/O=spin-aks bench/CN=bench root" -keyout "$pki/root.key" -out "$pki/root.pem" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign 2>/dev/null
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -subj "/C=US/ST=WA/O=spin-aks bench/CN=bench signer" -keyout "$pki/leaf.key" -out "$pki/leaf.csr" 2>/dev/null
  printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=codeSigning\n' \
    > "$pki/leaf.ext"
  openssl x509 -req -in "$pki/leaf.csr" -CA "$pki/root.pem" -CAkey "$pki/root.key" -CAcreateserial \
    -days 1 -extfile "$pki/leaf.ext" -out "$pki/leaf.pem" 2>/dev/null
  cat "$pki/leaf.pem" "$pki/root.pem" > "$pki/chain.pem"
}

# spin_aks_bin: sets $bin to SPIN_AKS_BIN when given, else to a fresh release build.
spin_aks_bin() {
  bin="${SPIN_AKS_BIN:-}"
  if [ -z "$bin" ]; then
    cargo build --release --quiet --manifest-path "$root/Cargo.toml"
    bin="$root/target/release/spin-aks"
  fi
}

# now: the time in seconds, from bash's clock (no `date` process whose start would be timed too).
now() { echo "${EPOCHREALTIME/,/.}"; }
# seconds CMD…: how long CMD takes, its output discarded.
seconds() {
  local t0=${EPOCHREALTIME/,/.}
  "$@" >/dev/null 2>&1
  local t1=${EPOCHREALTIME/,/.}
  echo "$t1 - $t0" | bc -l
}
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

# instructions CMD…: the user-space instructions CMD executes (its output discarded), a figure
# that a noisy machine does not move: `perf stat -e instructions:u` where the kernel lets perf
# count them, else valgrind's callgrind (exact, ~50x slower, child processes not followed; it
# hides SHA extensions, so hashing is counted as the portable code). Prints `n/a` with neither.
instructions() {
  local out
  if out=$(perf stat -x, -e instructions:u -- "$@" 2>&1 >/dev/null) \
    && count=$(printf '%s\n' "$out" | awk -F, '$3 ~ /^instructions/ && $1 ~ /^[0-9]+$/ {print $1}') \
    && [ -n "$count" ]; then
    echo "$count"
  elif command -v valgrind >/dev/null; then
    count=$({ valgrind --tool=callgrind --callgrind-out-file=/dev/null "$@" 2>&1 >/dev/null || true; } \
      | awk '/Collected :/ {print $NF}')
    echo "${count:-n/a}"   # n/a: valgrind cannot run it (Go binaries crash it here)
  else
    echo n/a
  fi
}

# millions N: N instructions in millions, one decimal (n/a stays n/a).
millions() { case "$1" in ''|n/a) echo n/a ;; *) printf '%.1f' "$(echo "$1 / 1000000" | bc -l)" ;; esac; }
