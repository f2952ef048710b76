#!/usr/bin/env bash
# The whole test suite: install what the tests need when missing, build the Kubernetes test rig
# from Go modules (cached by version), then run every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-test-tools.sh
bash scripts/kube-rig/build.sh --flux >/dev/null
# kustomize-controller for the fleet tests (start.sh --kustomize), a cache of its own.
bash scripts/kube-rig/build-flux-kustomize.sh >/dev/null
# notation v1.3.2, the independent verifier of our signatures (tests/it/notation.rs), its own cache.
bash scripts/build-notation.sh >/dev/null
# A fresh clone gains nothing from incremental artifacts; they only cost disk.
if [ "${CI:-}" = true ]; then export CARGO_INCREMENTAL=0; fi
# Tests that could not get a tool or the rig record themselves here (tests/it/support: `skip`);
# under CI=true they fail instead.
skipped="${CARGO_TARGET_DIR:-target}/tmp/skipped-tests"
# Every JSON report a test reads is checked against its schema and its id recorded here
# (tests/it/support/schema.rs); each published schema must have been checked at least once.
validated="${CARGO_TARGET_DIR:-target}/tmp/validated-schemas"
rm -f "$skipped" "$validated"
status=0
# No backtraces: a failed test's message (with the spin-aks output it quotes) stays among the last
# lines of the log, where a CI's tail shows it; run one test alone for its backtrace.
RUST_BACKTRACE=0 cargo test --locked --all-targets --no-fail-fast || status=$?
for schema in docs/schemas/v*/*.json; do
  id="spin-aks/$(basename "$(dirname "$schema")")/$(basename "$schema" .json)"
  if ! grep -qx "$id" "$validated" 2>/dev/null; then
    echo "test.sh: no test checked a real report against $schema" >&2
    status=1
  fi
done
if [ -s "$skipped" ]; then
  echo "test.sh: $(wc -l <"$skipped") test(s) SKIPPED for a missing tool or rig:" >&2
  sed 's/^/  /' "$skipped" >&2
fi
exit "$status"
