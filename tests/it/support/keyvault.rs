//! A fake Azure Key Vault data plane (api-version 7.4) on loopback HTTP: secrets with a new version
//! per PUT, paged listings, the real 401 challenge, and 403 or throttling when a test asks for it.

use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use super::arm::TENANT;
use super::HttpReply;

/// The scope a Key Vault token is asked for.
pub const VAULT_SCOPE: &str = "https://vault.azure.net/.default";

/// One version of a secret.
#[derive(Clone, Debug)]
pub struct Version {
    pub id: String,
    pub value: String,
    pub enabled: bool,
}

/// What the vault holds and how it behaves.
#[derive(Default)]
pub struct Vault {
    /// The bearer token it accepts.
    pub token: String,
    /// Secret name (lowercase: Key Vault names are case-insensitive) → versions, oldest first.
    pub secrets: BTreeMap<String, Vec<Version>>,
    /// Items per listing page.
    pub page_size: usize,
    /// Refuse every request with 403 ForbiddenByRbac.
    pub forbidden: bool,
    /// Refuse every request with 403 ForbiddenByFirewall, as a vault whose network rules leave
    /// out the caller's address does (checked before roles).
    pub firewalled: bool,
    /// Answer this many requests with 429 and `Retry-After: 1`.
    pub throttle: usize,
    /// `METHOD path` → requests seen (the throttled and refused included).
    pub requests: HashMap<String, usize>,
}

pub struct FakeKeyVault {
    /// `http://127.0.0.1:<port>/`: the value for `--key-vault`.
    pub url: String,
    vault: Arc<Mutex<Vault>>,
}

impl FakeKeyVault {
    pub async fn start(token: &str) -> FakeKeyVault {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let vault = Arc::new(Mutex::new(Vault {
            token: token.into(),
            page_size: 25,
            ..Vault::default()
        }));
        let (serving, base) = (vault.clone(), url.clone());
        super::serve_http(listener, move |req| {
            let (vault, base) = (serving.clone(), base.clone());
            async move { route(&vault, &base, req).await }
        });
        FakeKeyVault { url, vault }
    }

    pub fn vault<T>(&self, change: impl FnOnce(&mut Vault) -> T) -> T {
        change(&mut self.vault.lock().unwrap())
    }

    /// The newest versions of `name`, oldest first.
    pub fn versions(&self, name: &str) -> Vec<Version> {
        self.vault(|v| v.secrets.get(name).cloned().unwrap_or_default())
    }

    /// The value of the newest version of `name`.
    pub fn value(&self, name: &str) -> Option<String> {
        self.versions(name).last().map(|v| v.value.clone())
    }

    /// Adds a version of `name` directly, as another client would.
    pub fn put(&self, name: &str, value: &str, enabled: bool) {
        self.vault(|v| new_version(v, name, value, enabled));
    }

    pub fn count(&self, method: &str, path: &str) -> usize {
        self.vault(|v| {
            v.requests
                .get(&format!("{method} {path}"))
                .copied()
                .unwrap_or(0)
        })
    }

    pub fn total_requests(&self) -> usize {
        self.vault(|v| v.requests.values().sum())
    }
}

fn new_version(vault: &mut Vault, name: &str, value: &str, enabled: bool) -> String {
    let versions = vault.secrets.entry(name.to_ascii_lowercase()).or_default();
    let id = format!("{:032x}", 0x5ec0_0000_u128 + versions.len() as u128 + 1);
    versions.push(Version {
        id: id.clone(),
        value: value.into(),
        enabled,
    });
    id
}

fn reply(status: StatusCode, body: Value) -> HttpReply {
    super::json_reply(
        status,
        &body,
        ("x-ms-keyvault-service-version", "1.9.2020.1"),
    )
}

fn error(status: StatusCode, code: &str, message: &str) -> HttpReply {
    reply(status, json!({"error": {"code": code, "message": message}}))
}

fn attributes(enabled: bool) -> Value {
    json!({"enabled": enabled, "created": 1767225600, "updated": 1767225600, "recoveryLevel": "Recoverable+Purgeable", "recoverableDays": 90})
}

