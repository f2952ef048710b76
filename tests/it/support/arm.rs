//! A stateful fake Azure Resource Manager over loopback HTTP, speaking ARM's JSON: lists paged
//! with `nextLink`, 429 throttling with `Retry-After`, the error bodies of docs/cluster.md, role
//! assignments, `listClusterUserCredential` and run command (202 + `Location`, then results),
//! which unzips the context and runs the real `kubectl` in it; user-assigned identities and their
//! federated credentials (20 at most, one write at a time), Key Vaults, Cosmos DB accounts and
//! their SQL role assignments (202 + `Azure-AsyncOperation`). It counts and logs requests, injects
//! faults by request kind ([`Fault`]), expires tokens, and can hold a request while a test kills.

use base64::Engine;
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[path = "arm_provision.rs"]
mod provision;
pub use provision::Provisioner;
#[path = "arm_flux.rs"]
mod flux;

pub const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const ACR_PULL: &str = "7f951dda-4ed3-4680-a7ca-43fe172d538d";
/// Federated credentials one identity may hold.
const CREDENTIAL_LIMIT: usize = 20;
/// How long a federated credential write stays in flight (a second write meanwhile gets 409).
const CREDENTIAL_WRITE_TIME: Duration = Duration::from_millis(20);

/// One AKS cluster: its ARM resource and the kubeconfig `listClusterUserCredential` returns.
#[derive(Clone, Debug)]
pub struct Cluster {
    pub resource: Value,
    pub user_kubeconfig: String,
}

/// Everything the fake knows; tests change it through [`FakeArm::world`].
#[derive(Debug, Default)]
pub struct World {
    /// The bearer token ARM accepts.
    pub arm_token: String,
    /// The `clusterToken` run command expects for Entra clusters.
    pub aks_token: String,
    pub subscriptions: Vec<Value>,
    pub clusters: Vec<Cluster>,
    pub registries: Vec<Value>,
    pub role_assignments: Vec<Value>,
    /// Items per list page.
    pub page_size: usize,
    /// Path → how many more requests get 429.
    pub throttle: HashMap<String, u32>,
    /// Path → how many more requests get 500 InternalServerError.
    pub server_errors: HashMap<String, u32>,
    /// How many more role assignment PUTs fail with PrincipalNotFound (replication delay).
    pub principal_delay: u32,
    /// Role assignment listings lag behind writes (ARM reads are eventually consistent): they list nothing.
    pub stale_role_lists: bool,
    /// Role assignment writes fail with AuthorizationFailed.
    pub deny_role_writes: bool,
    /// User-assigned identities (resources as ARM returns them).
    pub identities: Vec<Value>,
    /// Identity writes fail with AuthorizationFailed.
    pub deny_identity_writes: bool,
    /// Identity id (lower case) → its federated credentials.
    pub federated_credentials: HashMap<String, Vec<Value>>,
    /// Identity id (lower case) → federated credential writes in flight on it (tests may hold one
    /// open, as another client would).
    pub credential_writes_in_flight: HashMap<String, u32>,
    /// Federated credential writes refused with 409 because another was in flight.
    pub credential_conflicts: usize,
    pub key_vaults: Vec<Value>,
    pub cosmos_accounts: Vec<Value>,
    /// Cosmos DB SQL role assignments whose operation succeeded.
    pub sql_role_assignments: Vec<Value>,
    /// Operation id → (polls still answered InProgress, the assignment it adds when it succeeds).
    sql_operations: HashMap<String, (u32, Value)>,
    /// The kubeconfig run command's kubectl uses (none: a kubeconfig without clusters).
    pub run_command_kubeconfig: Option<PathBuf>,
    /// Run command requests received (bodies).
    pub run_commands: Vec<Value>,
    results: HashMap<String, Arc<Mutex<Option<Value>>>>,
    /// "METHOD path" → count.
    pub requests: HashMap<String, usize>,
    /// Cluster id (lower case) → its agent pools.
    pub agent_pools: HashMap<String, Vec<Value>>,
    /// Cluster id (lower case) → its Flux cluster extension.
    pub extensions: HashMap<String, Value>,
    /// How long an extension's creation runs after its PUT, `Creating` until then (none: it
    /// is `Succeeded` at once).
    pub extension_creation: Option<Duration>,
    /// Cluster id (lower case) → when its extension's creation ends.
    extensions_ready: HashMap<String, std::time::Instant>,
    /// The rig whose nodes get an agent pool's `nodeLabels` (AKS rolls them onto the pool's nodes).
    pub pool_nodes_kubeconfig: Option<PathBuf>,
    /// AKS operation id → polls still answered InProgress.
    aks_operations: HashMap<String, u32>,
    /// Resource groups, registry creation, cluster creation and deletion.
    pub provisioning: provision::Provisioning,
    /// Flux configurations and the rig the Flux extension writes into (arm_flux.rs).
    pub flux: flux::FluxWorld,
    /// Faults injected into requests of one kind ([`Injection`]).
    pub faults: Vec<Injection>,
    /// Each bearer token is good for this many requests; later ones get 401
    /// `ExpiredAuthenticationToken`, as ARM answers a token past its expiry.
    pub token_lifetime: Option<usize>,
    /// Bearer token → requests made with it.
    token_uses: HashMap<String, usize>,
    /// Operation id → the error its status reports (a [`Fault::FailedOperation`] started it).
    failing_operations: HashMap<String, Value>,
    /// Every request in arrival order, as "METHOD path".
    pub log: Vec<String>,
    /// Request number `n` (1-based, in [`World::log`]) is held unanswered, before it is carried out
    /// (`false`) or after (`true`), so a test can kill the client there.
    pub hold: Option<(usize, bool)>,
    /// The first request with this method whose path ends so is held, before it is carried out
    /// (`false`) or after (`true`), as [`World::hold`] holds one by number.
    pub hold_matching: Option<(String, String, bool)>,
    /// Whether the held request has arrived.
    pub holding: bool,
}

/// A fault of the fake ARM, for requests of one kind.
#[derive(Clone, Debug)]
pub enum Fault {
    /// 429 `TooManyRequests` with `Retry-After: <seconds>`.
    Throttle { retry_after: u64 },
    /// 500 or 503 with ARM's error body.
    ServerError(u16),
    /// The request is carried out, but the long-running operation it starts ends `Failed` with
    /// this error (`{"code","message"}`) and its resource is left `provisioningState: Failed`.
    FailedOperation { code: String, message: String },
}

/// `fault` for the next `times` requests whose method is `method` and whose path contains
/// `path` (case-insensitive).
#[derive(Clone, Debug)]
pub struct Injection {
    pub method: String,
    pub path: String,
    pub fault: Fault,
    pub times: u32,
}

impl Injection {
    pub fn new(method: &str, path: &str, fault: Fault, times: u32) -> Injection {
        Injection {
            method: method.into(),
            path: path.to_ascii_lowercase(),
            fault,
            times,
        }
    }
}

pub struct FakeArm {
    /// `http://127.0.0.1:<port>`: the value for `SPIN_AKS_ARM_ENDPOINT`.
    pub endpoint: String,
    world: Arc<Mutex<World>>,
}

