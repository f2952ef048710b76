# Shared by build-flux.sh and build-flux-kustomize.sh (sourced): module lookups and the consumer-module
# build of a Flux controller. Expects $cache (crds/flux goes there) and $bin set, GOFLAGS exported.
module_json() { go mod download -json "$1@$2"; }
module_dir() { module_json "$1" "$2" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p'; }
module_gomod() { module_json "$1" "$2" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p'; }

# A consumer module requiring the controller and its api module at the same version, with the
# controller's non-local replace lines (a dependency's replaces do not apply to its consumers).
# No `go mod tidy`: it wants test-only modules the proxy does not serve; -mod=mod resolves the rest.
build_controller() { # name version [extra replace lines]
  local name="$1" version="$2" extra="${3:-}" module="github.com/fluxcd/$1" gomod
  cp "$(module_dir "$module" "$version")"/config/crd/bases/*.yaml "$cache/crds/flux/"
  [ -x "$bin/$name" ] && return
  log "building $name $version"
  gomod="$(module_gomod "$module" "$version")"
  mkdir -p "$cache/work/$name" && cd "$cache/work/$name"
  {
    printf 'module spinaks.test/%s\ngo 1.26.0\n' "$name"
    printf 'require (\n  %s %s\n  %s/api %s\n)\n' "$module" "$version" "$module" "$version"
    # Single-line and block replaces alike, minus the ones pointing into the module (./api).
    awk '/^replace \(/{b=1;next} b&&/^\)/{b=0;next} b{print "replace " $0;next} /^replace /{print}' "$gomod" |
      grep -v '=> \./' | sed 's/^replace[[:space:]]*/replace /'
    [ -n "$extra" ] && echo "$extra"
  } > go.mod
  : > go.sum
  GOFLAGS="$GOFLAGS -mod=mod" go build -trimpath -ldflags='-s -w' -o "$bin/$name.tmp" "$module" && mv "$bin/$name.tmp" "$bin/$name"
}