async fn route(vault: &Mutex<Vault>, base: &str, req: Request<Incoming>) -> HttpReply {
    let req = super::receive(req).await;
    let (method, path, query) = (req.method, req.path, req.query);
    let mut v = vault.lock().unwrap();
    *v.requests.entry(format!("{method} {path}")).or_default() += 1;
    if req.bearer.as_deref() != Some(format!("Bearer {}", v.token).as_str()) {
        let message = match req.bearer {
            None => "AKV10000: Request is missing a Bearer or PoP token.",
            Some(_) => "AKV10022: Invalid audience. Expected https://vault.azure.net, found: https://management.azure.com.",
        };
        let mut refused = error(StatusCode::UNAUTHORIZED, "Unauthorized", message);
        let challenge = format!("Bearer authorization=\"https://login.microsoftonline.com/{TENANT}\", resource=\"https://vault.azure.net\"");
        refused
            .headers_mut()
            .insert("www-authenticate", challenge.parse().unwrap());
        return refused;
    }
    if v.throttle > 0 {
        v.throttle -= 1;
        let mut throttled = error(
            StatusCode::TOO_MANY_REQUESTS,
            "Throttled",
            "Rate limit is exceeded. Try again in 1 seconds.",
        );
        throttled
            .headers_mut()
            .insert("retry-after", "1".parse().unwrap());
        return throttled;
    }
    if v.firewalled {
        let message = "Client address is not authorized and caller is not a trusted service.\r\nClient address: 203.0.113.7\r\nCaller: appid=04b07795-8ddb-461a-bbee-02f9e1bf7b46;oid=00000000-0000-0000-0000-00000000c0de\r\nVault: vault;location=westeurope";
        return reply(
            StatusCode::FORBIDDEN,
            json!({"error": {"code": "Forbidden", "message": message, "innererror": {"code": "ForbiddenByFirewall"}}}),
        );
    }
    if v.forbidden {
        let action = if method == "PUT" {
            "setSecret"
        } else {
            "readMetadata"
        };
        let message = format!("Caller is not authorized to perform action on resource.\r\nIf role assignments, deny assignments or role definitions were changed recently, please observe propagation time.\r\nCaller: appid=04b07795-8ddb-461a-bbee-02f9e1bf7b46;oid=00000000-0000-0000-0000-00000000c0de\r\nAction: 'Microsoft.KeyVault/vaults/secrets/{action}/action'\r\nAssignment: (not found)\r\nVault: vault;location=westeurope\r\n");
        return reply(
            StatusCode::FORBIDDEN,
            json!({"error": {"code": "Forbidden", "message": message, "innererror": {"code": "ForbiddenByRbac"}}}),
        );
    }
    if query.get("api-version").map(String::as_str) != Some("7.4") {
        return error(
            StatusCode::BAD_REQUEST,
            "BadParameter",
            "The specified version is not recognized. Consider using the latest supported version (7.4).",
        );
    }
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (method.as_str(), segments.as_slice()) {
        ("PUT", ["secrets", name]) => {
            let valid = (1..=127).contains(&name.len())
                && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
            if !valid {
                return error(
                    StatusCode::BAD_REQUEST,
                    "BadParameter",
                    &format!("The request URI contains an invalid name: {name}"),
                );
            }
            let value = serde_json::from_slice::<Value>(&req.body)
                .ok()
                .and_then(|b| b["value"].as_str().map(String::from));
            let Some(value) = value else {
                return error(
                    StatusCode::BAD_REQUEST,
                    "BadParameter",
                    "Property value is required.",
                );
            };
            let id = new_version(&mut v, name, &value, true);
            reply(
                StatusCode::OK,
                json!({"value": value, "id": format!("{base}secrets/{name}/{id}"), "attributes": attributes(true)}),
            )
        }
        ("GET", ["secrets"]) => {
            let all: Vec<Value> = v
                .secrets
                .iter()
                .map(|(name, versions)| {
                    let enabled = versions.last().is_some_and(|ver| ver.enabled);
                    json!({"id": format!("{base}secrets/{name}"), "attributes": attributes(enabled)})
                })
                .collect();
            let start: usize = query
                .get("$skiptoken")
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            let end = (start + v.page_size).min(all.len());
            let next = (end < all.len()).then(|| {
                format!(
                    "{base}secrets?api-version=7.4&$skiptoken={end}&maxresults={}",
                    v.page_size
                )
            });
            reply(
                StatusCode::OK,
                json!({"value": all[start.min(all.len())..end], "nextLink": next}),
            )
        }
        _ => error(
            StatusCode::NOT_FOUND,
            "NotFound",
            &format!("{method} {path} is not an operation of this vault."),
        ),
    }
}