impl FakeArm {
    pub async fn start(arm_token: &str, aks_token: &str) -> FakeArm {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let world = Arc::new(Mutex::new(World {
            arm_token: arm_token.into(),
            aks_token: aks_token.into(),
            page_size: 100,
            ..World::default()
        }));
        let kubectl_dir = which("kubectl").and_then(|p| p.parent().map(Path::to_path_buf));
        let shared = Arc::new(Shared {
            endpoint: endpoint.clone(),
            world: world.clone(),
            kubectl_dir,
        });
        super::serve_http(listener, move |req| {
            let shared = shared.clone();
            async move { shared.route(req).await }
        });
        FakeArm { endpoint, world }
    }

    pub fn world<T>(&self, change: impl FnOnce(&mut World) -> T) -> T {
        change(&mut self.world.lock().unwrap())
    }

    /// Requests seen for `method` on `path` (no query).
    pub fn count(&self, method: &str, path: &str) -> usize {
        let key = format!("{method} {path}");
        self.world(|w| w.requests.get(&key).copied().unwrap_or(0))
    }

    pub fn total_requests(&self) -> usize {
        self.world(|w| w.requests.values().sum())
    }

    /// Requests other than GET: everything that could have changed something.
    pub fn writes(&self) -> usize {
        self.world(|w| {
            w.requests
                .iter()
                .filter(|(key, _)| !key.starts_with("GET "))
                .map(|(_, n)| n)
                .sum()
        })
    }

    pub fn add_subscription(&self, id: &str, name: &str) {
        self.world(|w| {
            w.subscriptions.push(json!({
                "id": format!("/subscriptions/{id}"),
                "subscriptionId": id,
                "tenantId": TENANT,
                "displayName": name,
                "state": "Enabled",
                "authorizationSource": "RoleBased",
                "subscriptionPolicies": {"locationPlacementId": "Public_2014-09-01", "quotaId": "PayAsYouGo_2014-09-01", "spendingLimit": "Off"},
            }))
        });
    }

    /// A running cluster (Entra-managed when `entra`); its kubelet identity's object id is
    /// `kubelet-<name>`. Returns the cluster's resource id.
    pub fn add_cluster(
        &self,
        subscription: &str,
        group: &str,
        name: &str,
        entra: bool,
        user_kubeconfig: &str,
    ) -> String {
        let id = format!("/subscriptions/{subscription}/resourcegroups/{group}/providers/Microsoft.ContainerService/managedClusters/{name}");
        let mut properties = json!({
            "provisioningState": "Succeeded",
            "powerState": {"code": "Running"},
            "kubernetesVersion": "1.33.2",
            "currentKubernetesVersion": "1.33.2",
            "dnsPrefix": format!("{name}-dns"),
            "fqdn": format!("{name}-dns-abc123.hcp.westeurope.azmk8s.io"),
            "azurePortalFQDN": format!("{name}-dns-abc123.portal.hcp.westeurope.azmk8s.io"),
            "agentPoolProfiles": [{"name": "nodepool1", "count": 2, "vmSize": "Standard_D2s_v5", "mode": "System", "osType": "Linux"}],
            "nodeResourceGroup": format!("MC_{group}_{name}_westeurope"),
            "enableRBAC": true,
            "identityProfile": {"kubeletidentity": {
                "resourceId": format!("/subscriptions/{subscription}/resourcegroups/MC_{group}_{name}_westeurope/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}-agentpool"),
                "clientId": format!("client-{name}"),
                "objectId": format!("kubelet-{name}"),
            }},
            "oidcIssuerProfile": {"enabled": true, "issuerURL": format!("https://westeurope.oic.prod-aks.azure.com/{TENANT}/{name}/")},
            "securityProfile": {"workloadIdentity": {"enabled": true}},
        });
        if entra {
            properties["aadProfile"] =
                json!({"managed": true, "enableAzureRBAC": true, "tenantID": TENANT});
            properties["disableLocalAccounts"] = json!(true);
        }
        let resource = json!({
            "id": id,
            "location": "westeurope",
            "name": name,
            "type": "Microsoft.ContainerService/ManagedClusters",
            "identity": {"type": "SystemAssigned", "principalId": format!("cluster-identity-{name}"), "tenantId": TENANT},
            "sku": {"name": "Base", "tier": "Free"},
            "properties": properties,
        });
        let pool = json!({
            "id": format!("{id}/agentPools/nodepool1"),
            "name": "nodepool1",
            "type": "Microsoft.ContainerService/managedClusters/agentPools",
            "properties": {"count": 2, "vmSize": "Standard_D2s_v5", "mode": "System", "osType": "Linux", "osSKU": "AzureLinux", "provisioningState": "Succeeded", "powerState": {"code": "Running"}, "nodeImageVersion": "AKSAzureLinux-V3gen2-202511.01.0"},
        });
        self.world(|w| {
            w.agent_pools.insert(id.to_ascii_lowercase(), vec![pool]);
            w.clusters.push(Cluster {
                resource,
                user_kubeconfig: user_kubeconfig.into(),
            })
        });
        id
    }

    /// Changes a cluster's resource JSON.
    pub fn cluster(&self, name: &str, change: impl FnOnce(&mut Value)) {
        self.world(|w| {
            let cluster = w
                .clusters
                .iter_mut()
                .find(|c| c.resource["name"] == name)
                .unwrap();
            change(&mut cluster.resource)
        })
    }

    /// A registry `<name>.azurecr.io`; ABAC repository permissions mode when `abac`. Returns its id.
    pub fn add_registry(&self, subscription: &str, group: &str, name: &str, abac: bool) -> String {
        let id = format!("/subscriptions/{subscription}/resourceGroups/{group}/providers/Microsoft.ContainerRegistry/registries/{name}");
        let mode = if abac {
            "AbacRepositoryPermissions"
        } else {
            "LegacyRegistryPermissions"
        };
        self.world(|w| {
            w.registries.push(json!({
                "sku": {"name": "Basic", "tier": "Basic"},
                "type": "Microsoft.ContainerRegistry/registries",
                "id": id,
                "name": name,
                "location": "westeurope",
                "tags": {},
                "properties": {
                    "loginServer": format!("{name}.azurecr.io"),
                    "creationDate": "2026-01-01T00:00:00Z",
                    "provisioningState": "Succeeded",
                    "adminUserEnabled": false,
                    "publicNetworkAccess": "Enabled",
                    "roleAssignmentMode": mode,
                },
            }))
        });
        id
    }

    /// A Key Vault `https://<name>.vault.azure.net/`. Returns its id.
    pub fn add_key_vault(&self, subscription: &str, group: &str, name: &str) -> String {
        let id = format!("/subscriptions/{subscription}/resourceGroups/{group}/providers/Microsoft.KeyVault/vaults/{name}");
        self.world(|w| {
            w.key_vaults.push(json!({
                "id": id,
                "name": name,
                "type": "Microsoft.KeyVault/vaults",
                "location": "westeurope",
                "tags": {},
                "properties": {
                    "tenantId": TENANT,
                    "sku": {"family": "A", "name": "standard"},
                    "vaultUri": format!("https://{name}.vault.azure.net/"),
                    "enableRbacAuthorization": true,
                    "provisioningState": "Succeeded",
                },
            }))
        });
        id
    }

    /// A Cosmos DB for NoSQL account. Returns its id.
    pub fn add_cosmos_account(&self, subscription: &str, group: &str, name: &str) -> String {
        let id = format!("/subscriptions/{subscription}/resourceGroups/{group}/providers/Microsoft.DocumentDB/databaseAccounts/{name}");
        self.world(|w| {
            w.cosmos_accounts.push(json!({
                "id": id,
                "name": name,
                "type": "Microsoft.DocumentDB/databaseAccounts",
                "location": "West Europe",
                "kind": "GlobalDocumentDB",
                "properties": {
                    "provisioningState": "Succeeded",
                    "documentEndpoint": format!("https://{name}.documents.azure.com:443/"),
                    "databaseAccountOfferType": "Standard",
                    "disableLocalAuth": true,
                },
            }))
        });
        id
    }

    /// Lets every Cosmos DB SQL role assignment operation still running finish (nobody polled it:
    /// its client was killed), as Cosmos DB finishes them on its own.
    pub fn finish_operations(&self) {
        self.world(|w| {
            let pending: Vec<Value> = w.sql_operations.drain().map(|(_, (_, a))| a).collect();
            for assignment in pending {
                if !w.sql_role_assignments.contains(&assignment) {
                    w.sql_role_assignments.push(assignment);
                }
            }
        })
    }

    /// The user-assigned identity named `name`, if any.
    pub fn identity(&self, name: &str) -> Option<Value> {
        self.world(|w| w.identities.iter().find(|i| i["name"] == name).cloned())
    }

    /// The federated credentials of the identity `id`.
    pub fn credentials_of(&self, id: &str) -> Vec<Value> {
        let key = id.to_ascii_lowercase();
        self.world(|w| {
            w.federated_credentials
                .get(&key)
                .cloned()
                .unwrap_or_default()
        })
    }

    /// Role assignments held by `principal` (scope, role definition id).
    pub fn assignments_of(&self, principal: &str) -> Vec<(String, String)> {
        self.world(|w| {
            w.role_assignments
                .iter()
                .filter(|a| a["properties"]["principalId"] == principal)
                .map(|a| {
                    let p = &a["properties"];
                    (
                        p["scope"].as_str().unwrap().into(),
                        p["roleDefinitionId"].as_str().unwrap().into(),
                    )
                })
                .collect()
        })
    }
}

/// The AcrPull role definition id in `subscription`.
pub fn acr_pull(subscription: &str) -> String {
    format!("/subscriptions/{subscription}/providers/Microsoft.Authorization/roleDefinitions/{ACR_PULL}")
}

/// The kubeconfig `listClusterUserCredential?format=exec` returns for an Entra cluster at `server`.
pub fn entra_user_kubeconfig(name: &str, group: &str, server: &str, ca_pem: &str) -> String {
    let ca = base64::engine::general_purpose::STANDARD.encode(ca_pem);
    format!(
        "apiVersion: v1\nclusters:\n- cluster:\n    certificate-authority-data: {ca}\n    server: {server}\n  name: {name}\n\
contexts:\n- context:\n    cluster: {name}\n    user: clusterUser_{group}_{name}\n  name: {name}\ncurrent-context: {name}\nkind: Config\npreferences: {{}}\n\
users:\n- name: clusterUser_{group}_{name}\n  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1beta1\n      args:\n      - get-token\n      - --environment\n      - AzurePublicCloud\n      - --server-id\n      - 6dae42f8-4368-4678-94ff-3960e28e3630\n      - --client-id\n      - 80faf920-1908-4b52-b5ef-a8e7bedfc67a\n      - --tenant-id\n      - {TENANT}\n      - --login\n      - devicecode\n      command: kubelogin\n      env: null\n      installHint: |2\n\n        kubelogin is not installed which is required to connect to AAD enabled cluster.\n      provideClusterInfo: false\n"
    )
}

fn which(name: &str) -> Option<PathBuf> {
    ["/usr/local/bin", "/usr/bin"]
        .iter()
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
}

struct Shared {
    endpoint: String,
    world: Arc<Mutex<World>>,
    kubectl_dir: Option<PathBuf>,
}

type Reply = Response<Full<Bytes>>;

fn reply(status: StatusCode, body: Value) -> Reply {
    let request_id = ("x-ms-request-id", "00000000-0000-0000-0000-000000000000");
    super::json_reply(status, &body, request_id)
}

/// ARM's answer to a token past its expiry: 401, `WWW-Authenticate` naming `invalid_token`.
fn expired_token() -> Reply {
    let mut expired = arm_error(StatusCode::UNAUTHORIZED, "ExpiredAuthenticationToken", "The access token expiry UTC time '12/6/2026 8:00:00 PM' is earlier than current UTC time '12/6/2026 8:05:00 PM'.");
    let challenge = "Bearer authorization_uri=\"https://login.windows.net/\", error=\"invalid_token\", error_description=\"The access token has expired.\"";
    expired
        .headers_mut()
        .insert("www-authenticate", challenge.parse().unwrap());
    expired
}

/// ARM's error envelope.
pub fn arm_error(status: StatusCode, code: &str, message: &str) -> Reply {
    reply(status, json!({"error": {"code": code, "message": message}}))
}

fn api_version_for(path: &str) -> &'static str {
    let lower = path.to_ascii_lowercase();
    if lower.contains("/deploymentsafeguards/") {
        "2025-07-01"
    } else if lower.contains("/microsoft.kubernetesconfiguration/fluxconfigurations") {
        "2025-04-01"
    } else if lower.contains("/microsoft.kubernetesconfiguration/") {
        "2023-05-01"
    } else if lower.contains("/microsoft.authorization/roleassignments") {
        "2022-04-01"
    } else if lower.contains("/microsoft.managedidentity/") {
        "2024-11-30"
    } else if lower.contains("/microsoft.documentdb/") {
        "2024-11-15"
    } else if lower.contains("/microsoft.keyvault/") {
        "2023-07-01"
    } else if lower.contains("/microsoft.containerservice/") {
        "2025-10-01"
    } else if lower.contains("/microsoft.containerregistry/") {
        "2025-11-01"
    } else if lower.contains("/resourcegroups") && !lower.contains("/providers/") {
        "2021-04-01"
    } else {
        "2022-12-01"
    }
}

impl Shared {
    /// Counts and logs the request, holds it when asked, injects the faults of [`World::faults`]
    /// and [`World::token_lifetime`], then routes it.
    async fn route(&self, req: Request<Incoming>) -> Reply {
        let received = super::receive(req).await;
        let (method, path) = (received.method.clone(), received.path.clone());
        let (hold, fault) = {
            let mut w = self.world.lock().unwrap();
            w.log.push(format!("{method} {path}"));
            let n = w.log.len();
            let matching = (w.hold_matching.as_ref())
                .filter(|(m, end, _)| *m == method && path.ends_with(end.as_str()))
                .map(|(_, _, after)| *after);
            let hold = (w.hold.filter(|(at, _)| *at == n).map(|(_, after)| after)).or(matching);
            if matching.is_some() {
                w.hold_matching = None;
            }
            let lower = path.to_ascii_lowercase();
            let injection = (w.faults.iter_mut())
                .find(|f| f.times > 0 && f.method == method && lower.contains(&f.path));
            let fault = injection.map(|f| {
                f.times -= 1;
                f.fault.clone()
            });
            (hold, fault)
        };
        if hold == Some(false) {
            self.hold_forever().await;
        }
        let reply = self.faulty(received, fault).await;
        if hold == Some(true) {
            self.hold_forever().await;
        }
        reply
    }

