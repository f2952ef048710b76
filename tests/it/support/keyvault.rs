//! A fake Azure Key Vault data plane (api-version 7.4) on loopback HTTP: secrets with a new version
//! per PUT, paged listings, certificates with their keys and backing secrets, the keys' `sign`
//! operation (made by `openssl pkeyutl` on the digest, as the service signs a digest), the real
//! 401 challenge, and 403 or throttling when a test asks for it.

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
    /// Certificate name (lowercase) → the certificate, its key and backing secret.
    pub certificates: BTreeMap<String, Certificate>,
}

/// A Key Vault certificate: the leaf, the key it was made with, the chain its backing secret holds.
#[derive(Clone, Debug)]
pub struct Certificate {
    /// The version of the certificate, its key and its backing secret.
    pub version: String,
    /// The private key, PEM (PKCS#8), in a file `openssl pkeyutl` reads.
    pub key_file: std::path::PathBuf,
    /// The `openssl` that signs (found when the certificate was added: tests change PATH).
    pub openssl: std::path::PathBuf,
    /// The leaf certificate, DER.
    pub leaf: Vec<u8>,
    /// The backing secret's value as Key Vault serves it: the key and chain as PEM
    /// (`application/x-pem-file`), or the base64 of a PFX with an empty password
    /// (`application/x-pkcs12`, see [`FakeKeyVault::keep_as_pkcs12`]).
    pub secret_value: String,
    /// The backing secret's content type.
    pub content_type: String,
    /// Refuse `sign` with 403 ForbiddenByRbac (the caller lacks Key Vault Crypto User).
    pub sign_forbidden: bool,
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

    /// Adds the certificate `name` (its key in `key_file`, its leaf DER, the PEM its backing
    /// secret holds) as one version, and returns that version; the key URL to sign with is
    /// `<url>keys/<name>`.
    pub fn add_certificate(
        &self,
        name: &str,
        key_file: &std::path::Path,
        leaf: Vec<u8>,
        secret_pem: String,
    ) -> String {
        let openssl =
            super::tool("openssl").expect("openssl: check support::tool(\"openssl\") first");
        self.vault(|v| {
            let version = format!(
                "{:032x}",
                0xce27_0000_u128 + v.certificates.len() as u128 + 1
            );
            v.certificates.insert(
                name.to_ascii_lowercase(),
                Certificate {
                    version: version.clone(),
                    key_file: key_file.to_path_buf(),
                    openssl: openssl.clone(),
                    leaf,
                    secret_value: secret_pem,
                    content_type: "application/x-pem-file".into(),
                    sign_forbidden: false,
                },
            );
            version
        })
    }

    /// Makes the backing secret of the certificate `name` a PKCS#12 one holding `pfx`, as Key
    /// Vault keeps it when the certificate policy's content type is `application/x-pkcs12` (its
    /// default, `az keyvault certificate get-default-policy`): the value is the PFX in base64.
    pub fn keep_as_pkcs12(&self, name: &str, pfx: &[u8]) {
        use base64::Engine;
        let value = base64::engine::general_purpose::STANDARD.encode(pfx);
        self.certificate(name, |c| {
            c.secret_value = value;
            c.content_type = "application/x-pkcs12".into();
        });
    }

    /// Changes the certificate `name` (added by [`FakeKeyVault::add_certificate`]).
    pub fn certificate(&self, name: &str, change: impl FnOnce(&mut Certificate)) {
        self.vault(|v| change(v.certificates.get_mut(&name.to_ascii_lowercase()).unwrap()));
    }
}

/// How a PFX made by [`pkcs12`] protects its certificates (and key); each has a MAC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PfxEncryption {
    /// Certificates and key in the clear (`-certpbe NONE -keypbe NONE`).
    Plain,
    /// OpenSSL's `-legacy`: certificates under pbeWithSHAAnd40BitRC2-CBC, the key under
    /// pbeWithSHAAnd3-KeyTripleDES-CBC, a SHA-1 MAC (OpenSSL 1.x's default).
    LegacyRc2,
    /// Everything under pbeWithSHAAnd3-KeyTripleDES-CBC with a SHA-1 MAC, as .NET writes.
    TripleDes,
    /// OpenSSL 3's default: PBES2 (PBKDF2 with HMAC-SHA-256, AES-256-CBC), a SHA-256 MAC.
    Aes,
    /// Certificates under OpenSSL 3's default, the key under PBES2 with Camellia-256-CBC, which
    /// spin-aks cannot decrypt: a reader that reads the key fails on this one.
    KeyInCamellia,
}

/// A PFX (`openssl pkcs12 -export -passout pass:<password>`; Key Vault's have an empty one)
/// holding `key_pem`, the certificate of that key in `chain_pem` and, as CA certificates, the
/// rest of `chain_pem`.
pub fn pkcs12(
    key_pem: &str,
    chain_pem: &str,
    encryption: PfxEncryption,
    password: &str,
) -> Vec<u8> {
    let openssl = super::tool("openssl").expect("openssl: check support::tool(\"openssl\") first");
    let dir = tempfile::tempdir().unwrap();
    let (key, chain, out) = (
        dir.path().join("key.pem"),
        dir.path().join("chain.pem"),
        dir.path().join("out.pfx"),
    );
    std::fs::write(&key, key_pem).unwrap();
    std::fs::write(&chain, chain_pem).unwrap();
    let mut cmd = std::process::Command::new(openssl);
    cmd.args([
        "pkcs12",
        "-export",
        "-passout",
        &format!("pass:{password}"),
        "-inkey",
    ])
    .arg(&key)
    .arg("-in")
    .arg(&chain)
    .arg("-out")
    .arg(&out);
    cmd.args(match encryption {
        PfxEncryption::Plain => &["-certpbe", "NONE", "-keypbe", "NONE"][..],
        PfxEncryption::LegacyRc2 => &["-legacy"][..],
        PfxEncryption::TripleDes => &[
            "-certpbe",
            "PBE-SHA1-3DES",
            "-keypbe",
            "PBE-SHA1-3DES",
            "-macalg",
            "sha1",
        ][..],
        PfxEncryption::Aes => &[][..],
        PfxEncryption::KeyInCamellia => &["-keypbe", "CAMELLIA-256-CBC"][..],
    });
    super::run_ok(&mut cmd);
    std::fs::read(&out).unwrap()
}

/// `openssl pkeyutl -sign` of `digest` with the key in `key_file` as `alg` asks: RSASSA-PSS with
/// a salt as long as the hash (PS*), or ECDSA (ES*, turned from DER into r ‖ s as Key Vault
/// answers). `None` for an algorithm the key cannot make.
fn sign_digest(cert: &Certificate, alg: &str, digest: &[u8]) -> Option<Vec<u8>> {
    let hash = match alg.get(2..)? {
        "256" => "sha256",
        "384" => "sha384",
        "512" => "sha512",
        _ => return None,
    };
    let dir = tempfile::tempdir().ok()?;
    let input = dir.path().join("digest");
    std::fs::write(&input, digest).ok()?;
    let mut cmd = std::process::Command::new(&cert.openssl);
    cmd.args(["pkeyutl", "-sign", "-inkey"])
        .arg(&cert.key_file)
        .arg("-in")
        .arg(&input);
    cmd.args(["-pkeyopt", &format!("digest:{hash}")]);
    if alg.starts_with("PS") {
        cmd.args([
            "-pkeyopt",
            "rsa_padding_mode:pss",
            "-pkeyopt",
            "rsa_pss_saltlen:digest",
        ]);
    }
    let output = cmd.output().ok()?;
    if !output.status.success() {
        return None;
    }
    if !alg.starts_with("ES") {
        return Some(output.stdout);
    }
    let width = match hash {
        "sha256" => 32,
        "sha384" => 48,
        _ => 66,
    };
    ecdsa_der_to_fixed(&output.stdout, width)
}

