#!/usr/bin/env bash
# Builds spin-aks as the Spin plugin `aks` (docs/compatibility.md, Spin plugin): one tar.gz per platform the toolchain
# here can build, each holding the executable `aks` (and LICENSE) at its root, and the plugin
# manifest manifests/aks.json with each archive's URL under BASE_URL and its real sha256 (also
# copied beside the archives: publish that directory at BASE_URL).
#
# Usage: scripts/release.sh BASE_URL [--binary PATH] [--out DIR] [--manifest-dir DIR]
#   BASE_URL      where the archives will be published (https://…/v0.1.0 or file:///…)
#   --binary      package this already-built binary for the host platform instead of building
#   --out         where the archives go (default: dist/)
#   --manifest-dir where aks.json goes (default: manifests/)
# Install the result with: spin plugins install --file manifests/aks.json
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

usage() { sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
[ $# -ge 1 ] || usage
base_url=${1%/}; shift
binary="" out="$root/dist" manifest_dir="$root/manifests"
while [ $# -gt 0 ]; do
  case $1 in
    --binary) binary=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --manifest-dir) manifest_dir=$2; shift 2 ;;
    *) usage ;;
  esac
done
case $base_url in
  https://*|http://*|file://*) ;;
  *) echo "release.sh: BASE_URL must be an http(s):// or file:// URL, got '$base_url'" >&2; exit 2 ;;
esac
case $base_url in *'"'*|*'\'*|*' '*)
  echo "release.sh: BASE_URL must not contain quotes, backslashes or spaces" >&2; exit 2 ;;
esac

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$root/Cargo.toml" | head -1)
license=$(sed -n 's/^license = "\(.*\)"$/\1/p' "$root/Cargo.toml" | head -1)
host=$(rustc -vV | sed -n 's/^host: //p')
mkdir -p "$out" "$manifest_dir"

# Spin's os/arch names (std::env::consts, amd64 for x86_64) for a Rust target triple.
platform() {
  case $1 in
    x86_64-unknown-linux-gnu) echo "linux amd64" ;;
    aarch64-unknown-linux-gnu) echo "linux aarch64" ;;
    aarch64-apple-darwin) echo "macos aarch64" ;;
    x86_64-apple-darwin) echo "macos amd64" ;;
    *) return 1 ;;
  esac
}

# Whether this machine can build for a target: the std library installed, and a linker for it.
can_build() {
  local target=$1
  [ "$target" = "$host" ] && return 0
  rustup target list --installed 2>/dev/null | grep -qx "$target" || return 1
  case $target in
    aarch64-unknown-linux-gnu) command -v aarch64-linux-gnu-gcc >/dev/null ;;
    *-apple-darwin) [ "$(uname -s)" = Darwin ] ;;
    *) return 1 ;;
  esac
}

# The GNU cross toolchain prefix for a target other than the host (Debian's gcc-aarch64-linux-gnu).
cross_prefix() {
  case $1 in
    "$host") echo "" ;;
    aarch64-unknown-linux-gnu) echo "aarch64-linux-gnu-" ;;
    *) echo "" ;;
  esac
}

# cross_env TARGET CMD…: runs CMD with Cargo's linker for TARGET set to its cross gcc (the C parts,
# aws-lc and ring, find that compiler through the cc crate's own prefix rule).
cross_env() {
  local target=$1 prefix; shift
  prefix=$(cross_prefix "$target")
  if [ -z "$prefix" ]; then "$@"; return; fi
  local var
  var="CARGO_TARGET_$(echo "$target" | tr 'a-z-' 'A-Z_')_LINKER"
  env "$var=${prefix}gcc" "$@"
}

# pack TARGET BINARY: writes the archive and prints "os arch file sha256".
pack() {
  local target=$1 bin=$2 os arch stage file sum
  read -r os arch < <(platform "$target")
  stage=$(mktemp -d)
  # Stripped: symbols and debug info are not for users (and make the download several times larger).
  install -m 0755 "$bin" "$stage/aks"
  "$(cross_prefix "$target")strip" "$stage/aks" 2>/dev/null || echo "release.sh: strip failed; packing $bin unstripped" >&2
  local files=(aks)
  if [ -f "$root/LICENSE" ]; then install -m 0644 "$root/LICENSE" "$stage/LICENSE"; files+=(LICENSE); fi
  file="spin-aks-v$version-$os-$arch.tar.gz"
  # Reproducible: sorted names, root-owned, fixed mtime, gzip without name or time.
  tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@${SOURCE_DATE_EPOCH:-0}" \
    -C "$stage" -cf - "${files[@]}" | gzip -n -6 > "$out/$file"
  rm -rf "$stage"
  sum=$(sha256sum "$out/$file" | cut -d' ' -f1)
  echo "$os $arch $file $sum"
}

packages=()
if [ -n "$binary" ]; then
  [ -x "$binary" ] || { echo "release.sh: --binary $binary is not an executable" >&2; exit 2; }
  platform "$host" >/dev/null || { echo "release.sh: the host $host is not a Spin plugin platform" >&2; exit 2; }
  packages+=("$(pack "$host" "$binary")")
else
  for target in x86_64-unknown-linux-gnu aarch64-unknown-linux-gnu aarch64-apple-darwin; do
    if ! can_build "$target"; then
      echo "release.sh: skipping $target (no Rust target or linker for it on this machine)" >&2
      continue
    fi
    cross_env "$target" cargo build --release --locked --quiet --manifest-path "$root/Cargo.toml" --target "$target"
    packages+=("$(pack "$target" "$root/target/$target/release/spin-aks")")
  done
fi
[ ${#packages[@]} -gt 0 ] || { echo "release.sh: nothing could be built here" >&2; exit 1; }

{
  printf '{\n  "name": "aks",\n'
  printf '  "description": "Take a Spin application to Azure Kubernetes Service without Docker, az or kubectl",\n'
  printf '  "homepage": "%s",\n' "$base_url"
  printf '  "version": "%s",\n  "spinCompatibility": ">=2.0",\n  "license": "%s",\n' "$version" "$license"
  printf '  "packages": [\n'
  for i in "${!packages[@]}"; do
    read -r os arch file sum <<<"${packages[$i]}"
    sep=","; [ "$i" -eq $((${#packages[@]} - 1)) ] && sep=""
    printf '    {\n      "os": "%s",\n      "arch": "%s",\n      "url": "%s/%s",\n      "sha256": "%s"\n    }%s\n' \
      "$os" "$arch" "$base_url" "$file" "$sum" "$sep"
  done
  printf '  ]\n}\n'
} > "$manifest_dir/aks.json"
# The release's assets: the archives and, beside them, the manifest the GitHub Action and the Azure
# Pipelines template install from (<BASE_URL>/aks.json, docs/ci.md).
[ "$manifest_dir/aks.json" -ef "$out/aks.json" ] || cp "$manifest_dir/aks.json" "$out/aks.json"
echo "wrote $manifest_dir/aks.json (${#packages[@]} package(s)); archives and aks.json in $out" >&2
