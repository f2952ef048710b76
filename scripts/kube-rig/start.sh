#!/usr/bin/env bash
# Starts the test control plane on loopback: etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler, kwok (two fake nodes, failure stages, port-forward/logs to a stand-in app) and the
# real spin-operator with its CRDs, the wasmtime-spin-v2 RuntimeClass and nodes labelled for the shim.
#   start.sh RUN_DIR [OWNER_PID] [--bare] [--flux] [--flux-on-install] [--kustomize] [--etcd-toxiproxy=PORT]
# --bare: the control plane and the kwok nodes only (no SpinKube: no operator, no SpinKube CRDs, no
#   RuntimeClass, no shim labels on the nodes), the cluster a `cluster install` starts from.
# --flux: also Flux's source-controller and helm-controller (out of cluster, as the operator is),
#   their CRDs, a chart registry (docker-registry on loopback) holding the upstream charts, and a
#   loopback HTTP server with the spin-operator release files and a Go-proxy mirror of its module
#   (built by build-flux.sh). The API server calls no admission webhooks in this mode: the charts'
#   webhooks would be kwok pods, which serve nothing (see CONTRIBUTING.md).
# --flux-on-install (implies --flux): Flux's parts as --flux, but neither the flux-system namespace
#   nor Flux's CRDs nor its running controllers: the cluster a `cluster install` that installs Flux
#   starts from. The real controllers start (out of cluster) once their CRDs are established and
#   their Deployments exist, as their pods would; MODULE_PROXY also serves their module zips (a copy
#   in RUN_DIR/upstream, which a test may change). Where build-flux-kustomize.sh's cache holds
#   kustomize-controller (it is not built here), that starts too once an install made its CRD and
#   the flux-system/kustomize-controller Deployment (`fleet add --mirror`); rig.env then says
#   KUSTOMIZE_ON_INSTALL=1.
# --kustomize (with --flux): also Flux's kustomize-controller and its CRD (build-flux-kustomize.sh,
#   a cache of its own), for delivery from OCI artifacts (OCIRepository + Kustomization).
# --etcd-toxiproxy=PORT: the API server reaches etcd through a proxy named `etcd` that this script
#   makes on the Toxiproxy server whose HTTP API listens on loopback PORT (tests put faults on it);
#   rig.env then says etcd_proxy_port. Everything else reaches etcd directly, as without it.
# Writes RUN_DIR/kubeconfig (cluster admin), RUN_DIR/rig.env (ports, pids) and RUN_DIR/logs/*.log.
# With OWNER_PID, a watchdog stops the rig and removes RUN_DIR when that process exits (one rig
# per test process).
# Stop it with stop.sh RUN_DIR.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
run="" owner="" bare="" flux="" flux_on_install="" kustomize="" etcd_toxiproxy=""
for arg in "$@"; do
  case "$arg" in
    --bare) bare=1 ;;
    --flux) flux=1 ;;
    --flux-on-install) flux=1 flux_on_install=1 ;;
    --kustomize) kustomize=1 flux=1 ;;
    --etcd-toxiproxy=[0-9]*) etcd_toxiproxy="${arg#*=}" ;;
    -*) echo "kube-rig: unknown option $arg (known: --bare, --flux, --flux-on-install, --kustomize, --etcd-toxiproxy=PORT)" >&2; exit 2 ;;
    *) if [ -z "$run" ]; then run="$arg"; elif [ -z "$owner" ]; then owner="$arg"; else echo "kube-rig: extra argument $arg" >&2; exit 2; fi ;;
  esac
done
[ -n "$run" ] || { echo "usage: start.sh RUN_DIR [OWNER_PID] [--bare] [--flux] [--flux-on-install] [--kustomize] [--etcd-toxiproxy=PORT]" >&2; exit 2; }
if [ -n "$flux_on_install" ] && [ -n "$kustomize" ]; then echo "kube-rig: --flux-on-install and --kustomize do not go together" >&2; exit 2; fi
cache="$(bash "$here/build.sh")"
bin="$cache/bin"
if [ -n "$flux" ]; then flux_cache="$(bash "$here/build-flux.sh")"; fi
if [ -n "$kustomize" ]; then kustomize_cache="$(bash "$here/build-flux-kustomize.sh")"; fi
if [ -n "$flux_on_install" ]; then kustomize_cache="$(bash "$here/build-flux-kustomize.sh" --check 2>/dev/null)" || kustomize_cache=""; fi
mkdir -p "$run/logs" "$run/pki"
run="$(cd "$run" && pwd)"
log() { echo "kube-rig: $*" >&2; }

free_ports() { # N → N free loopback ports
  python3 - "$1" <<'PY'
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))
PY
}
read -r etcd_port peer_port api_port kwok_port app_port source_metrics_port source_health_port \
  storage_port helm_metrics_port helm_health_port registry_port upstream_port kustomize_metrics_port \
  kustomize_health_port <<<"$(free_ports 14)"

make_pki() {
  local pki="$run/pki"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
    -subj "/CN=spin-aks-rig-ca" -keyout "$pki/ca.key" -out "$pki/ca.crt" 2>/dev/null
  issue() { # name subject [san]
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "$2" \
      -keyout "$pki/$1.key" -out "$pki/$1.csr" 2>/dev/null
    local ext="$pki/$1.ext"
    { echo "basicConstraints=CA:FALSE"; [ -n "${3:-}" ] && echo "subjectAltName=$3"; } > "$ext"
    openssl x509 -req -in "$pki/$1.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
      -days 30 -extfile "$ext" -out "$pki/$1.crt" 2>/dev/null
  }
  issue serving "/CN=kube-apiserver" "IP:127.0.0.1,IP:10.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default.svc"
  issue admin "/O=system:masters/CN=rig-admin"
  openssl genrsa -out "$pki/sa.key" 2048 2>/dev/null
  openssl rsa -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2>/dev/null
  # A static bearer token standing in for an Entra token of the AKS server app (tests of AKS access).
  echo 'spin-aks-rig-entra-token,entra-admin,entra-admin,"system:masters"' > "$pki/tokens.csv"
}

write_kubeconfig() {
  local b64="base64 -w0"
  cat > "$run/kubeconfig.tmp" <<KC
apiVersion: v1
kind: Config
clusters:
- name: rig
  cluster:
    server: https://127.0.0.1:$api_port
    certificate-authority-data: $($b64 < "$run/pki/ca.crt")
users:
- name: rig-admin
  user:
    client-certificate-data: $($b64 < "$run/pki/admin.crt")
    client-key-data: $($b64 < "$run/pki/admin.key")
contexts:
- name: rig
  context: {cluster: rig, user: rig-admin}
current-context: rig
KC
  chmod 600 "$run/kubeconfig.tmp" && mv "$run/kubeconfig.tmp" "$run/kubeconfig"
}

pids=()
spawn() { # name cmd...
  local name="$1"; shift
  "$@" >"$run/logs/$name.log" 2>&1 &
  pids+=("$!")
  echo "${name//-/_}_pid=$!" >> "$run/rig.env"
}

wait_for() { # what seconds command...
  local what="$1" secs="$2"; shift 2
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    if [ $SECONDS -ge $deadline ]; then
      log "$what did not become ready in ${secs}s; logs in $run/logs"
      tail -n 20 "$run"/logs/*.log >&2 || true
      bash "$here/stop.sh" "$run"
      exit 1
    fi
    sleep 0.3
  done
}

kwok_config() { # the pod stages: kwok's own fast stages, pod-ready skipping the failure label
  local module src
  module="$(cd "$cache/work" && go mod download -json "sigs.k8s.io/kwok@$(. "$here/versions.env"; echo "$KWOK_VERSION")" \
    | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')"
  src="$module/kustomize/stage/pod/fast"
  # A PortForward named after a pod sends that pod's forwarded connections to a command of its
  # own (tests run wagi-shim.py so): kwok reads them from the API, so its CRD goes in first.
  "${kc[@]}" apply --server-side -f "$module/kustomize/crd/bases/kwok.x-k8s.io_portforwards.yaml" >/dev/null
  "${kc[@]}" wait --for condition=Established --timeout 30s crd/portforwards.kwok.x-k8s.io >/dev/null
  {
    sed "s#^    matchExpressions:#    matchExpressions:\n    - {key: '.metadata.labels[\"spin-aks-test-fail\"]', operator: DoesNotExist}#" "$src/pod-ready.yaml"
    echo "---"; cat "$src/pod-complete.yaml"
    echo "---"; cat "$src/pod-delete.yaml"
    echo "---"; cat "$here/stages-fail.yaml"
    cat <<CFG
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: ClusterPortForward
metadata: {name: stand-in-app}
spec:
  forwards:
  - ports: [80]
    target: {port: $app_port, address: 127.0.0.1}
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: ClusterLogs
metadata: {name: stand-in-app}
spec:
  logs:
  - containers: []
    logsFile: $run/app/app.log
    previousLogsFile: $run/app/previous.log
    follow: true
CFG
  } > "$run/kwok.yaml"
}

flux_crds=(crd/helmrepositories.source.toolkit.fluxcd.io crd/helmcharts.source.toolkit.fluxcd.io crd/helmreleases.helm.toolkit.fluxcd.io)

flux_controllers() { # source- and helm-controller out of cluster
  local fbin="$flux_cache/bin"
  mkdir -p "$run/flux-artifacts"
  # source-controller's artifact server listens on loopback and advertises that address, so
  # helm-controller (also here) fetches chart artifacts from it; leader election is off by default.
  spawn source-controller env KUBECONFIG="$run/kubeconfig" RUNTIME_NAMESPACE=flux-system "$fbin/source-controller" \
    --watch-all-namespaces --log-level info \
    --metrics-addr "127.0.0.1:$source_metrics_port" --health-addr "127.0.0.1:$source_health_port" \
    --storage-path "$run/flux-artifacts" --storage-addr "127.0.0.1:$storage_port" --storage-adv-addr "127.0.0.1:$storage_port"
  spawn helm-controller env KUBECONFIG="$run/kubeconfig" RUNTIME_NAMESPACE=flux-system "$fbin/helm-controller" \
    --watch-all-namespaces --log-level info \
    --metrics-addr "127.0.0.1:$helm_metrics_port" --health-addr "127.0.0.1:$helm_health_port"
}

flux_when_installed() { # the controllers start as their pods would, once an install made them
  until "${kc[@]}" wait --for condition=Established --timeout 1s "${flux_crds[@]}" >/dev/null 2>&1 &&
    "${kc[@]}" get deployment -n flux-system source-controller helm-controller >/dev/null 2>&1; do
    sleep 1
  done
  echo "Flux's CRDs and Deployments are there: starting the controllers"
  flux_controllers
}

kustomize_when_installed() { # kustomize-controller starts as its pod would, once an install made it
  until "${kc[@]}" wait --for condition=Established --timeout 1s crd/kustomizations.kustomize.toolkit.fluxcd.io >/dev/null 2>&1 &&
    "${kc[@]}" get deployment -n flux-system kustomize-controller >/dev/null 2>&1; do
    sleep 1
  done
  echo "kustomize-controller's CRD and Deployment are there: starting it"
  kustomize_controller
}

goproxy_with_flux() { # RUN_DIR/upstream: the upstream files, and Flux's module zips in the Go proxy mirror
  cp -r "$flux_cache/upstream" "$run/upstream" && chmod -R u+w "$run/upstream"
  local module version json pair out
  for module in source-controller:"$(. "$here/flux.env"; echo "$SOURCE_CONTROLLER_VERSION")" \
    helm-controller:"$(. "$here/flux.env"; echo "$HELM_CONTROLLER_VERSION")"; do
    version="${module#*:}" module="github.com/fluxcd/${module%%:*}"
    json="$(cd "$flux_cache/work" && go mod download -json "$module@$version")"
    out="$run/upstream/goproxy/$module/@v" && mkdir -p "$out"
    for pair in Info:info GoMod:mod Zip:zip; do
      cp "$(sed -n 's/.*"'"${pair%:*}"'": "\(.*\)".*/\1/p' <<<"$json")" "$out/$version.${pair#*:}"
    done
  done
  chmod -R u+w "$run/upstream"
}