/// An ECDSA signature from DER (`SEQUENCE { INTEGER r, INTEGER s }`) to r ‖ s, each `width` bytes.
fn ecdsa_der_to_fixed(der: &[u8], width: usize) -> Option<Vec<u8>> {
    let mut rest = der.get(2..)?;
    if der.get(1)? & 0x80 != 0 {
        rest = der.get(2 + (der[1] & 0x7f) as usize..)?;
    }
    let mut fixed = Vec::with_capacity(width * 2);
    for _ in 0..2 {
        let len = *rest.get(1)? as usize;
        let int = rest.get(2..2 + len)?;
        let int = &int[int.iter().take_while(|b| **b == 0).count()..];
        fixed.extend(std::iter::repeat_n(0, width.checked_sub(int.len())?));
        fixed.extend_from_slice(int);
        rest = &rest[2 + len..];
    }
    Some(fixed)
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
        ("GET", ["certificates", name, version @ ..]) if version.len() <= 1 => {
            let Some(cert) = v.certificates.get(&name.to_ascii_lowercase()).cloned() else {
                return error(
                    StatusCode::NOT_FOUND,
                    "CertificateNotFound",
                    &format!(
                        "A certificate with (name/id) {name} was not found in this key vault."
                    ),
                );
            };
            if version.first().is_some_and(|ver| *ver != cert.version) {
                return error(
                    StatusCode::NOT_FOUND,
                    "CertificateNotFound",
                    &format!(
                        "A certificate with (name/id) {name}/{} was not found in this key vault.",
                        version[0]
                    ),
                );
            }
            use base64::Engine;
            let b64 = base64::engine::general_purpose::STANDARD;
            let ver = &cert.version;
            reply(
                StatusCode::OK,
                json!({
                    "id": format!("{base}certificates/{name}/{ver}"),
                    "kid": format!("{base}keys/{name}/{ver}"),
                    "sid": format!("{base}secrets/{name}/{ver}"),
                    "cer": b64.encode(&cert.leaf),
                    "attributes": attributes(true),
                    "policy": {"key_props": {"exportable": true}, "secret_props": {"contentType": cert.content_type}},
                }),
            )
        }
        ("GET", ["secrets", name, version]) => {
            match v
                .certificates
                .get(&name.to_ascii_lowercase())
                .filter(|c| c.version == *version)
            {
                Some(cert) => reply(
                    StatusCode::OK,
                    json!({"value": cert.secret_value, "contentType": cert.content_type, "id": format!("{base}secrets/{name}/{version}"), "kid": format!("{base}keys/{name}/{version}"), "managed": true, "attributes": attributes(true)}),
                ),
                None => error(
                    StatusCode::NOT_FOUND,
                    "SecretNotFound",
                    &format!(
                        "A secret with (name/id) {name}/{version} was not found in this key vault."
                    ),
                ),
            }
        }
        ("POST", ["keys", name, version, "sign"]) => {
            let Some(cert) = v
                .certificates
                .get(&name.to_ascii_lowercase())
                .filter(|c| c.version == *version)
                .cloned()
            else {
                return error(
                    StatusCode::NOT_FOUND,
                    "KeyNotFound",
                    &format!(
                        "A key with (name/id) {name}/{version} was not found in this key vault."
                    ),
                );
            };
            if cert.sign_forbidden {
                let message = "Caller is not authorized to perform action on resource.\r\nIf role assignments, deny assignments or role definitions were changed recently, please observe propagation time.\r\nCaller: appid=04b07795-8ddb-461a-bbee-02f9e1bf7b46;oid=00000000-0000-0000-0000-00000000c0de\r\nAction: 'Microsoft.KeyVault/vaults/keys/sign/action'\r\nAssignment: (not found)\r\nVault: vault;location=westeurope\r\n";
                return reply(
                    StatusCode::FORBIDDEN,
                    json!({"error": {"code": "Forbidden", "message": message, "innererror": {"code": "ForbiddenByRbac"}}}),
                );
            }
            use base64::Engine;
            let url = base64::engine::general_purpose::URL_SAFE_NO_PAD;
            let body: Value = serde_json::from_slice(&req.body).unwrap_or_default();
            let alg = body["alg"].as_str().unwrap_or_default().to_string();
            let digest = body["value"].as_str().and_then(|d| url.decode(d).ok());
            let signature = digest.and_then(|d| sign_digest(&cert, &alg, &d));
            match signature {
                Some(signature) => reply(
                    StatusCode::OK,
                    json!({"kid": format!("{base}keys/{name}/{version}"), "value": url.encode(signature)}),
                ),
                None => error(
                    StatusCode::BAD_REQUEST,
                    "BadParameter",
                    &format!("Invalid algorithm {alg} for the key or an invalid digest."),
                ),
            }
        }
        _ => error(
            StatusCode::NOT_FOUND,
            "NotFound",
            &format!("{method} {path} is not an operation of this vault."),
        ),
    }
}
