#!/usr/bin/env bash
# Installs the real components the test suite checks our bytes with, when they are missing:
# Debian's docker-registry (CNCF distribution), skopeo, umoci and openssl (test CAs). Idempotent; needs root.
set -euo pipefail

missing=()
for tool in docker-registry:docker-registry skopeo:skopeo umoci:umoci openssl:openssl; do
  command -v "${tool%%:*}" >/dev/null 2>&1 || missing+=("${tool##*:}")
done
if ((${#missing[@]})); then
  echo "installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi
