//! A small distribution-API client over reqwest: HEAD/mount/streamed upload of blobs, HEAD/PUT of
//! manifests. Not oci-client: it lacks HEAD-first, mounts, file streaming, session-restarting retries.

use std::io::{Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::Context;
use reqwest::header::{self, HeaderMap};
use reqwest::{RequestBuilder, Response, StatusCode, Url};
use tokio_util::io::ReaderStream;

use super::auth::{AuthError, Authenticator};
use super::credential::SourcedCredential;
use super::host;
use super::progress::BlobProgress;
use super::retry::{self, Attempt, RetryPolicy};
use crate::oci::reference::RegistryRef;
use crate::oci::{media_types, Digest};

/// Manifest media types we accept when asking what a tag points at.
const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json";

/// The largest manifest or index read (distribution refuses to store one over 4 MiB).
const MANIFEST_LIMIT: u64 = 4 << 20;

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

/// What a cross-repository mount request achieved.
pub enum MountOutcome {
    Mounted,
    /// The registry opened an ordinary upload session instead, at this location.
    Upload(Url),
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
            probe_http: !transport.plain_http && host::is_loopback(target.registry()),
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

    /// True when the repository already holds the blob (retried until `deadline`).
    pub async fn blob_exists(&self, digest: &Digest, deadline: Instant) -> anyhow::Result<bool> {
        retry::run_until(&self.retry, deadline, |_| self.head_blob(digest)).await
    }

    async fn head_blob(&self, digest: &Digest) -> Result<bool, Attempt> {
        let url = self.blob_url(digest)?;
        let response = self
            .send(|| Ok(self.http.head(url.clone())), "check blob")
            .await?;
        match response.status() {
            StatusCode::OK => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(self
                .unexpected(response, &format!("checking blob {digest}"))
                .await),
        }
    }

    /// Asks the registry to mount `digest` from repository `from` instead of uploading it.
    pub async fn mount_blob(
        &self,
        digest: &Digest,
        from: &str,
        deadline: Instant,
    ) -> anyhow::Result<MountOutcome> {
        let mut url = self.url(&format!("/v2/{}/blobs/uploads/", self.repository))?;
        url.query_pairs_mut()
            .append_pair("mount", &digest.to_string())
            .append_pair("from", from);
        retry::run_until(&self.retry, deadline, |_| async {
            let response = self
                .send(|| Ok(self.http.post(url.clone())), "mount blob")
                .await?;
            match response.status() {
                StatusCode::CREATED => Ok(MountOutcome::Mounted),
                StatusCode::ACCEPTED => Ok(MountOutcome::Upload(self.location(&response)?)),
                _ => Err(self
                    .unexpected(response, &format!("mounting blob {digest} from {from}"))
                    .await),
            }
        })
        .await
    }

    /// Uploads the blob at `path`, streaming the file, retrying until `deadline`. `session` is an
    /// upload already opened (by a mount attempt). After a failed try the blob may have arrived
    /// after all (HEAD); else the upload resumes at the offset the registry reports for the session
    /// (GET → `Range`), or starts over in a new session when the registry has none to offer.
    pub async fn upload_blob(
        &self,
        blob: BlobFile<'_>,
        session: Option<Url>,
        progress: &BlobProgress,
        deadline: Instant,
    ) -> anyhow::Result<()> {
        let session = Mutex::new(session.map(|location| (location, 0)));
        retry::run_until(&self.retry, deadline, |attempt| {
            let session = &session;
            async move {
                if attempt > 0 && self.head_blob(blob.digest).await? {
                    return Ok(());
                }
                let known = session.lock().expect("session lock").take();
                let (location, offset) = match known {
                    Some((location, _)) if attempt > 0 => {
                        self.resume_point(location, deadline).await?
                    }
                    Some(start) => start,
                    None => (self.start_upload(deadline).await?, 0),
                };
                *session.lock().expect("session lock") = Some((location.clone(), offset));
                progress.rewind(offset);
                if offset == 0 {
                    return self.put_blob(blob, location, true, progress).await;
                }
                let location = if offset < blob.size {
                    self.patch_from(blob, location, offset, progress).await?
                } else {
                    location
                };
                self.put_blob(blob, location, false, progress).await
            }
        })
        .await
    }

    /// Where an upload session stands: its location and the bytes the registry holds, or a new
    /// session when the registry cannot say (the session is gone, or it does not resume).
    async fn resume_point(&self, location: Url, deadline: Instant) -> Result<(Url, u64), Attempt> {
        let status = retry::run_until(&self.retry, deadline, |_| async {
            let response = self
                .send(|| Ok(self.http.get(location.clone())), "check upload")
                .await?;
            if response.status() != StatusCode::NO_CONTENT {
                return Ok(None);
            }
            let offset = upload_offset(response.headers());
            Ok(Some((
                self.location(&response).unwrap_or(location.clone()),
                offset,
            )))
        })
        .await?;
        match status {
            Some((location, Some(offset))) => {
                tracing::info!("resuming an upload at byte {offset}");
                Ok((location, offset))
            }
            _ => Ok((self.start_upload(deadline).await?, 0)),
        }
    }

    /// Sends the blob from `offset` on in one PATCH; returns the session's next location.
    async fn patch_from(
        &self,
        blob: BlobFile<'_>,
        location: Url,
        offset: u64,
        progress: &BlobProgress,
    ) -> Result<Url, Attempt> {
        let response = self
            .send(
                || {
                    let body = blob.body_from(offset, progress)?;
                    Ok(self
                        .http
                        .patch(location.clone())
                        .header(header::CONTENT_TYPE, "application/octet-stream")
                        .header(header::CONTENT_RANGE, format!("{offset}-{}", blob.size - 1))
                        .header(header::CONTENT_LENGTH, blob.size - offset)
                        .timeout(upload_timeout(blob.size - offset))
                        .body(body))
                },
                "upload blob",
            )
            .await?;
        match response.status() {
            StatusCode::ACCEPTED => self.location(&response),
            status => Err(self.upload_failed(blob.digest, status, response).await),
        }
    }

    /// Completes the upload at `location`: with the whole blob (monolithic), or with no body when
    /// the session already holds it all.
    async fn put_blob(
        &self,
        blob: BlobFile<'_>,
        mut location: Url,
        with_body: bool,
        progress: &BlobProgress,
    ) -> Result<(), Attempt> {
        location
            .query_pairs_mut()
            .append_pair("digest", &blob.digest.to_string());
        let remaining = if with_body { blob.size } else { 0 };
        let response = self
            .send(
                || {
                    let request = self
                        .http
                        .put(location.clone())
                        .header(header::CONTENT_TYPE, "application/octet-stream")
                        .header(header::CONTENT_LENGTH, remaining)
                        .timeout(upload_timeout(remaining));
                    if with_body {
                        Ok(request.body(blob.body_from(0, progress)?))
                    } else {
                        Ok(request)
                    }
                },
                "upload blob",
            )
            .await?;
        match response.status() {
            StatusCode::CREATED => Ok(()),
            status => Err(self.upload_failed(blob.digest, status, response).await),
        }
    }

    /// A lost session (404 BLOB_UPLOAD_UNKNOWN) or a PATCH at an offset the session no longer
    /// holds (416) is worth another try in a new session; other answers are final.
    async fn upload_failed(
        &self,
        digest: &Digest,
        status: StatusCode,
        response: Response,
    ) -> Attempt {
        match status {
            StatusCode::NOT_FOUND | StatusCode::RANGE_NOT_SATISFIABLE => Attempt::Transient(
                anyhow::anyhow!("{} lost the upload session of blob {digest}", self.registry),
                None,
            ),
            _ => {
                self.unexpected(response, &format!("uploading blob {digest}"))
                    .await
            }
        }
    }

    async fn start_upload(&self, deadline: Instant) -> anyhow::Result<Url> {
        let url = self.url(&format!("/v2/{}/blobs/uploads/", self.repository))?;
        retry::run_until(&self.retry, deadline, |_| async {
            let response = self
                .send(|| Ok(self.http.post(url.clone())), "start upload")
                .await?;
            match response.status() {
                StatusCode::ACCEPTED => Ok(self.location(&response)?),
                _ => Err(self.unexpected(response, "starting a blob upload").await),
            }
        })
        .await
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
            let transient = retry::is_transient_error(&e);
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
            let retry_after = retry::retry_after(response.headers());
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
        if status == StatusCode::FORBIDDEN {
            return Attempt::Final(self.denied());
        }
        let detail = registry_errors(response).await;
        Attempt::Final(anyhow::anyhow!(
            "{} answered {status} when {doing}{detail}",
            self.registry
        ))
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

/// A blob file to upload: its digest, size and path in the layout.
#[derive(Clone, Copy)]
pub struct BlobFile<'a> {
    pub digest: &'a Digest,
    pub size: u64,
    pub path: &'a Path,
}

impl BlobFile<'_> {
    /// The file from `offset` on as a streamed request body that advances `progress`.
    fn body_from(&self, offset: u64, progress: &BlobProgress) -> anyhow::Result<reqwest::Body> {
        let mut file = std::fs::File::open(self.path)
            .with_context(|| format!("cannot read the layer {}", self.path.display()))?;
        file.seek(SeekFrom::Start(offset))
            .with_context(|| format!("cannot read the layer {}", self.path.display()))?;
        let progress = progress.clone();
        let stream = ReaderStream::with_capacity(tokio::fs::File::from_std(file), 256 * 1024);
        let stream = futures_util::StreamExt::inspect(stream, move |chunk| {
            if let Ok(bytes) = chunk {
                progress.add(bytes.len() as u64);
            }
        });
        Ok(reqwest::Body::wrap_stream(stream))
    }
}

/// The bytes an upload session holds, from its `Range: 0-<last>` header; `None` when it holds
/// none (distribution says `0-0` then, which could also mean one byte: start over either way).
fn upload_offset(headers: &HeaderMap) -> Option<u64> {
    let range = headers.get(header::RANGE)?.to_str().ok()?;
    let last: u64 = range.trim().strip_prefix("0-")?.parse().ok()?;
    (last > 0).then(|| last + 1)
}

/// A deadline for uploading `size` bytes that only a stalled upload misses (>= 256 KiB/s).
fn upload_timeout(size: u64) -> Duration {
    Duration::from_secs(60 + size / (256 * 1024))
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
    err.chain().any(retry::is_certificate_error)
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
        return String::new();
    };
    match serde_json::from_slice::<Errors>(&body) {
        Ok(errors) if !errors.errors.is_empty() => {
            let parts: Vec<String> = errors
                .errors
                .iter()
                .map(|e| format!("{}: {}", e.code, e.message))
                .collect();
            format!(" ({})", parts.join("; "))
        }
        _ => String::new(),
    }
}
