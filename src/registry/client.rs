//! A small distribution-API client over reqwest: HEAD/GET/PUT of manifests, tags, referrers; blobs
//! in `upload`. Not oci-client: it lacks HEAD-first, mounts, file streaming, session-restarting retries.

pub mod download;
pub mod upload;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use reqwest::header;
use reqwest::{RequestBuilder, Response, StatusCode, Url};

use super::auth::{AuthError, Authenticator};
use super::credential::SourcedCredential;
use super::host;
use crate::oci::reference::RegistryRef;
use crate::oci::{media_types, Digest};
use crate::retry::{self, Attempt, RetryPolicy};

/// Manifest media types we accept when asking what a tag points at.
const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json";

/// The largest manifest or index read (distribution refuses to store one over 4 MiB).
const MANIFEST_LIMIT: u64 = 4 << 20;

/// The largest tag list read (distribution 2.8 ignores `n` and lists every tag).
const TAG_LIST_LIMIT: u64 = 4 << 20;

/// How long the HTTPS probe of a loopback registry may take before HTTP is tried instead.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// How long the first contact may keep retrying: a registry that is not there (a wrong address)
/// fails fast, one that blips still gets a few tries.
const CONNECT_BUDGET: Duration = Duration::from_secs(20);

/// How to reach the registry.
#[derive(Clone, Debug, Default)]
pub struct TransportOptions {
    /// Use HTTP instead of HTTPS for every registry.
    pub plain_http: bool,
    /// A PEM file with extra CA certificates to trust (on top of the system's).
    pub ca_file: Option<PathBuf>,
    /// Connections kept open per host, matching the upload parallelism.
    pub max_connections: usize,
}

/// A connection to one registry for pushes into one repository.
pub struct RegistryClient {
    http: reqwest::Client,
    base: Url,
    registry: String,
    repository: String,
    auth: Authenticator,
    scopes: Vec<String>,
    retry: RetryPolicy,
    /// Whether the first request tries HTTPS once and falls back to HTTP (a loopback registry).
    probe_http: bool,
    /// Whether the registry stores a small blob sent whole in one POST: unknown (`None`) until
    /// the push's first such POST has its answer, which the others wait for (`upload.rs`).
    single_post: tokio::sync::Mutex<Option<bool>>,
}

impl RegistryClient {
    /// A client for pushes to `target`'s repository that has asked the registry nothing yet: the
    /// scheme and the auth challenge are learnt by the push's first request,
    /// [`Self::first_manifest_digest`]. `http` is [`http_client`]'s for `transport` (built once:
    /// loading the system's CA certificates is most of a warm push's own time). `mount_sources`
    /// are other repositories we may mount blobs from (pull scope requested).
    pub fn new(
        target: &RegistryRef,
        credential: SourcedCredential,
        mount_sources: &[String],
        http: reqwest::Client,
        transport: &TransportOptions,
        retry: RetryPolicy,
    ) -> anyhow::Result<Self> {
        let mut scopes = vec![format!("repository:{}:pull,push", target.repository())];
        scopes.extend(
            mount_sources
                .iter()
                .map(|source| format!("repository:{source}:pull")),
        );
        let auth = Authenticator::new(http.clone(), credential, retry.clone());
        let scheme = if transport.plain_http {
            "http"
        } else {
            "https"
        };
        Ok(RegistryClient {
            http,
            base: base_url(scheme, target)?,
            registry: target.registry().to_string(),
            repository: target.repository().to_string(),
            auth,
            scopes,
            retry,
            probe_http: !transport.plain_http && crate::tls::is_loopback(target.registry()),
            single_post: tokio::sync::Mutex::new(None),
        })
    }

    /// The same client asking only to pull (a look-up in a public registry, anonymously).
    pub fn pull_only(mut self) -> Self {
        self.scopes = vec![format!("repository:{}:pull", self.repository)];
        self
    }

    /// The push's first request, a HEAD of the manifest `reference` (tag or digest): the digest
    /// it points at, if any. On the way it picks the scheme (a loopback registry that does not
    /// answer HTTPS gets HTTP), answers the auth challenge (a 401 that the credential does not
    /// cure is an authentication failure) and retries for [`CONNECT_BUDGET`] at most, so a wrong
    /// address fails fast. No `GET /v2/` first: the HEAD itself says all that.
    pub async fn first_manifest_digest(
        &mut self,
        reference: &str,
    ) -> anyhow::Result<Option<Digest>> {
        if std::mem::take(&mut self.probe_http) {
            // One quick HTTPS try; a loopback registry that does not speak TLS gets HTTP.
            match self
                .head_manifest(reference, &self.retry.once(), Some(PROBE_TIMEOUT))
                .await
            {
                Ok(digest) => return Ok(digest),
                Err(err) if is_untrusted_certificate(&err) => {
                    return Err(untrusted(&self.registry, err));
                }
                Err(err) if is_unreachable_over_tls(&err) => {
                    tracing::debug!(
                        "{} does not answer HTTPS ({err:#}); using HTTP",
                        self.registry
                    );
                    self.base
                        .set_scheme("http")
                        .map_err(|()| anyhow::anyhow!("cannot talk HTTP to {}", self.registry))?;
                }
                Err(err) => return Err(err),
            }
        }
        let connect = self.retry.capped(CONNECT_BUDGET);
        self.head_manifest(reference, &connect, None)
            .await
            .map_err(|err| {
                if is_untrusted_certificate(&err) {
                    untrusted(&self.registry, err)
                } else {
                    err
                }
            })
    }

    /// Whether the first request still has to find out if a loopback registry speaks HTTPS
    /// ([`Self::first_manifest_digest`] settles it); no other request may come first then.
    pub fn probes_scheme(&self) -> bool {
        self.probe_http
    }

