#!/usr/bin/env python3
"""Stand-ins on a --bare --flux rig for what SpinKube's pods do on real nodes (kwok pods run nothing).
   standins.py RUN_DIR OPERATOR_BINARY      (started by start.sh; stops with the rig)

- runtime-class-manager (its chart installed: the Shim CRD exists): for each Shim, what its
  controller does once the installer Jobs succeed (internal/controller/shim_controller.go, v0.2.0):
  label the nodes matching spec.nodeSelector `<shim name>=provisioned`, create the RuntimeClass
  (spec.runtimeClass name/handler, scheduling.nodeSelector = spec.nodeSelector, owned by the Shim),
  set status.nodes / status.nodesReady. No installer Job runs (they need a real node's containerd).
- spin-operator (its CRDs and its chart's Deployment exist): the real operator binary runs out of
  cluster, as in the default rig, without webhooks; it stops when that Deployment goes away.
"""
import json
import subprocess
import sys
import time

run, operator_binary = sys.argv[1], sys.argv[2]
kubeconfig = f"{run}/kubeconfig"


def kubectl(*args, stdin=None):
    result = subprocess.run(["kubectl", "--kubeconfig", kubeconfig, *args], input=stdin,
                            capture_output=True, text=True)
    return result.stdout if result.returncode == 0 else None


def items(*resource):
    out = kubectl("get", *resource, "-o", "json")
    return json.loads(out)["items"] if out else []


def matches(labels, selector):
    return all(labels.get(k) == v for k, v in (selector or {}).items())


def reconcile_shims(nodes):
    for shim in items("shims.runtime.spinkube.dev"):
        name, spec = shim["metadata"]["name"], shim.get("spec", {})
        selected = [n for n in nodes if matches(n["metadata"].get("labels", {}), spec.get("nodeSelector"))]
        for node in selected:
            if node["metadata"].get("labels", {}).get(name) != "provisioned":
                kubectl("label", "node", node["metadata"]["name"], f"{name}=provisioned", "--overwrite")
        rc = spec.get("runtimeClass", {})
        if rc.get("name"):
            runtime_class = {
                "apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass",
                "metadata": {"name": rc["name"][:63], "labels": {rc["name"][:63]: "true"},
                             "ownerReferences": [{"apiVersion": shim["apiVersion"], "kind": "Shim", "name": name,
                                                  "uid": shim["metadata"]["uid"], "controller": True,
                                                  "blockOwnerDeletion": True}]},
                "handler": rc.get("handler", ""),
                "scheduling": {"nodeSelector": spec.get("nodeSelector") or {}},
            }
            kubectl("apply", "--server-side", "--field-manager", "rig-runtime-class-manager", "-f", "-",
                    stdin=json.dumps(runtime_class))
        status = {"nodes": len(selected), "nodesReady": len(selected)}
        if {k: shim.get("status", {}).get(k) for k in status} != status:
            patch = json.dumps({"status": status})
            if kubectl("patch", "shims.runtime.spinkube.dev", name, "--type", "merge",
                       "--subresource", "status", "-p", patch) is None:
                kubectl("patch", "shims.runtime.spinkube.dev", name, "--type", "merge", "-p", patch)


def operator_installed():
    crds = {c["metadata"]["name"] for c in items("crd")}
    wanted = {"spinapps.core.spinkube.dev", "spinappexecutors.core.spinkube.dev"}
    return wanted <= crds and any("spin-operator" in d["metadata"]["name"] for d in items("deployments", "-A"))


operator = None
while True:
    try:
        if kubectl("get", "crd", "shims.runtime.spinkube.dev", "-o", "name"):
            reconcile_shims(items("nodes"))
        installed = operator_installed()
        if installed and operator is None:
            log = open(f"{run}/logs/spin-operator.log", "a")
            operator = subprocess.Popen([operator_binary, "--kubeconfig", kubeconfig,
                                         "--metrics-bind-address", "0", "--health-probe-bind-address", "0"],
                                        stdout=log, stderr=subprocess.STDOUT)
            with open(f"{run}/rig.env", "a") as env:
                env.write(f"spin_operator_pid={operator.pid}\n")
        elif not installed and operator is not None:
            operator.terminate()
            operator.wait()
            operator = None
    except Exception as error:  # a transient API error: try again on the next round
        print(f"standins: {error}", file=sys.stderr, flush=True)
    time.sleep(1)
