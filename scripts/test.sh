#!/usr/bin/env bash
# The whole test suite: install what the tests need when missing, build the Kubernetes test rig
# from Go modules (cached by version), then run every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-test-tools.sh
bash scripts/kube-rig/build.sh >/dev/null
cargo test --locked --all-targets --no-fail-fast
