#!/usr/bin/env bash
# Builds the test control plane from Go modules (no images, no containers) into a cache keyed by
# versions.env, and prints the bin directory. Cached: a second run only checks the files exist.
#   etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok, spin-operator (as `cmd`),
#   plus the spin-operator CRDs from its module zip.
# With --check: only say whether it is built (exit 1 when not).
# With --flux (first): also the Flux parts of start.sh --flux (build-flux.sh, a cache of their own).
# RIG_CACHE (default ${XDG_CACHE_HOME:-~/.cache}/spin-aks/kube-rig) holds one folder per version set.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
if [ "${1:-}" = "--flux" ]; then shift; bash "$here/build-flux.sh" "$@" >/dev/null; fi
# shellcheck source=versions.env
source "$here/versions.env"
# shellcheck source=crds.env
source "$here/crds.env"

key="$(sha256sum < "$here/versions.env" | cut -c1-16)"
cache="${RIG_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/spin-aks/kube-rig}/$key"
bin="$cache/bin"
tools=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok spin-operator)

complete() {
  for t in "${tools[@]}"; do [ -x "$bin/$t" ] || return 1; done
  [ -f "$cache/crds/spinapps.yaml" ] && [ -f "$cache/crds/spinappexecutors.yaml" ] &&
    [ -f "$cache/crds/secretproviderclasses-$SECRETS_STORE_CSI_VERSION.yaml" ]
}
module_dir() { go mod download -json "$1@$2" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p'; }
copy_csi_crd() { # cheap: a module download, no build
  local target="$cache/crds/secretproviderclasses-$SECRETS_STORE_CSI_VERSION.yaml"
  [ -f "$target" ] && return
  mkdir -p "$cache/crds"
  rm -f "$cache"/crds/secretproviderclasses-*.yaml
  cp "$(module_dir sigs.k8s.io/secrets-store-csi-driver "$SECRETS_STORE_CSI_VERSION")/config/crd/bases/secrets-store.csi.x-k8s.io_secretproviderclasses.yaml" "$target.tmp"
  chmod u+w "$target.tmp" && mv "$target.tmp" "$target"
}
if [ -x "$bin/kube-apiserver" ] && [ "${1:-}" != "--check" ] && command -v go >/dev/null; then copy_csi_crd; fi
if complete; then echo "$cache"; exit 0; fi
if [ "${1:-}" = "--check" ]; then echo "kube-rig: not built (run without --check to build)" >&2; exit 1; fi

command -v go >/dev/null || { echo "kube-rig: go is not installed" >&2; exit 1; }
mkdir -p "$bin" "$cache/crds"
work="$cache/work"
mkdir -p "$work"
export CGO_ENABLED=0 GOFLAGS=-buildvcs=false
log() { echo "kube-rig: $*" >&2; }
started=$SECONDS

build_kubernetes() {
  local mod staging_version="v0${K8S_VERSION#v1}"
  mod="$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')"
  mkdir -p "$work/k8s" && cd "$work/k8s"
  {
    echo "module spinaks.test/kuberig"
    echo "go 1.24.0"
    echo "tool ("
    for c in kube-apiserver kube-controller-manager kube-scheduler; do echo "  k8s.io/kubernetes/cmd/$c"; done
    echo ")"
    echo "require k8s.io/kubernetes $K8S_VERSION"
    echo "replace ("
    # Every staging module the kubernetes go.mod points at ./staging gets its published version.
    sed -n 's#^\s*\(k8s.io/[a-z0-9-]*\) => ./staging/.*#  \1 => \1 '"$staging_version"'#p' "$mod"
    echo ")"
  } > go.mod
  go mod tidy >&2
  for c in kube-apiserver kube-controller-manager kube-scheduler; do
    [ -x "$bin/$c" ] && continue
    log "building $c $K8S_VERSION"
    # The version the API server reports (/version): charts check it (`kubeVersion`), and a
    # build from modules would otherwise say v0.0.0-master.
    local minor="${K8S_VERSION#v1.}"; minor="${minor%%.*}"
    local version="-X k8s.io/component-base/version.gitVersion=$K8S_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean"
    go build -trimpath -ldflags="-s -w $version" -o "$bin/$c.tmp" "k8s.io/kubernetes/cmd/$c" && mv "$bin/$c.tmp" "$bin/$c"
  done
}

build_tool() { # name module version package: a consumer module, so the tool's own replaces don't apply
  local name="$1" module="$2" version="$3" package="$4"
  [ -x "$bin/$name" ] && return
  log "building $name ($module $version)"
  mkdir -p "$work/$name" && cd "$work/$name"
  printf 'module spinaks.test/%s\ngo 1.24.0\ntool %s\nrequire %s %s\n' "$name" "$package" "$module" "$version" > go.mod
  go mod tidy >&2
  go build -trimpath -ldflags='-s -w' -o "$bin/$name.tmp" "$package" && mv "$bin/$name.tmp" "$bin/$name"
}

copy_operator_crds() {
  local dir
  dir="$(module_dir github.com/spinkube/spin-operator "$SPIN_OPERATOR_VERSION")"
  cp "$dir/config/crd/bases/core.spinkube.dev_spinapps.yaml" "$cache/crds/spinapps.yaml"
  cp "$dir/config/crd/bases/core.spinkube.dev_spinappexecutors.yaml" "$cache/crds/spinappexecutors.yaml"
}

build_tool etcd go.etcd.io/etcd/server/v3 "$ETCD_VERSION" go.etcd.io/etcd/server/v3
build_tool kwok sigs.k8s.io/kwok "$KWOK_VERSION" sigs.k8s.io/kwok/cmd/kwok
build_tool spin-operator github.com/spinkube/spin-operator "$SPIN_OPERATOR_VERSION" github.com/spinkube/spin-operator/cmd
copy_operator_crds
copy_csi_crd
build_kubernetes
chmod -R u+w "$cache/crds"
complete || { log "build finished but tools are missing in $bin"; exit 1; }
log "built in $((SECONDS - started)) s into $cache"
# Older version sets are not needed any more.
find "$(dirname "$cache")" -mindepth 1 -maxdepth 1 -type d ! -name "$key" -exec rm -rf {} +
echo "$cache"