start_flux() { # Flux's controllers out of cluster, the chart registry, the upstream files
  local upstream="$flux_cache/upstream"
  if [ -n "$flux_on_install" ]; then
    goproxy_with_flux
    upstream="$run/upstream"
    spawn flux-when-installed flux_when_installed
    if [ -n "$kustomize_cache" ]; then
      spawn kustomize-when-installed kustomize_when_installed
      echo "KUSTOMIZE_ON_INSTALL=1" >> "$run/rig.env"
    fi
  else
    "${kc[@]}" create namespace flux-system >/dev/null
    "${kc[@]}" apply --server-side -f "$flux_cache/crds/flux" >/dev/null
    wait_for flux-CRDs 30 "${kc[@]}" wait --for condition=Established --timeout 5s "${flux_crds[@]}"
    flux_controllers
  fi
  # The chart registry: Debian's docker-registry (distribution) on loopback, plain HTTP.
  mkdir -p "$run/registry"
  cat > "$run/registry/config.yml" <<REG
version: 0.1
log: {level: warn}
storage: {filesystem: {rootdirectory: $run/registry/data}}
http: {addr: 127.0.0.1:$registry_port}
REG
  spawn chart-registry docker-registry serve "$run/registry/config.yml"
  wait_for chart-registry 30 curl -sf "http://127.0.0.1:$registry_port/v2/"
  local chart
  for chart in "$flux_cache"/charts/*.tgz; do
    helm push "$chart" "oci://127.0.0.1:$registry_port/charts" --plain-http >/dev/null 2>>"$run/logs/chart-registry.log"
  done
  spawn upstream python3 -m http.server "$upstream_port" --bind 127.0.0.1 --directory "$upstream"
  wait_for upstream 30 curl -sf "http://127.0.0.1:$upstream_port/spin-operator/"
  if [ -z "$flux_on_install" ]; then
    wait_for source-controller 60 curl -sf "http://127.0.0.1:$source_health_port/readyz"
    wait_for helm-controller 60 curl -sf "http://127.0.0.1:$helm_health_port/readyz"
  fi
  {
    echo "CHART_REGISTRY=127.0.0.1:$registry_port/charts"
    echo "UPSTREAM_URL=http://127.0.0.1:$upstream_port"
    echo "MODULE_PROXY=http://127.0.0.1:$upstream_port/goproxy"
    echo "SPIN_OPERATOR_CRDS=$flux_cache/upstream/spin-operator/$(. "$here/flux.env"; echo "$SPIN_OPERATOR_CHART_VERSION")/spin-operator.crds.yaml"
    echo "SPIN_OPERATOR_EXECUTOR=$flux_cache/upstream/spin-operator/$(. "$here/flux.env"; echo "$SPIN_OPERATOR_CHART_VERSION")/spin-operator.shim-executor.yaml"
    echo "FLUX_ARTIFACTS=http://127.0.0.1:$storage_port"
  } >> "$run/rig.env"
}

start_kustomize() { # Flux's kustomize-controller out of cluster; it fetches artifacts from source-controller
  "${kc[@]}" apply --server-side -f "$kustomize_cache/crds/flux" >/dev/null
  wait_for kustomize-CRDs 30 "${kc[@]}" wait --for condition=Established --timeout 5s \
    crd/kustomizations.kustomize.toolkit.fluxcd.io crd/ocirepositories.source.toolkit.fluxcd.io
  kustomize_controller
  wait_for kustomize-controller 60 curl -sf "http://127.0.0.1:$kustomize_health_port/readyz"
}

kustomize_controller() { # out of cluster; it fetches artifacts from source-controller's loopback address
  # Its own temporary directory, as a pod has: at start it deletes every `kustomization-*` in it
  # (internal/controller/tmpdir.go, purgeStaleTempDirs), another rig's builds in a shared /tmp too.
  mkdir -p "$run/tmp"
  spawn kustomize-controller env TMPDIR="$run/tmp" KUBECONFIG="$run/kubeconfig" RUNTIME_NAMESPACE=flux-system "$kustomize_cache/bin/kustomize-controller" \
    --watch-all-namespaces --log-level info --no-remote-bases \
    --metrics-addr "127.0.0.1:$kustomize_metrics_port" --health-addr "127.0.0.1:$kustomize_health_port"
}

etcd_proxy() { # --etcd-toxiproxy: a Toxiproxy proxy `etcd` before etcd, for the API server
  local made
  made="$(curl -sf -X POST "http://127.0.0.1:$etcd_toxiproxy/proxies" -H 'Content-Type: application/json' \
    -d '{"name": "etcd", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:'"$etcd_port"'", "enabled": true}')" || {
    log "no proxy for etcd: the Toxiproxy API on port $etcd_toxiproxy refused or did not answer"
    bash "$here/stop.sh" "$run"
    exit 1
  }
  etcd_for_api="$(sed -n 's/.*"listen": *"127\.0\.0\.1:\([0-9]*\)".*/\1/p' <<<"$made")"
  [ -n "$etcd_for_api" ] || { log "Toxiproxy made no etcd listener: $made"; bash "$here/stop.sh" "$run"; exit 1; }
  echo "etcd_proxy_port=$etcd_for_api" >> "$run/rig.env"
}