    /// Marks the held request as arrived and never answers it.
    async fn hold_forever(&self) {
        self.world.lock().unwrap().holding = true;
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }

    async fn faulty(&self, received: super::Received, fault: Option<Fault>) -> Reply {
        let (method, path) = (received.method.clone(), received.path.clone());
        {
            let mut w = self.world.lock().unwrap();
            *w.requests.entry(format!("{method} {path}")).or_default() += 1;
            let bearer = received.bearer.clone().unwrap_or_default();
            let expected = format!("Bearer {}", w.arm_token);
            // A fake `az` that rotates tokens hands out `<token>.<n>` (arm_cli.rs).
            if bearer != expected && !bearer.starts_with(&format!("{expected}.")) {
                return arm_error(
                    StatusCode::UNAUTHORIZED,
                    "InvalidAuthenticationToken",
                    "The access token is invalid.",
                );
            }
            if let Some(lifetime) = w.token_lifetime {
                let uses = w.token_uses.entry(bearer).or_default();
                *uses += 1;
                if *uses > lifetime {
                    return expired_token();
                }
            }
            if let Some(failed) = self.failed_operation(&w, &method, &path) {
                return failed;
            }
            match &fault {
                Some(Fault::Throttle { retry_after }) => {
                    let mut throttled = arm_error(StatusCode::TOO_MANY_REQUESTS, "TooManyRequests", "The request is being throttled as the limit has been reached for operation type - Write_ObservationWindow_00:01:00. For more information, see - https://aka.ms/srpthrottlinglimits");
                    throttled
                        .headers_mut()
                        .insert("retry-after", retry_after.to_string().parse().unwrap());
                    return throttled;
                }
                Some(Fault::ServerError(status)) => {
                    let (code, message) = match status {
                        503 => ("ServiceUnavailable", "The service is currently unavailable. Please try again later."),
                        _ => ("InternalServerError", "Encountered internal server error. Diagnostic information: timestamp '20261206T201500Z', subscription id '00000000-0000-0000-0000-000000000000', tracking id '00000000-0000-0000-0000-000000000000', request correlation id '00000000-0000-0000-0000-000000000000'."),
                    };
                    return arm_error(StatusCode::from_u16(*status).unwrap(), code, message);
                }
                _ => {}
            }
        }
        let snapshot = self.world.lock().unwrap().clusters.clone();
        let reply = self.route_inner(received).await;
        self.finish_creation().await;
        if let Some(Fault::FailedOperation { code, message }) = fault {
            self.fail_operation(
                &reply,
                &method,
                &path,
                snapshot,
                json!({"code": code, "message": message}),
            );
        }
        reply
    }

    /// The status of an operation a [`Fault::FailedOperation`] made fail, when `path` asks for one.
    fn failed_operation(&self, w: &World, method: &str, path: &str) -> Option<Reply> {
        let id = path.rsplit('/').next()?;
        let error = w.failing_operations.get(id).filter(|_| method == "GET")?;
        Some(reply(
            StatusCode::OK,
            json!({"name": id, "status": "Failed", "startTime": "2026-12-06T20:00:00Z", "endTime": "2026-12-06T20:03:00Z", "error": error}),
        ))
    }

    /// Makes the operation `reply` started end `Failed` with `error`, and leaves the resource at
    /// `path` (a cluster, restored from `before` when it was being deleted) `Failed`.
    fn fail_operation(
        &self,
        reply: &Reply,
        method: &str,
        path: &str,
        before: Vec<Cluster>,
        error: Value,
    ) {
        let Some(operation) = reply.headers().get("azure-asyncoperation") else {
            return;
        };
        let url = operation.to_str().unwrap();
        let id = url.split('?').next().unwrap().rsplit('/').next().unwrap();
        let mut w = self.world.lock().unwrap();
        w.failing_operations.insert(id.to_string(), error);
        let same = |c: &Cluster| {
            c.resource["id"]
                .as_str()
                .unwrap()
                .eq_ignore_ascii_case(path)
        };
        if method == "DELETE" && !w.clusters.iter().any(same) {
            if let Some(cluster) = before.into_iter().find(same) {
                w.clusters.push(cluster);
            }
        }
        if let Some(cluster) = w.clusters.iter_mut().find(|c| same(c)) {
            cluster.resource["properties"]["provisioningState"] = json!("Failed");
        }
        let lower = path.to_ascii_lowercase();
        if let Some(configuration) = w.flux.configurations.get_mut(&lower) {
            configuration["properties"]["provisioningState"] = json!("Failed");
        }
        for extension in w.extensions.values_mut() {
            if extension["id"]
                .as_str()
                .is_some_and(|id| id.eq_ignore_ascii_case(&lower))
            {
                extension["properties"]["provisioningState"] = json!("Failed");
            }
        }
    }