    /// The retry policy every request goes by (its count of retries included).
    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.retry
    }

    /// Requests retried so far, token requests included.
    pub fn retries(&self) -> usize {
        self.retry.retries()
    }

    fn url(&self, path: &str) -> anyhow::Result<Url> {
        self.base
            .join(path)
            .with_context(|| format!("cannot form a URL for {path}"))
    }

    fn blob_url(&self, digest: &Digest) -> anyhow::Result<Url> {
        self.url(&format!("/v2/{}/blobs/{digest}", self.repository))
    }

    /// The digest the tag (or digest) `reference` resolves to, if the repository has it.
    async fn head_manifest(
        &self,
        reference: &str,
        policy: &RetryPolicy,
        timeout: Option<Duration>,
    ) -> anyhow::Result<Option<Digest>> {
        let url = self.url(&format!("/v2/{}/manifests/{reference}", self.repository))?;
        retry::run(policy, |_| async {
            let response = self
                .send(
                    || {
                        let request = self
                            .http
                            .head(url.clone())
                            .header(header::ACCEPT, MANIFEST_ACCEPT);
                        Ok(match timeout {
                            Some(timeout) => request.timeout(timeout),
                            None => request,
                        })
                    },
                    "check manifest",
                )
                .await?;
            match response.status() {
                StatusCode::OK => Ok(response
                    .headers()
                    .get("docker-content-digest")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse().ok())),
                StatusCode::NOT_FOUND => Ok(None),
                _ => Err(self
                    .unexpected(response, &format!("checking manifest {reference}"))
                    .await),
            }
        })
        .await
    }

    /// Whether the repository holds the manifest `digest` (a HEAD).
    pub async fn has_manifest(&self, digest: &Digest) -> anyhow::Result<bool> {
        let found = self
            .head_manifest(&digest.to_string(), &self.retry, None)
            .await?;
        Ok(found.is_some())
    }

    /// The manifest `reference` (a tag or digest) as stored: its bytes, checked against `expected`
    /// when given (a retag copies exactly what was promoted), and its media type.
    pub async fn get_manifest(
        &self,
        reference: &str,
        expected: Option<&Digest>,
    ) -> anyhow::Result<(Vec<u8>, Option<String>)> {
        let Some((bytes, media_type)) = self.find_manifest(reference).await? else {
            anyhow::bail!(
                "{}/{} has no manifest {reference}",
                self.registry,
                self.repository
            );
        };
        if let Some(expected) = expected.filter(|d| Digest::of(&bytes) != **d) {
            anyhow::bail!(
                "{}/{}:{reference} is no longer {expected}; it changed while promoting: run the command again",
                self.registry,
                self.repository
            );
        }
        Ok((bytes, media_type))
    }

    /// The manifest `reference` (a tag or digest) as stored, with its media type; `None` when
    /// the repository has none of that name.
    pub async fn find_manifest(
        &self,
        reference: &str,
    ) -> anyhow::Result<Option<(Vec<u8>, Option<String>)>> {
        let url = self.url(&format!("/v2/{}/manifests/{reference}", self.repository))?;
        self.get_optional(
            url,
            MANIFEST_ACCEPT,
            &format!("manifest {reference}"),
            MANIFEST_LIMIT,
        )
        .await
    }

    /// The artifacts about `subject` the registry's referrers API lists (distribution spec v1.1,
    /// "Listing Referrers"); `None` when it has no such API (it answers 404), as distribution
    /// 2.8 does: then the referrers tag schema holds them.
    pub async fn referrers(&self, subject: &Digest) -> anyhow::Result<Option<Vec<u8>>> {
        let url = self.url(&format!("/v2/{}/referrers/{subject}", self.repository))?;
        let found = self
            .get_optional(
                url,
                media_types::IMAGE_INDEX,
                &format!("the referrers of {subject}"),
                MANIFEST_LIMIT,
            )
            .await?;
        Ok(found.map(|(bytes, _)| bytes))
    }

    /// Whether the repository holds any tag, from `GET /v2/<name>/tags/list?n=1` (distribution
    /// spec "Listing Tags"): false when the list is empty or the registry does not know the
    /// repository (404 `NAME_UNKNOWN`); `None` when it will not say (any other answer, or a
    /// registry still failing when the retry budget is spent): nothing is inferred then.
    pub async fn has_tags(&self) -> Option<bool> {
        let mut url = self
            .url(&format!("/v2/{}/tags/list", self.repository))
            .ok()?;
        url.query_pairs_mut().append_pair("n", "1");
        let what = "the tag list";
        match self
            .get_optional(url, "application/json", what, TAG_LIST_LIMIT)
            .await
        {
            Ok(None) => Some(false),
            Ok(Some((bytes, _))) => {
                let list: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
                match &list["tags"] {
                    serde_json::Value::Null => Some(false),
                    serde_json::Value::Array(tags) => Some(!tags.is_empty()),
                    _ => None,
                }
            }
            Err(err) => {
                tracing::debug!("listing the tags of {} failed ({err:#})", self.repository);
                None
            }
        }
    }

    /// A small blob (a signature envelope, an SBOM) read whole, checked against its digest and
    /// refused past `limit` bytes.
    pub async fn get_small_blob(&self, digest: &Digest, limit: u64) -> anyhow::Result<Vec<u8>> {
        let url = self.blob_url(digest)?;
        let Some((bytes, _)) = self
            .get_optional(url, "*/*", &format!("blob {digest}"), limit)
            .await?
        else {
            anyhow::bail!("{}/{} has no blob {digest}", self.registry, self.repository);
        };
        if Digest::of(&bytes) != *digest {
            anyhow::bail!("the registry answered blob {digest} with other bytes");
        }
        Ok(bytes)
    }

    /// A GET whose 404 is `None`: the body (at most `limit` bytes) and its media type.
    async fn get_optional(
        &self,
        url: Url,
        accept: &str,
        what: &str,
        limit: u64,
    ) -> anyhow::Result<Option<(Vec<u8>, Option<String>)>> {
        retry::run(&self.retry, |_| async {
            let response = self
                .send(
                    || Ok(self.http.get(url.clone()).header(header::ACCEPT, accept)),
                    "get manifest",
                )
                .await?;
            match response.status() {
                StatusCode::OK => {
                    let media_type = response
                        .headers()
                        .get(header::CONTENT_TYPE)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string);
                    let mut response = response;
                    let mut bytes = Vec::new();
                    while let Some(chunk) = response.chunk().await.map_err(|e| {
                        Attempt::Transient(anyhow::anyhow!("reading {what}: {e}"), None)
                    })? {
                        if (bytes.len() + chunk.len()) as u64 > limit {
                            return Err(Attempt::Final(anyhow::anyhow!(
                                "{} answered {what} with more than {limit} bytes",
                                self.registry
                            )));
                        }
                        bytes.extend_from_slice(&chunk);
                    }
                    Ok(Some((bytes, media_type)))
                }
                StatusCode::NOT_FOUND => Ok(None),
                _ => Err(self.unexpected(response, &format!("getting {what}")).await),
            }
        })
        .await
    }

    /// Puts the manifest `bytes` under `reference` (a tag or its digest); true when the registry
    /// answered `OCI-Subject`: it indexed the manifest's subject for its referrers API.
    pub async fn put_manifest(
        &self,
        reference: &str,
        media_type: Option<&str>,
        bytes: &[u8],
    ) -> anyhow::Result<bool> {
        let url = self.url(&format!("/v2/{}/manifests/{reference}", self.repository))?;
        let media_type = media_type
            .unwrap_or(media_types::IMAGE_MANIFEST)
            .to_string();
        retry::run(&self.retry, |_| async {
            let response = self
                .send(
                    || {
                        Ok(self
                            .http
                            .put(url.clone())
                            .header(header::CONTENT_TYPE, &media_type)
                            .body(bytes.to_vec()))
                    },
                    "put manifest",
                )
                .await?;
            match response.status() {
                StatusCode::CREATED | StatusCode::OK => {
                    Ok(response.headers().contains_key("oci-subject"))
                }
                _ => Err(self
                    .unexpected(response, &format!("putting the manifest as {reference}"))
                    .await),
            }
        })
        .await
    }

    /// One try of a request, with auth: on a 401 the challenge is answered and the request
    /// rebuilt and sent once more. Transient failures come back as [`Attempt::Transient`].
    async fn send(
        &self,
        build: impl Fn() -> anyhow::Result<RequestBuilder>,
        what: &str,
    ) -> Result<Response, Attempt> {
        let response = self.send_once(&build, what).await?;
        if response.status() != StatusCode::UNAUTHORIZED {
            return Ok(response);
        }
        let header = challenge_header(&response);
        if !self.auth.challenged(header.as_deref(), &self.scopes).await {
            return Err(Attempt::Final(anyhow::anyhow!(
                "{} asked for authentication in a way spin-aks does not support ({})",
                self.registry,
                header.unwrap_or_else(|| "no WWW-Authenticate header".into())
            )));
        }
        let response = self.send_once(&build, what).await?;
        if response.status() == StatusCode::UNAUTHORIZED {
            return Err(Attempt::Final(
                self.auth_failed(challenge_header(&response).as_deref()),
            ));
        }
        Ok(response)
    }

    async fn send_once(
        &self,
        build: impl Fn() -> anyhow::Result<RequestBuilder>,
        what: &str,
    ) -> Result<Response, Attempt> {
        let mut request = build()?;
        if let Some(authorization) = self
            .auth
            .authorization(&self.scopes)
            .await
            .map_err(|e| self.map_auth_error(e))?
        {
            request = request.header(header::AUTHORIZATION, authorization);
        }
        let response = request.send().await.map_err(|e| {
            let transient = is_transient_error(&e);
            let root = root_cause(&e);
            let err = anyhow::Error::new(e)
                .context(format!("cannot {what} at {}: {root}", self.registry));
            if transient {
                Attempt::Transient(err, None)
            } else {
                Attempt::Final(err)
            }
        })?;
        if retry::is_transient_status(response.status()) {
            let retry_after = self.retry.asked(response.headers());
            let status = response.status();
            let detail = registry_errors(response).await;
            return Err(Attempt::Transient(
                anyhow::anyhow!("{} answered {status} to {what}{detail}", self.registry),
                retry_after,
            ));
        }
        Ok(response)
    }

    fn map_auth_error(&self, err: anyhow::Error) -> Attempt {
        if err.is::<AuthError>() {
            Attempt::Final(self.auth_failed(None))
        } else {
            Attempt::Final(err)
        }
    }

    /// The error for a 401 that answering the challenge did not cure.
    fn auth_failed(&self, header: Option<&str>) -> anyhow::Error {
        let insufficient_scope = header.is_some_and(|h| h.contains("insufficient_scope"));
        if insufficient_scope && !self.auth.is_anonymous() {
            return self.denied();
        }
        let hint = if self.auth.is_anonymous() {
            format!(
                "it requires credentials: run `docker login {}` (or use `--auth azure` for ACR)",
                self.registry
            )
        } else {
            format!(
                "check the username and password or token (e.g. run `docker login {}` again)",
                self.registry
            )
        };
        anyhow::anyhow!(
            "authentication to {} failed: the registry refused {}; {hint}",
            self.registry,
            self.auth.credential_source()
        )
    }

    fn denied(&self) -> anyhow::Error {
        anyhow::anyhow!(
            "push to {}/{} was denied for {}: the identity needs pull and push permission on repository `{}` \
             (on ACR the AcrPush role; registries in ABAC mode need a repository role such as Container Registry Repository Writer)",
            self.registry,
            self.repository,
            self.auth.credential_source(),
            self.repository
        )
    }

    fn location(&self, response: &Response) -> Result<Url, Attempt> {
        let location = response
            .headers()
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                Attempt::Final(anyhow::anyhow!(
                    "{} opened an upload without a Location header",
                    self.registry
                ))
            })?;
        self.base.join(location).map_err(|e| {
            Attempt::Final(anyhow::anyhow!(
                "{} sent an invalid upload location `{location}`: {e}",
                self.registry
            ))
        })
    }

    /// A final error for an answer the operation did not expect, with the registry's own words.
    async fn unexpected(&self, response: Response, doing: &str) -> Attempt {
        let status = response.status();
        let entries = error_entries(response).await;
        let detail = errors_detail(&entries);
        let registry = &self.registry;
        Attempt::Final(match refusal(status, &entries) {
            Refusal::Denied => self.denied(),
            Refusal::OutOfStorage => anyhow::anyhow!(
                "{registry} refused {doing}: it is out of storage or over a quota ({status}{detail}). \
                 Free space there (delete unused tags; on ACR also untagged manifests) or raise the \
                 quota, then run the same command again: what was sent is kept, and it sends only \
                 the rest"
            ),
            Refusal::ManifestBlobUnknown => anyhow::Error::new(ManifestBlobUnknown(format!(
                "{registry} refused {doing}: the repository lacks a blob the manifest names \
                 ({status}{detail}), deleted since it was checked (garbage collection?). Run the \
                 same command again: it sends what is missing"
            ))),
            Refusal::Other => anyhow::anyhow!("{registry} answered {status} when {doing}{detail}"),
        })
    }
}

