#!/usr/bin/env bash
# The whole test suite: install what the tests need when missing, build the Kubernetes test rig
# from Go modules (cached by version), then run every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-test-tools.sh
bash scripts/kube-rig/build.sh >/dev/null
# A fresh clone gains nothing from incremental artifacts; they only cost disk.
if [ "${CI:-}" = true ]; then export CARGO_INCREMENTAL=0; fi
cargo test --locked --all-targets --no-fail-fast