    async fn route_inner(&self, received: super::Received) -> Reply {
        let super::Received {
            method,
            path,
            query,
            body,
            ..
        } = received;
        {
            let mut w = self.world.lock().unwrap();
            if let Some(left) = w.throttle.get_mut(&path).filter(|n| **n > 0) {
                *left -= 1;
                let mut throttled = arm_error(StatusCode::TOO_MANY_REQUESTS, "TooManyRequests", "The request is being throttled as the limit has been reached for operation type - Read_ObservationWindow_00:05:00.");
                throttled
                    .headers_mut()
                    .insert("retry-after", "1".parse().unwrap());
                return throttled;
            }
            if let Some(left) = w.server_errors.get_mut(&path).filter(|n| **n > 0) {
                *left -= 1;
                return arm_error(StatusCode::INTERNAL_SERVER_ERROR, "InternalServerError", "Encountered internal server error. Diagnostic information: timestamp '20260101T000000Z'.");
            }
        }
        let expected = api_version_for(&path);
        if query.get("api-version").map(String::as_str) != Some(expected) {
            return arm_error(
                StatusCode::BAD_REQUEST,
                "InvalidApiVersionParameter",
                &format!(
                    "The api-version '{}' is invalid. The supported versions include '{expected}'.",
                    query.get("api-version").cloned().unwrap_or_default()
                ),
            );
        }
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let lower: Vec<String> = segments.iter().map(|s| s.to_ascii_lowercase()).collect();
        let lower: Vec<&str> = lower.iter().map(String::as_str).collect();
        let json_body = || serde_json::from_slice::<Value>(&body).unwrap_or(Value::Null);
        let provisioned = (self.route_provision(&method, &lower, &segments, &json_body())).await;
        if let Some(reply) = provisioned {
            return reply;
        }
        match (method.as_str(), lower.as_slice()) {
            ("GET", ["subscriptions"]) => self.list(&path, &query, |w| w.subscriptions.clone()),
            (
                "GET",
                ["subscriptions", _, "providers", "microsoft.containerregistry", "registries"],
            ) => self.list_in(&path, &query, segments[1], |w| &w.registries),
            (
                "GET",
                ["subscriptions", _, "providers", "microsoft.containerservice", "managedclusters"],
            ) => {
                let sub = segments[1].to_string();
                self.list(&path, &query, |w| {
                    w.clusters
                        .iter()
                        .map(|c| c.resource.clone())
                        .filter(|c| in_subscription(c, &sub))
                        .collect()
                })
            }
            ("GET", [.., "providers", "microsoft.authorization", "roleassignments"]) => {
                let scope = path
                    .split("/providers/Microsoft.Authorization")
                    .next()
                    .unwrap()
                    .to_string();
                let filter = query.get("$filter").cloned().unwrap_or_default();
                self.list(&path, &query, |w| {
                    let visible = if w.stale_role_lists {
                        &[][..]
                    } else {
                        &w.role_assignments[..]
                    };
                    visible
                        .iter()
                        .filter(|a| {
                            scope.to_ascii_lowercase().starts_with(
                                &a["properties"]["scope"]
                                    .as_str()
                                    .unwrap()
                                    .to_ascii_lowercase(),
                            )
                        })
                        .filter(|a| {
                            filter.is_empty()
                                || filter
                                    == format!(
                                        "principalId eq '{}'",
                                        a["properties"]["principalId"].as_str().unwrap()
                                    )
                        })
                        .cloned()
                        .collect()
                })
            }
            ("PUT", [.., "providers", "microsoft.authorization", "roleassignments", _]) => {
                self.put_role_assignment(&path, json_body())
            }
            ("GET", ["subscriptions", _, "providers", "microsoft.keyvault", "vaults"]) => {
                self.list_in(&path, &query, segments[1], |w| &w.key_vaults)
            }
            (
                "GET",
                ["subscriptions", _, "providers", "microsoft.documentdb", "databaseaccounts"],
            ) => self.list_in(&path, &query, segments[1], |w| &w.cosmos_accounts),
            (
                "GET",
                ["subscriptions", _, "providers", "microsoft.documentdb", "locations", _, "operationsstatus", id],
            ) => self.sql_operation(id),
            (
                _,
                ["subscriptions", _, "resourcegroups", _, "providers", "microsoft.managedidentity", "userassignedidentities", _, rest @ ..],
            ) => {
                let id = segments[..8].join("/");
                match (method.as_str(), rest) {
                    ("GET", []) => self.get_identity(&id),
                    ("PUT", []) => self.put_identity(&id, json_body()),
                    ("GET", ["federatedidentitycredentials"]) => {
                        let found = self.get_identity(&id);
                        if found.status() != StatusCode::OK {
                            return found;
                        }
                        let key = format!("/{id}").to_ascii_lowercase();
                        self.list(&path, &query, |w| {
                            w.federated_credentials
                                .get(&key)
                                .cloned()
                                .unwrap_or_default()
                        })
                    }
                    ("PUT", ["federatedidentitycredentials", _]) => {
                        self.put_credential(&id, segments[9], json_body()).await
                    }
                    _ => arm_error(StatusCode::NOT_FOUND, "NotFound", "unknown operation"),
                }
            }
            (
                _,
                ["subscriptions", _, "resourcegroups", _, "providers", "microsoft.documentdb", "databaseaccounts", _, "sqlroleassignments", rest @ ..],
            ) => {
                let account = format!("/{}", segments[..8].join("/"));
                match (method.as_str(), rest) {
                    ("GET", []) => self.list(&path, &query, |w| {
                        w.sql_role_assignments
                            .iter()
                            .filter(|a| {
                                let id = a["id"].as_str().unwrap().to_ascii_lowercase();
                                id.starts_with(&account.to_ascii_lowercase())
                            })
                            .cloned()
                            .collect()
                    }),
                    ("PUT", [_]) => self.put_sql_role_assignment(&account, &path, json_body()),
                    _ => arm_error(StatusCode::NOT_FOUND, "NotFound", "unknown operation"),
                }
            }
            (
                _,
                ["subscriptions", _, "resourcegroups", _, "providers", "microsoft.containerservice", "managedclusters", _, rest @ ..],
            ) => {
                let Some(cluster) = self.find_cluster(&segments) else {
                    return arm_error(StatusCode::NOT_FOUND, "ResourceNotFound", &format!("The Resource 'Microsoft.ContainerService/managedClusters/{}' under resource group '{}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix", segments[7], segments[3]));
                };
                match (method.as_str(), rest) {
                    ("GET", []) => reply(StatusCode::OK, cluster.resource),
                    ("POST", ["listclusterusercredential"]) => reply(
                        StatusCode::OK,
                        json!({"kubeconfigs": [{"name": "clusterUser", "value": base64::engine::general_purpose::STANDARD.encode(&cluster.user_kubeconfig)}]}),
                    ),
                    ("POST", ["runcommand"]) => {
                        self.start_run_command(&path, &cluster, json_body())
                    }
                    ("GET", ["commandresults", id]) => self.command_result(id),
                    ("GET", ["agentpools"]) => {
                        let key = cluster.resource["id"]
                            .as_str()
                            .unwrap()
                            .to_ascii_lowercase();
                        let pools = self.world.lock().unwrap().agent_pools.get(&key).cloned();
                        reply(StatusCode::OK, json!({"value": pools.unwrap_or_default()}))
                    }
                    ("PUT", ["agentpools", name]) => {
                        self.put_agent_pool(&cluster, name, json_body())
                    }
                    (
                        "GET",
                        ["providers", "microsoft.kubernetesconfiguration", "extensions", _],
                    ) => {
                        let key = cluster.resource["id"]
                            .as_str()
                            .unwrap()
                            .to_ascii_lowercase();
                        let mut w = self.world.lock().unwrap();
                        let ready = w.extensions_ready.get(&key).copied();
                        if ready.is_some_and(|at| at <= std::time::Instant::now()) {
                            w.extensions_ready.remove(&key);
                            if let Some(extension) = w.extensions.get_mut(&key) {
                                extension["properties"]["provisioningState"] = json!("Succeeded");
                            }
                        }
                        match w.extensions.get(&key) {
                            Some(extension) => reply(StatusCode::OK, extension.clone()),
                            None => arm_error(StatusCode::NOT_FOUND, "ResourceNotFound", "The Resource 'Microsoft.KubernetesConfiguration/extensions/flux' was not found."),
                        }
                    }
                    (
                        "PUT",
                        ["providers", "microsoft.kubernetesconfiguration", "extensions", name],
                    ) => self.put_extension(&cluster, name, &path, json_body()),
                    (
                        method,
                        ["providers", "microsoft.kubernetesconfiguration", "fluxconfigurations", _],
                    ) => self.flux_configuration(
                        method,
                        &cluster,
                        segments[segments.len() - 1],
                        &path,
                        json_body(),
                    ),
                    _ => arm_error(StatusCode::NOT_FOUND, "NotFound", "unknown operation"),
                }
            }
            (
                "GET",
                ["subscriptions", _, "providers", "microsoft.containerservice", "locations", _, "operations", id],
            ) => self.aks_operation(id),
            _ => arm_error(
                StatusCode::NOT_FOUND,
                "InvalidResourceType",
                &format!("The resource type could not be found in the namespace for {path}."),
            ),
        }
    }

