#!/usr/bin/env bash
# Sends every pod of NAMESPACE's forwarded connections to the WAGI stand-in for the Spin shim
# (wagi-shim.py beside this script), which runs the wasm of the image that pod names: a kwok
# `PortForward` named after each pod (the rig enables kwok's CRD). Used by the demo and the tests.
# Usage: serve-wasm.sh KUBECONFIG NAMESPACE
set -euo pipefail
kubeconfig="$1" ns="$2"
shim="$(cd "$(dirname "$0")" && pwd)/wagi-shim.py"
for pod in $(kubectl --kubeconfig "$kubeconfig" get pods -n "$ns" -o name | sed 's#^pod/##'); do
  kubectl --kubeconfig "$kubeconfig" apply -f - >/dev/null <<YAML
apiVersion: kwok.x-k8s.io/v1alpha1
kind: PortForward
metadata: {name: $pod, namespace: $ns}
spec:
  forwards:
  - ports: [80]
    command: [python3, "$shim", "$kubeconfig", "$ns", "$pod"]
YAML
done
