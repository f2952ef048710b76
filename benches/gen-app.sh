# Shared by the benchmark scripts: generates a Spin app of random data files.
# Expects $root (the repository) to be set by the caller.

# gen_app DIR FILES KIB: a two-component app with FILES random data files of KIB KiB each.
gen_app() {
  local dir=$1 files=$2 kib=$3
  mkdir -p "$dir/static"
  cp "$root/examples/hello-aks/wasm/hello.wasm" "$dir/web.wasm"
  cp "$root/examples/hello-aks/wasm/api.wasm" "$dir/api.wasm"
  for i in $(seq 1 "$files"); do
    head -c "$((kib * 1024))" /dev/urandom > "$dir/static/file-$i.bin"
  done
  cat > "$dir/spin.toml" <<TOML
spin_manifest_version = 2
[application]
name = "bench"
version = "1.0.0"
[[trigger.http]]
route = "/..."
component = "web"
[[trigger.http]]
route = "/api/..."
component = "api"
[component.web]
source = "web.wasm"
files = ["static/*"]
[component.api]
source = "api.wasm"
TOML
}