/// An HTTP client that trusts what `transport` says (`--ca-file`), for the registry and the
/// services in front of it (ACR's token exchange).
pub fn http_client(transport: &TransportOptions) -> anyhow::Result<reqwest::Client> {
    let extra_roots = match &transport.ca_file {
        Some(ca_file) => {
            crate::tls::certificate_file(ca_file, "--ca-file", "the registry's CA certificate(s)")?
        }
        None => Vec::new(),
    };
    crate::tls::client_builder(extra_roots)
        .user_agent(concat!("spin-aks/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(15))
        .tcp_keepalive(Duration::from_secs(30))
        // Every request but a blob upload (which sets its own, by size) is small.
        .timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(transport.max_connections.max(1))
        .build()
        .context("cannot set up the HTTP client")
}

fn base_url(scheme: &str, target: &RegistryRef) -> anyhow::Result<Url> {
    Url::parse(&format!(
        "{scheme}://{}/",
        host::api_host(target.registry())
    ))
    .map_err(|e| {
        crate::bad_input!(
            "`{}` is not a usable registry address: {e}",
            target.registry()
        )
    })
}

fn is_untrusted_certificate(err: &anyhow::Error) -> bool {
    err.chain().any(is_certificate_error)
}

/// Transport errors a later try may not see: refused or reset connections, timeouts, bodies cut
/// short. Certificate failures are final: retrying cannot make an untrusted server trusted.
fn is_transient_error(err: &reqwest::Error) -> bool {
    if err.is_builder() || err.is_redirect() || is_certificate_error(err) {
        return false;
    }
    err.is_connect() || err.is_timeout() || err.is_request() || err.is_body()
}

/// True when the error chain is a TLS certificate rejection (rustls reports these in its message).
fn is_certificate_error(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(err);
    while let Some(e) = cause {
        let text = e.to_string();
        if text.contains("certificate") || text.contains("UnknownIssuer") {
            return true;
        }
        cause = e.source();
    }
    false
}

fn untrusted(registry: &str, err: anyhow::Error) -> anyhow::Error {
    anyhow::anyhow!(
        "the TLS certificate of {registry} is not trusted ({err:#}); pass its CA with `--ca-file <PEM>`, or `--plain-http` if it serves HTTP"
    )
}

/// True when HTTPS failed at the connection (refused, TLS handshake): HTTP may work instead.
fn is_unreachable_over_tls(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<reqwest::Error>()
            .is_some_and(|e| e.is_connect() || e.is_request() || e.is_timeout())
    })
}