    /// One page of `items()`, with a `nextLink` when more remain (`$skiptoken` = offset).
    fn list(
        &self,
        path: &str,
        query: &HashMap<String, String>,
        items: impl FnOnce(&World) -> Vec<Value>,
    ) -> Reply {
        let w = self.world.lock().unwrap();
        let all = items(&w);
        let start: usize = query
            .get("$skiptoken")
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let end = (start + w.page_size).min(all.len());
        let mut page = json!({"value": all[start.min(all.len())..end]});
        if end < all.len() {
            let mut next = url::form_urlencoded::Serializer::new(String::new());
            for (k, v) in query.iter().filter(|(k, _)| *k != "$skiptoken") {
                next.append_pair(k, v);
            }
            next.append_pair("$skiptoken", &end.to_string());
            page["nextLink"] = json!(format!("{}{path}?{}", self.endpoint, next.finish()));
        }
        reply(StatusCode::OK, page)
    }

    /// [`Self::list`] of the resources `of` the world in `subscription`.
    fn list_in(
        &self,
        path: &str,
        query: &HashMap<String, String>,
        subscription: &str,
        of: fn(&World) -> &Vec<Value>,
    ) -> Reply {
        self.list(path, query, |w| {
            of(w)
                .iter()
                .filter(|r| in_subscription(r, subscription))
                .cloned()
                .collect()
        })
    }

    fn find_cluster(&self, segments: &[&str]) -> Option<Cluster> {
        let id = format!("/subscriptions/{}/resourcegroups/{}/providers/microsoft.containerservice/managedclusters/{}", segments[1], segments[3], segments[7]).to_ascii_lowercase();
        let w = self.world.lock().unwrap();
        w.clusters
            .iter()
            .find(|c| c.resource["id"].as_str().unwrap().to_ascii_lowercase() == id)
            .cloned()
    }

