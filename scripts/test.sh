#!/usr/bin/env bash
# The whole test suite: install what the tests need when missing, then run every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-test-tools.sh
cargo test --locked --all-targets
