#!/usr/bin/env python3
"""A stand-in for containerd-shim-spin behind one kwok pod's port-forward: it answers one HTTP
request on stdin/stdout by running the wasm of the image that pod names, as Spin's WAGI executor
would (a core module with `_start`; the request in CGI variables and stdin, the response as CGI
headers and a body on stdout; the component's files preopened at `/`).

   wagi-shim.py KUBECONFIG NAMESPACE POD

kwok runs it once per forwarded connection when a `PortForward` named after the pod says so
(tests/it/support/rig.rs: `Rig::serve_pods_wasm`). The image is read from the registry the pod
names (plain HTTP: the test registries listen on loopback) through the Spin artifact's locked app,
so what answers is exactly what was pushed and what the pod runs. Anything else (a component that
is not a WAGI module, a registry error) is answered 502 with the reason, never a made-up page.
Needs wasmtime-py (scripts/install-test-tools.sh installs it).
"""
import base64
import json
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

LOCKED_APP = "application/vnd.fermyon.spin.application.v1+config"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def pod_image(kubeconfig, namespace, pod):
    out = subprocess.run(["kubectl", "--kubeconfig", kubeconfig, "get", "pod", pod, "-n", namespace,
                          "-o", "jsonpath={.spec.containers[0].image}"],
                         capture_output=True, text=True, check=True)
    return out.stdout.strip()


def registry_get(url, accept=None):
    request = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.read()


def load_app(image):
    """The locked app and a reader of its blobs, for `host/repo@sha256:…` or `host/repo:tag`."""
    host, _, rest = image.partition("/")
    if "@" in rest:
        repo, _, ref = rest.partition("@")
    else:
        repo, _, ref = rest.rpartition(":")
    base = f"http://{host}/v2/{repo}"
    manifest = json.loads(registry_get(f"{base}/manifests/{ref}", MANIFEST))
    blob = lambda digest: registry_get(f"{base}/blobs/{digest}")  # noqa: E731
    layer = next((l for l in manifest["layers"] if l["mediaType"] == LOCKED_APP), None)
    if layer is None:
        raise RuntimeError(f"{image} is not a Spin application (no locked-app layer)")
    return json.loads(blob(layer["digest"])), blob


def route_matches(route, path):
    if route.endswith("/..."):
        prefix = route[: -len("/...")]
        return path == prefix or path.startswith(prefix + "/") or prefix == ""
    return path == route


def read_request(stream):
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = stream.read1(4096)
        if not chunk:
            break
        head += chunk
    head, _, body = head.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, target, protocol = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = stream.read(length - len(body))
        if not chunk:
            break
        body += chunk
    return method, target, protocol, headers, body


def run_wagi(wasm, files, env, body):
    import wasmtime

    with tempfile.TemporaryDirectory() as work:
        root, stdin, stdout = Path(work, "root"), Path(work, "stdin"), Path(work, "stdout")
        root.mkdir()
        for path, data in files:
            target = root / path.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        stdin.write_bytes(body)
        config = wasmtime.WasiConfig()
        config.argv = [env["PATH_INFO"]]
        config.env = list(env.items())
        config.stdin_file = str(stdin)
        config.stdout_file = str(stdout)
        config.preopen_dir(str(root), "/")
        engine = wasmtime.Engine()
        store = wasmtime.Store(engine)
        store.set_wasi(config)
        linker = wasmtime.Linker(engine)
        linker.define_wasi()
        instance = linker.instantiate(store, wasmtime.Module(engine, wasm))
        start = instance.exports(store).get("_start")
        if start is None:
            raise RuntimeError("the component is not a WAGI module (no _start export)")
        start(store)
        return stdout.read_bytes()


def answer(out, status, headers, body):
    reason = {200: "OK", 404: "Not Found", 502: "Bad Gateway"}.get(status, "")
    lines = [f"HTTP/1.1 {status} {reason}"] + [f"{k}: {v}" for k, v in headers]
    lines += [f"content-length: {len(body)}", "connection: close"]
    out.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
    out.flush()


def main():
    kubeconfig, namespace, pod = sys.argv[1:4]
    stream, out = sys.stdin.buffer, sys.stdout.buffer
    method, target, protocol, headers, body = read_request(stream)
    path, _, query = target.partition("?")
    try:
        app, blob = load_app(pod_image(kubeconfig, namespace, pod))
        trigger = next((t for t in app.get("triggers", []) if t.get("trigger_type") == "http"
                        and route_matches(t["trigger_config"]["route"], path)), None)
        if trigger is None:
            return answer(out, 404, [], b"no route\n")
        config = trigger["trigger_config"]
        component = next(c for c in app["components"] if c["id"] == config["component"])
        wasm = blob(component["source"]["digest"])
        files = []
        for mount in component.get("files", []):
            content = mount.get("content", mount)  # Spin flattens the content reference
            inline = content.get("inline")
            data = base64.b64decode(inline + "=" * (-len(inline) % 4)) if inline is not None \
                else blob(content["digest"])
            files.append((mount["path"], data))
        env = {"REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": query,
               "SERVER_PROTOCOL": protocol, "X_MATCHED_ROUTE": config["route"],
               "X_FULL_URL": f"http://{headers.get('host', 'localhost')}{target}"}
        env.update({"HTTP_" + k.upper().replace("-", "_"): v for k, v in headers.items()})
        output = run_wagi(wasm, files, env, body)
    except Exception as e:  # the reason, as a real shim would log it
        return answer(out, 502, [("content-type", "text/plain")], f"wagi-shim: {e}\n".encode())
    head, _, payload = output.partition(b"\n\n")
    status, response_headers = 200, []
    for line in head.decode("latin-1").splitlines():
        name, _, value = line.partition(":")
        if name.strip().lower() == "status":
            status = int(value.strip().split()[0])
        elif name.strip():
            response_headers.append((name.strip(), value.strip()))
    answer(out, status, response_headers, payload)


if __name__ == "__main__":
    main()