stand_in_app() { # a local HTTP server standing in for the Spin app behind port-forward, and its logs
  mkdir -p "$run/app/www"
  echo "Hello from the stand-in Spin app" > "$run/app/www/index.html"
  # kwok serves logs in the CRI format the kubelet reads: `<time> <stream> F <line>`.
  local t="2026-01-01T00:00:00.000000000Z"
  printf "$t stdout F %s\n" "Serving HTTP on 0.0.0.0:80" "Available Routes:" "  hello-aks: http://0.0.0.0:80 (wildcard)" > "$run/app/app.log"
  printf "$t stderr F %s\n" "Error: failed to load component hello-aks" "Caused by: wasm trap: unreachable" > "$run/app/previous.log"
  spawn stand-in-app python3 -m http.server "$app_port" --bind 127.0.0.1 --directory "$run/app/www"
}

: > "$run/rig.env"
echo "api_port=$api_port app_port=$app_port" >> "$run/rig.env"
mode=spinkube; [ -n "$bare" ] && mode=bare
echo "RIG_MODE=$mode${flux:+,flux}${flux_on_install:+-on-install}${kustomize:+,kustomize}" >> "$run/rig.env"
make_pki
write_kubeconfig
kc=(kubectl --kubeconfig "$run/kubeconfig")

spawn etcd "$bin/etcd" --name rig --data-dir "$run/etcd" --unsafe-no-fsync \
  --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
  --listen-peer-urls "http://127.0.0.1:$peer_port" --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
  --initial-cluster "rig=http://127.0.0.1:$peer_port"
wait_for etcd 30 curl -sf "http://127.0.0.1:$etcd_port/health"
etcd_for_api="$etcd_port"
if [ -n "$etcd_toxiproxy" ]; then etcd_proxy; fi

spawn kube-apiserver "$bin/kube-apiserver" --etcd-servers "http://127.0.0.1:$etcd_for_api" \
  --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$api_port" \
  --cert-dir "$run/pki" --tls-cert-file "$run/pki/serving.crt" --tls-private-key-file "$run/pki/serving.key" \
  --client-ca-file "$run/pki/ca.crt" --token-auth-file "$run/pki/tokens.csv" --authorization-mode RBAC --allow-privileged \
  --service-cluster-ip-range 10.0.0.0/24 --service-account-issuer https://kubernetes.default.svc \
  --service-account-key-file "$run/pki/sa.pub" --service-account-signing-key-file "$run/pki/sa.key" \
  --kubelet-client-certificate "$run/pki/admin.crt" --kubelet-client-key "$run/pki/admin.key" \
  --kubelet-preferred-address-types InternalIP --endpoint-reconciler-type none \
  ${flux:+--disable-admission-plugins ValidatingAdmissionWebhook,MutatingAdmissionWebhook}