    fn put_role_assignment(&self, path: &str, body: Value) -> Reply {
        let mut w = self.world.lock().unwrap();
        let scope = path
            .split("/providers/Microsoft.Authorization")
            .next()
            .unwrap()
            .to_string();
        let name = path.rsplit('/').next().unwrap().to_string();
        let role = body["properties"]["roleDefinitionId"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let principal = body["properties"]["principalId"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if w.deny_role_writes {
            return arm_error(StatusCode::FORBIDDEN, "AuthorizationFailed", &format!("The client 'dev@contoso.com' with object id '0a0a0a0a-1111-2222-3333-444444444444' does not have authorization to perform action 'Microsoft.Authorization/roleAssignments/write' over scope '{scope}/providers/Microsoft.Authorization/roleAssignments/{name}' or the scope is invalid. If access was recently granted, please refresh your credentials."));
        }
        if w.principal_delay > 0 {
            w.principal_delay -= 1;
            return arm_error(StatusCode::BAD_REQUEST, "PrincipalNotFound", &format!("Principal {principal} does not exist in the directory {TENANT}. Check that you have the correct principal ID. If you are creating this principal and then immediately assigning a role, this error might be related to a replication delay. In this case, set the role assignment principalType property to a value, such as ServicePrincipal, User, or Group.  See https://aka.ms/docs-principaltype"));
        }
        let exists = w.role_assignments.iter().any(|a| {
            let p = &a["properties"];
            p["scope"] == scope.as_str()
                && p["roleDefinitionId"] == role.as_str()
                && p["principalId"] == principal.as_str()
        });
        if exists {
            return arm_error(
                StatusCode::CONFLICT,
                "RoleAssignmentExists",
                "The role assignment already exists.",
            );
        }
        let assignment = json!({
            "id": path,
            "name": name,
            "type": "Microsoft.Authorization/roleAssignments",
            "properties": {
                "roleDefinitionId": role,
                "principalId": principal,
                "principalType": body["properties"]["principalType"],
                "scope": scope,
                "createdOn": "2026-01-01T00:00:00.0000000Z",
            },
        });
        w.role_assignments.push(assignment.clone());
        reply(StatusCode::CREATED, assignment)
    }

    /// `id` is the identity's resource id without its leading `/`, as the request spelled it.
    fn get_identity(&self, id: &str) -> Reply {
        let w = self.world.lock().unwrap();
        let wanted = format!("/{id}").to_ascii_lowercase();
        match w
            .identities
            .iter()
            .find(|i| i["id"].as_str().unwrap().to_ascii_lowercase() == wanted)
        {
            Some(identity) => reply(StatusCode::OK, identity.clone()),
            None => {
                let parts: Vec<&str> = id.split('/').collect();
                arm_error(StatusCode::NOT_FOUND, "ResourceNotFound", &format!("The Resource 'Microsoft.ManagedIdentity/userAssignedIdentities/{}' under resource group '{}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix", parts[7], parts[3]))
            }
        }
    }

    fn put_identity(&self, id: &str, body: Value) -> Reply {
        let existing = self.get_identity(id);
        let mut w = self.world.lock().unwrap();
        if w.deny_identity_writes {
            return arm_error(StatusCode::FORBIDDEN, "AuthorizationFailed", &format!("The client 'dev@contoso.com' with object id '0a0a0a0a-1111-2222-3333-444444444444' does not have authorization to perform action 'Microsoft.ManagedIdentity/userAssignedIdentities/write' over scope '/{id}' or the scope is invalid. If access was recently granted, please refresh your credentials."));
        }
        if existing.status() == StatusCode::OK {
            return existing;
        }
        let Some(location) = body["location"].as_str() else {
            return arm_error(
                StatusCode::BAD_REQUEST,
                "LocationRequired",
                "The location property is required for this definition.",
            );
        };
        let parts: Vec<&str> = id.split('/').collect();
        let identity = json!({
            "id": format!("/{id}"),
            "name": parts[7],
            "type": "Microsoft.ManagedIdentity/userAssignedIdentities",
            "location": location,
            "tags": {},
            "properties": {
                "isolationScope": "None",
                "tenantId": TENANT,
                "principalId": uuid::Uuid::new_v4().to_string(),
                "clientId": uuid::Uuid::new_v4().to_string(),
            },
        });
        w.identities.push(identity.clone());
        reply(StatusCode::CREATED, identity)
    }

    /// One write per identity at a time: a write arriving while another is in flight gets 409.
    async fn put_credential(&self, id: &str, name: &str, body: Value) -> Reply {
        let key = format!("/{id}").to_ascii_lowercase();
        {
            let mut w = self.world.lock().unwrap();
            if !w
                .identities
                .iter()
                .any(|i| i["id"].as_str().unwrap().to_ascii_lowercase() == key)
            {
                drop(w);
                return self.get_identity(id);
            }
            let in_flight = w
                .credential_writes_in_flight
                .entry(key.clone())
                .or_default();
            if *in_flight > 0 {
                w.credential_conflicts += 1;
                return arm_error(StatusCode::CONFLICT, "ConcurrentFederatedIdentityCredentialsWritesForSingleManagedIdentity", "Too many Federated Identity Credentials are written concurrently for the managed identity. Concurrent requests should be serialized.");
            }
            *in_flight += 1;
        }
        tokio::time::sleep(CREDENTIAL_WRITE_TIME).await;
        let mut w = self.world.lock().unwrap();
        *w.credential_writes_in_flight.get_mut(&key).unwrap() -= 1;
        let p = &body["properties"];
        if !p["issuer"].is_string()
            || !p["subject"].is_string()
            || p["audiences"] != json!(["api://AzureADTokenExchange"])
        {
            return arm_error(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                "Issuer, subject and audiences (api://AzureADTokenExchange) are required.",
            );
        }
        let credentials = w.federated_credentials.entry(key).or_default();
        let credential = json!({
            "id": format!("/{id}/federatedIdentityCredentials/{name}"),
            "name": name,
            "type": "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials",
            "properties": {"issuer": p["issuer"], "subject": p["subject"], "audiences": p["audiences"]},
        });
        let count = credentials.len();
        match credentials.iter_mut().find(|c| c["name"] == name) {
            Some(existing) => *existing = credential.clone(),
            None if count >= CREDENTIAL_LIMIT => {
                return arm_error(
                    StatusCode::BAD_REQUEST,
                    "BadRequest",
                    &format!("The number of federated identity credentials on the managed identity would exceed the limit of {CREDENTIAL_LIMIT}."),
                );
            }
            None => credentials.push(credential.clone()),
        }
        reply(StatusCode::CREATED, credential)
    }

    /// Accepted: the assignment exists once its operation (InProgress once) reports Succeeded.
    fn put_sql_role_assignment(&self, account: &str, path: &str, body: Value) -> Reply {
        let mut w = self.world.lock().unwrap();
        let known = w
            .cosmos_accounts
            .iter()
            .any(|a| a["id"].as_str().unwrap().eq_ignore_ascii_case(account));
        let p = &body["properties"];
        let role = p["roleDefinitionId"].as_str().unwrap_or_default();
        let scope = p["scope"].as_str().unwrap_or_default();
        if !known {
            return arm_error(
                StatusCode::NOT_FOUND,
                "ResourceNotFound",
                "The database account was not found.",
            );
        }
        if !role
            .to_ascii_lowercase()
            .starts_with(&format!("{account}/sqlRoleDefinitions/").to_ascii_lowercase())
            || !scope
                .to_ascii_lowercase()
                .starts_with(&account.to_ascii_lowercase())
            || !p["principalId"].is_string()
        {
            return arm_error(StatusCode::BAD_REQUEST, "BadRequest", "The role definition and scope must belong to this database account, and a principal id is required.");
        }
        let subscription = account.split('/').nth(2).unwrap().to_string();
        let operation = uuid::Uuid::new_v4().to_string();
        let assignment = json!({
            "id": path,
            "name": path.rsplit('/').next().unwrap(),
            "type": "Microsoft.DocumentDB/databaseAccounts/sqlRoleAssignments",
            "properties": {"roleDefinitionId": role, "scope": scope, "principalId": p["principalId"]},
        });
        w.sql_operations.insert(operation.clone(), (1, assignment));
        let mut accepted = reply(StatusCode::ACCEPTED, json!({"status": "Enqueued"}));
        let status = format!("{}/subscriptions/{subscription}/providers/Microsoft.DocumentDB/locations/westeurope/operationsStatus/{operation}?api-version=2024-11-15", self.endpoint);
        accepted
            .headers_mut()
            .insert("azure-asyncoperation", status.parse().unwrap());
        accepted
    }

    /// An AKS long-running operation: Accepted with an Azure-AsyncOperation to poll.
    fn aks_accepted(&self, w: &mut World, body: Value, cluster: &Cluster) -> Reply {
        let operation = uuid::Uuid::new_v4().to_string();
        w.aks_operations.insert(operation.clone(), 1);
        let subscription = cluster.resource["id"]
            .as_str()
            .unwrap()
            .split('/')
            .nth(2)
            .unwrap()
            .to_string();
        let mut accepted = reply(StatusCode::CREATED, body);
        let status = format!("{}/subscriptions/{subscription}/providers/Microsoft.ContainerService/locations/westeurope/operations/{operation}?api-version=2025-10-01", self.endpoint);
        accepted
            .headers_mut()
            .insert("azure-asyncoperation", status.parse().unwrap());
        accepted
    }

    fn aks_operation(&self, id: &str) -> Reply {
        let mut w = self.world.lock().unwrap();
        let Some(in_progress) = w.aks_operations.get_mut(id) else {
            return arm_error(StatusCode::NOT_FOUND, "NotFound", "operation not found");
        };
        if *in_progress > 0 {
            *in_progress -= 1;
            let mut running = reply(StatusCode::OK, json!({"name": id, "status": "InProgress"}));
            running
                .headers_mut()
                .insert("retry-after", "1".parse().unwrap());
            return running;
        }
        reply(StatusCode::OK, json!({"name": id, "status": "Succeeded"}))
    }

    /// A whole agent pool written back; its `nodeLabels` reach the rig's nodes, as AKS rolls them.
    fn put_agent_pool(&self, cluster: &Cluster, name: &str, body: Value) -> Reply {
        let props = &body["properties"];
        if !props.is_object()
            || props.get("provisioningState").is_some()
            || !props["vmSize"].is_string()
        {
            return arm_error(StatusCode::BAD_REQUEST, "InvalidParameter", "The agent pool properties must be the whole pool without read-only fields (provisioningState).");
        }
        let key = cluster.resource["id"]
            .as_str()
            .unwrap()
            .to_ascii_lowercase();
        let mut w = self.world.lock().unwrap();
        let pools = w.agent_pools.entry(key).or_default();
        let Some(pool) = pools.iter_mut().find(|p| p["name"] == name) else {
            return arm_error(StatusCode::NOT_FOUND, "NotFound", "agent pool not found");
        };
        let mut written = props.clone();
        written["provisioningState"] = json!("Succeeded");
        pool["properties"] = written;
        let pool = pool.clone();
        if let (Some(kubeconfig), Some(labels)) =
            (&w.pool_nodes_kubeconfig, props["nodeLabels"].as_object())
        {
            for (k, v) in labels {
                let label = format!("{k}={}", v.as_str().unwrap_or_default());
                let _ = std::process::Command::new("kubectl")
                    .arg("--kubeconfig")
                    .arg(kubeconfig)
                    .args(["label", "nodes", "--all", "--overwrite", &label])
                    .output();
            }
        }
        self.aks_accepted(&mut w, pool, cluster)
    }

    /// The Flux extension: Succeeded once its operation is done (the rig already runs Flux), or
    /// `Creating` for [`World::extension_creation`] after the PUT, as AKS installs it meanwhile.
    fn put_extension(&self, cluster: &Cluster, name: &str, path: &str, body: Value) -> Reply {
        if body["properties"]["extensionType"] != "microsoft.flux" {
            return arm_error(
                StatusCode::BAD_REQUEST,
                "InvalidExtensionType",
                "extensionType must be set.",
            );
        }
        let key = cluster.resource["id"]
            .as_str()
            .unwrap()
            .to_ascii_lowercase();
        let mut extension = json!({
            "id": path,
            "name": name,
            "type": "Microsoft.KubernetesConfiguration/extensions",
            "properties": {"extensionType": "microsoft.flux", "provisioningState": "Succeeded", "version": "1.18.2"},
        });
        let mut w = self.world.lock().unwrap();
        match w.extension_creation {
            Some(creation) => {
                extension["properties"]["provisioningState"] = json!("Creating");
                let ready = std::time::Instant::now() + creation;
                w.extensions_ready.insert(key.clone(), ready);
            }
            None => {
                w.extensions_ready.remove(&key);
            }
        }
        w.extensions.insert(key, extension.clone());
        self.aks_accepted(&mut w, extension, cluster)
    }

    fn sql_operation(&self, id: &str) -> Reply {
        let mut w = self.world.lock().unwrap();
        let Some((in_progress, assignment)) = w.sql_operations.get_mut(id) else {
            return arm_error(StatusCode::NOT_FOUND, "NotFound", "operation not found");
        };
        if *in_progress > 0 {
            *in_progress -= 1;
            let mut running = reply(
                StatusCode::OK,
                json!({"id": id, "name": id, "status": "InProgress"}),
            );
            running
                .headers_mut()
                .insert("retry-after", "1".parse().unwrap());
            return running;
        }
        let assignment = assignment.clone();
        if !w.sql_role_assignments.contains(&assignment) {
            w.sql_role_assignments.push(assignment);
        }
        reply(
            StatusCode::OK,
            json!({"id": id, "name": id, "status": "Succeeded"}),
        )
    }

    fn start_run_command(&self, path: &str, cluster: &Cluster, body: Value) -> Reply {
        let properties = &cluster.resource["properties"];
        if properties["apiServerAccessProfile"]["disableRunCommand"] == true {
            return arm_error(
                StatusCode::BAD_REQUEST,
                "RunCommandDisabled",
                "Run command is disabled for this managed cluster.",
            );
        }
        let mut w = self.world.lock().unwrap();
        w.run_commands.push(body.clone());
        let entra = properties["aadProfile"]["managed"] == true;
        if entra && body["clusterToken"].as_str() != Some(w.aks_token.as_str()) {
            return arm_error(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                "clusterToken is required for AAD-enabled clusters and must be valid.",
            );
        }
        let id = format!("{:032x}", w.run_commands.len());
        let slot = Arc::new(Mutex::new(None));
        w.results.insert(id.clone(), slot.clone());
        let kubeconfig = w.run_command_kubeconfig.clone();
        let kubectl_dir = self.kubectl_dir.clone();
        std::thread::spawn(move || {
            let result = execute(kubectl_dir.as_deref(), kubeconfig.as_deref(), &body);
            *slot.lock().unwrap() = Some(result);
        });
        let location = format!(
            "{}{}/commandResults/{id}?api-version=2025-10-01",
            self.endpoint,
            path.trim_end_matches("/runCommand")
        );
        let mut accepted = reply(StatusCode::ACCEPTED, Value::Null);
        *accepted.body_mut() = Full::new(Bytes::new());
        accepted
            .headers_mut()
            .insert("location", location.parse().unwrap());
        accepted
            .headers_mut()
            .insert("retry-after", "1".parse().unwrap());
        accepted
    }

    fn command_result(&self, id: &str) -> Reply {
        let slot = self.world.lock().unwrap().results.get(id).cloned();
        let Some(slot) = slot else {
            return arm_error(
                StatusCode::NOT_FOUND,
                "NotFound",
                "command result not found",
            );
        };
        let done = slot.lock().unwrap().clone();
        match done {
            None => {
                let mut running = reply(
                    StatusCode::ACCEPTED,
                    json!({"id": id, "properties": {"provisioningState": "Running"}}),
                );
                running
                    .headers_mut()
                    .insert("retry-after", "1".parse().unwrap());
                running
            }
            Some(result) => reply(StatusCode::OK, result),
        }
    }
}

fn in_subscription(resource: &Value, subscription: &str) -> bool {
    resource["id"]
        .as_str()
        .unwrap()
        .starts_with(&format!("/subscriptions/{subscription}/"))
}

/// AKS's run command, locally: the context unzipped into a temp dir, `sh -c <command>` there with
/// kubectl on PATH; `provisioningState` lower-case as the service writes it.
fn execute(kubectl_dir: Option<&Path>, kubeconfig: Option<&Path>, body: &Value) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let context = body["context"].as_str().unwrap_or_default();
    if !context.is_empty() {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(context)
            .unwrap();
        zip::ZipArchive::new(std::io::Cursor::new(bytes))
            .unwrap()
            .extract(dir.path())
            .unwrap();
    }
    let empty = dir.path().join(".kubeconfig");
    std::fs::write(&empty, "apiVersion: v1\nkind: Config\n").unwrap();
    let path = match kubectl_dir {
        Some(d) => format!("{}:/usr/bin:/bin", d.display()),
        None => "/usr/bin:/bin".into(),
    };
    let output = std::process::Command::new("sh")
        .arg("-c")
        .arg(body["command"].as_str().unwrap_or_default())
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", path)
        .env("HOME", dir.path())
        .env("KUBECONFIG", kubeconfig.unwrap_or(&empty))
        .output()
        .unwrap();
    let logs = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    json!({"id": "result", "properties": {
        "provisioningState": "succeeded",
        "exitCode": output.status.code().unwrap_or(-1),
        "startedAt": "2026-01-01T00:00:00Z",
        "finishedAt": "2026-01-01T00:00:05Z",
        "logs": logs,
    }})
}

/// Writes an `az` answering `az account get-access-token -o json --scope <scope>` with the token
/// of `tokens` for that scope (az 2.54+ shape), failing like az for any other scope. After
/// [`rotate_tokens`], each ARM token (a scope on the loopback fake) it hands out is new: `<token>.<n>`.
pub fn write_scoped_az(dir: &Path, tokens: &[(&str, &str)]) {
    let expires_on = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    let mut cases = String::new();
    for (scope, token) in tokens {
        cases.push_str(&format!("  '{scope}') token='{token}' ;;\n"));
    }
    let body = json!({
        "accessToken": "TOKEN",
        "expiresOn": "2099-01-01 00:00:00.000000",
        "expires_on": expires_on,
        "subscription": "00000000-1111-2222-3333-444444444444",
        "tenant": TENANT,
        "tokenType": "Bearer",
    })
    .to_string()
    .replace("\"TOKEN\"", "\"%s\"");
    let dir_text = dir.display();
    let script = format!(
        "#!/bin/sh\nscope=''\nwhile [ $# -gt 0 ]; do [ \"$1\" = --scope ] && scope=\"$2\"; shift; done\n\
case \"$scope\" in\n{cases}  *) echo \"ERROR: AADSTS500011: The resource principal named $scope was not found.\" >&2; exit 1 ;;\nesac\n\
case \"$scope\" in http://127.0.0.1*) if [ -f '{dir_text}/rotate' ]; then \
read n < '{dir_text}/rotate'; n=$((n + 1)); echo $n > '{dir_text}/rotate'; token=\"$token.$n\"; fi ;; esac\n\
printf '{body}\\n' \"$token\"\n"
    );
    let path = dir.join("az");
    std::fs::write(&path, script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// Makes the `az` [`write_scoped_az`] wrote in `dir` hand out a new ARM token each time (its
/// count goes on when it already does). Returns how many it has handed out so far.
pub fn rotate_tokens(dir: &Path) -> u32 {
    let count = dir.join("rotate");
    if !count.exists() {
        std::fs::write(&count, "0").unwrap();
    }
    std::fs::read_to_string(&count)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}
