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
Both act on the API server's watch events, as the controllers they stand in for do (a round
also every RESYNC seconds), talking to it directly over HTTPS with the rig's admin certificate.
"""
import http.client
import json
import ssl
import subprocess
import sys
import threading
import time

run, operator_binary = sys.argv[1], sys.argv[2]
kubeconfig = f"{run}/kubeconfig"
port = int(next(w.split("=")[1] for line in open(f"{run}/rig.env") for w in line.split()
                if w.startswith("api_port=")))
tls = ssl.create_default_context(cafile=f"{run}/pki/ca.crt")
tls.load_cert_chain(f"{run}/pki/admin.crt", f"{run}/pki/admin.key")
RESYNC = 5  # seconds between rounds when no event comes
SHIMS = "/apis/runtime.spinkube.dev/v1alpha1/shims"
CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
WATCHED = [CRDS, SHIMS, "/api/v1/nodes", "/apis/apps/v1/deployments"]
changed = threading.Event()  # set by any watch event: a round is due


# CRDs (cert-manager's are megabytes) and Deployments are read as metadata only.
METADATA_ONLY = {CRDS, "/apis/apps/v1/deployments"}
PARTIAL = "application/json;as=PartialObjectMetadata{};g=meta.k8s.io;v=v1,application/json"


def accept(path, kind=""):
    return PARTIAL.format(kind) if path in METADATA_ONLY else "application/json"


def request(method, path, body=None, content_type="application/merge-patch+json", list_of=""):
    """(status, decoded JSON or None) of one request."""
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=tls, timeout=30)
    try:
        headers = {"Accept": accept(path, list_of) if method == "GET" else "application/json"}
        if body is not None:
            headers["Content-Type"] = content_type
            body = json.dumps(body)
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        data = response.read()
        return response.status, (json.loads(data) if data else None)
    finally:
        conn.close()


def items(path):
    status, body = request("GET", path, list_of="List")
    return (body.get("items") or []) if status == 200 else []  # a metadata list of none: null


def watch(path):
    """Sets `changed` on every event of `path`'s watch, watching again when it ends or fails
    (a kind not served yet is asked for again once a CRD changes)."""
    while True:
        try:
            conn = http.client.HTTPSConnection("127.0.0.1", port, context=tls, timeout=None)
            conn.request("GET", f"{path}?watch=1", headers={"Accept": accept(path)})
            response = conn.getresponse()
            if response.status != 200:
                response.read()
                conn.close()
                crd_changed.wait(RESYNC)
                crd_changed.clear()
                continue
            changed.set()
            while response.readline():
                if path == CRDS:
                    crd_changed.set()
                changed.set()
            conn.close()
        except Exception as error:  # the API server restarting, or a watch cut: watch again
            print(f"standins: watch {path}: {error}", file=sys.stderr, flush=True)
            time.sleep(0.5)


crd_changed = threading.Event()


def matches(labels, selector):
    return all(labels.get(k) == v for k, v in (selector or {}).items())


def reconcile_shims(nodes):
    for shim in items(SHIMS):
        name, spec = shim["metadata"]["name"], shim.get("spec", {})
        selected = [n for n in nodes if matches(n["metadata"].get("labels", {}), spec.get("nodeSelector"))]
        for node in selected:
            if node["metadata"].get("labels", {}).get(name) != "provisioned":
                request("PATCH", f"/api/v1/nodes/{node['metadata']['name']}",
                        {"metadata": {"labels": {name: "provisioned"}}})
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
            request("PATCH", f"/apis/node.k8s.io/v1/runtimeclasses/{rc['name'][:63]}"
                    "?fieldManager=rig-runtime-class-manager&force=true", runtime_class,
                    "application/apply-patch+yaml")
        status = {"nodes": len(selected), "nodesReady": len(selected)}
        if {k: shim.get("status", {}).get(k) for k in status} != status:
            patch = {"status": status}
            if request("PATCH", f"{SHIMS}/{name}/status", patch)[0] != 200:
                request("PATCH", f"{SHIMS}/{name}", patch)


def operator_installed(crds):
    wanted = {"spinapps.core.spinkube.dev", "spinappexecutors.core.spinkube.dev"}
    names = {c["metadata"]["name"] for c in crds}
    deployments = items("/apis/apps/v1/deployments")
    return wanted <= names and any("spin-operator" in d["metadata"]["name"] for d in deployments)


for path in WATCHED:
    threading.Thread(target=watch, args=(path,), daemon=True).start()
operator = None
while True:
    changed.wait(RESYNC)
    changed.clear()  # an event from here on asks for another round
    try:
        crds = items(CRDS)
        if any(c["metadata"]["name"] == "shims.runtime.spinkube.dev" for c in crds):
            reconcile_shims(items("/api/v1/nodes"))
        installed = operator_installed(crds)
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
        time.sleep(0.2)
        changed.set()