wait_for kube-apiserver 90 "${kc[@]}" get --raw /readyz

spawn kube-controller-manager "$bin/kube-controller-manager" --kubeconfig "$run/kubeconfig" \
  --leader-elect=false --secure-port 0 --service-account-private-key-file "$run/pki/sa.key" \
  --root-ca-file "$run/pki/ca.crt" --cluster-signing-cert-file "$run/pki/ca.crt" \
  --cluster-signing-key-file "$run/pki/ca.key" --controllers '*,-nodeipam,-cloud-node-lifecycle,-service-lb-controller,-node-route-controller'
spawn kube-scheduler "$bin/kube-scheduler" --kubeconfig "$run/kubeconfig" --leader-elect=false --secure-port 0

stand_in_app
kwok_config
# Node Leases are the fake nodes' heartbeat: without the flag this kwok renews none and never
# refreshes a node's status, so the node lifecycle controller marked both nodes NotReady (and
# every pod unready) 50 s after the last status write, every minute or so, until kwok reset them.
spawn kwok "$bin/kwok" --kubeconfig "$run/kubeconfig" --config "$run/kwok.yaml" --enable-crds PortForward --node-lease-duration-seconds 40 \
  --manage-all-nodes=false --manage-nodes-with-annotation-selector kwok.x-k8s.io/node=fake \
  --node-ip 127.0.0.1 --node-port "$kwok_port" --server-address "127.0.0.1:$kwok_port" \
  --tls-cert-file "$run/pki/serving.crt" --tls-private-key-file "$run/pki/serving.key" --cidr 10.0.1.0/24

cp -r "$cache/crds" "$run/crds"
if [ -n "$bare" ]; then
  # The same two nodes without the shim labels runtime-class-manager would put on them.
  sed -e 's/, spin: "true", spin-v2: provisioned//' "$here/cluster.yaml" |
    awk 'BEGIN{RS="---\n"; ORS="---\n"} !/kind: RuntimeClass/' > "$run/nodes.yaml"
  "${kc[@]}" apply --server-side -f "$run/nodes.yaml" >/dev/null
else
  "${kc[@]}" apply --server-side -f "$cache/crds/spinapps.yaml" -f "$cache/crds/spinappexecutors.yaml" -f "$cache"/crds/secretproviderclasses-*.yaml -f "$here/cluster.yaml" >/dev/null
  wait_for CRDs 30 "${kc[@]}" wait --for condition=Established --timeout 5s crd/spinapps.core.spinkube.dev crd/spinappexecutors.core.spinkube.dev crd/secretproviderclasses.secrets-store.csi.x-k8s.io
  spawn spin-operator "$bin/spin-operator" --kubeconfig "$run/kubeconfig" \
    --metrics-bind-address 0 --health-probe-bind-address 0
fi
if [ -n "$flux" ]; then start_flux; fi
if [ -n "$kustomize" ]; then start_kustomize; fi
if [ -n "$bare" ] && [ -n "$flux" ]; then # what SpinKube's pods would do, once installed
  spawn standins python3 "$here/standins.py" "$run" "$bin/spin-operator"
fi
wait_for nodes 60 "${kc[@]}" wait --for condition=Ready --timeout 5s node/rig-node-1 node/rig-node-2
untainted() { [ -z "$("${kc[@]}" get nodes -o jsonpath='{.items[*].spec.taints}')" ]; }
wait_for untainted-nodes 60 untainted
wait_for default-serviceaccount 60 "${kc[@]}" get serviceaccount default -n default

if [ -n "$owner" ]; then # watchdog: the rig lives as long as the process that started it
  ( while kill -0 "$owner" 2>/dev/null; do sleep 1; done; bash "$here/stop.sh" "$run"; rm -rf "$run" ) >/dev/null 2>&1 &
  disown
fi
log "ready: KUBECONFIG=$run/kubeconfig"