/// The innermost cause's message (`Connection refused (os error 111)`, `invalid peer certificate: …`).
fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = err;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

fn challenge_header(response: &Response) -> Option<String> {
    response
        .headers()
        .get(header::WWW_AUTHENTICATE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// `: CODE: message; …` from a distribution error body, or nothing.
async fn registry_errors(response: Response) -> String {
    errors_detail(&error_entries(response).await)
}

/// The `{"errors":[{code, message}]}` a registry answers with (distribution spec, "Error Codes").
async fn error_entries(response: Response) -> Vec<(String, String)> {
    #[derive(serde::Deserialize)]
    struct Errors {
        errors: Vec<ErrorEntry>,
    }
    #[derive(serde::Deserialize)]
    struct ErrorEntry {
        code: String,
        #[serde(default)]
        message: String,
    }
    let Ok(body) = response.bytes().await else {
        return Vec::new();
    };
    match serde_json::from_slice::<Errors>(&body) {
        Ok(errors) => errors
            .errors
            .into_iter()
            .map(|e| (e.code, e.message))
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// ` (CODE: message; …)`, or nothing when the registry said nothing.
fn errors_detail(entries: &[(String, String)]) -> String {
    if entries.is_empty() {
        return String::new();
    }
    let parts: Vec<String> = entries
        .iter()
        .map(|(code, message)| format!("{code}: {message}"))
        .collect();
    format!(" ({})", parts.join("; "))
}

/// What a registry's final refusal means to the user.
#[derive(Debug, PartialEq)]
enum Refusal {
    /// The identity lacks the right (403 without more said).
    Denied,
    /// No room: 507 Insufficient Storage, or a refusal that names a quota (a storage or
    /// repository quota used up, as ACR, Harbor and others say it).
    OutOfStorage,
    /// The manifest names a blob the repository lacks (`MANIFEST_BLOB_UNKNOWN`).
    ManifestBlobUnknown,
    Other,
}

fn refusal(status: StatusCode, entries: &[(String, String)]) -> Refusal {
    let says = |word: &str| {
        entries.iter().any(|(code, message)| {
            code.to_ascii_lowercase().contains(word) || message.to_ascii_lowercase().contains(word)
        })
    };
    if status == StatusCode::INSUFFICIENT_STORAGE || says("quota") {
        Refusal::OutOfStorage
    } else if entries
        .iter()
        .any(|(code, _)| code == "MANIFEST_BLOB_UNKNOWN")
    {
        Refusal::ManifestBlobUnknown
    } else if status == StatusCode::FORBIDDEN {
        Refusal::Denied
    } else {
        Refusal::Other
    }
}

/// A manifest refused because the repository lacks a blob it names: one the push found present
/// was deleted since (garbage collection), or a registry that lost it. Sending the blobs the
/// registry then lacks and the manifest again completes the push.
#[derive(Debug)]
pub struct ManifestBlobUnknown(pub String);

impl std::fmt::Display for ManifestBlobUnknown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ManifestBlobUnknown {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_is_read_from_its_status_and_the_registrys_errors() {
        let said = |code: &str, message: &str| vec![(code.to_string(), message.to_string())];
        let cases = [
            (507, vec![], Refusal::OutOfStorage),
            (
                403,
                said("DENIED", "storage quota exceeded"),
                Refusal::OutOfStorage,
            ),
            (
                400,
                said("QUOTA_EXCEEDED", "project quota"),
                Refusal::OutOfStorage,
            ),
            (
                403,
                said("DENIED", "requested access to the resource is denied"),
                Refusal::Denied,
            ),
            (403, vec![], Refusal::Denied),
            (
                400,
                said("MANIFEST_BLOB_UNKNOWN", "blob unknown to registry"),
                Refusal::ManifestBlobUnknown,
            ),
            (
                400,
                said("MANIFEST_INVALID", "manifest invalid"),
                Refusal::Other,
            ),
            (
                404,
                said("NAME_UNKNOWN", "repository name not known"),
                Refusal::Other,
            ),
        ];
        for (status, entries, want) in cases {
            let status = StatusCode::from_u16(status).unwrap();
            assert_eq!(refusal(status, &entries), want, "{status} {entries:?}");
        }
    }
}
