//! Sending blobs: the HEAD that finds one already there, cross-repository mounts, and uploads
//! (one POST where the registry takes a small blob whole, else POST then PUT; resumed or restarted).

use std::io::{Seek, SeekFrom};
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::Context;
use reqwest::header::{self, HeaderMap};
use reqwest::{Response, StatusCode, Url};
use tokio_util::io::ReaderStream;

use super::{registry_errors, RegistryClient};
use crate::oci::Digest;
use crate::registry::progress::BlobProgress;
use crate::retry::{self, Attempt};

/// A blob this small is sent whole in one POST where the registry takes that, and may be sent
/// without a HEAD first (`push.rs`): a wrong guess costs one small redundant upload. 256 KiB is
/// what a registry written in Go reads past and discards when it ignores a request's body
/// (net/http's `maxPostHandlerReadBytes`), so a refused POST still leaves its connection usable.
pub const SMALL_BLOB: u64 = 256 * 1024;

/// What the registry did with a blob sent whole in one POST.
enum SinglePost {
    /// It stored the blob (201).
    Stored,
    /// It opened an upload session instead (202), as the spec asks of a registry without
    /// single-POST uploads: the blob goes into it with a PUT.
    Session(Url),
    /// It answered with an error: the blob goes by POST then PUT.
    Refused,
}

/// What a cross-repository mount request achieved.
pub enum MountOutcome {
    Mounted,
    /// The registry opened an ordinary upload session instead, at this location.
    Upload(Url),
}

impl RegistryClient {
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
    /// upload already opened (by a mount attempt); without one a small blob goes in one POST where
    /// the registry takes that ([`Self::open_upload`]). After a failed try the blob may have arrived
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
                    None => match self.open_upload(blob, progress, deadline).await? {
                        Some(location) => (location, 0),
                        None => return Ok(()),
                    },
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

    /// Opens the upload of a blob: `None` when a single POST (`?digest=`, distribution spec
    /// "Single POST") has already stored it, else the session to PUT it into. Only small blobs go
    /// that way, and only while the registry takes it: the push's first single POST finds out
    /// while the others wait for its answer, so a registry that refuses it — with a session, as
    /// the spec asks (distribution 2.8 and ACR, whose POST ignores `digest` and the body), or with
    /// an error — costs one refused POST per push; every later blob goes by POST then PUT.
    async fn open_upload(
        &self,
        blob: BlobFile<'_>,
        progress: &BlobProgress,
        deadline: Instant,
    ) -> Result<Option<Url>, Attempt> {
        if blob.size > SMALL_BLOB {
            return Ok(Some(self.start_upload(deadline).await?));
        }
        let known = self.single_post.lock().await;
        let probe = match *known {
            Some(false) => {
                drop(known);
                return Ok(Some(self.start_upload(deadline).await?));
            }
            Some(true) => {
                drop(known);
                None
            }
            None => Some(known),
        };
        let answer = self.post_whole(blob, progress).await;
        if let Some(mut known) = probe {
            match &answer {
                Ok(SinglePost::Stored) => *known = Some(true),
                Ok(SinglePost::Session(_) | SinglePost::Refused) => {
                    tracing::debug!("{} takes no single-POST uploads", self.registry);
                    *known = Some(false);
                }
                // A failed try says nothing: the next single POST asks again.
                Err(_) => {}
            }
        }
        match answer? {
            SinglePost::Stored => Ok(None),
            SinglePost::Session(location) => Ok(Some(location)),
            SinglePost::Refused => Ok(Some(self.start_upload(deadline).await?)),
        }
    }

    /// One try of sending the whole blob in the POST that would open its upload.
    async fn post_whole(
        &self,
        blob: BlobFile<'_>,
        progress: &BlobProgress,
    ) -> Result<SinglePost, Attempt> {
        let mut url = self.url(&format!("/v2/{}/blobs/uploads/", self.repository))?;
        url.query_pairs_mut()
            .append_pair("digest", &blob.digest.to_string());
        let response = self
            .send(
                || {
                    Ok(self
                        .http
                        .post(url.clone())
                        .header(header::CONTENT_TYPE, "application/octet-stream")
                        .header(header::CONTENT_LENGTH, blob.size)
                        .timeout(upload_timeout(blob.size))
                        .body(blob.body_from(0, progress)?))
                },
                "upload blob",
            )
            .await?;
        match response.status() {
            StatusCode::CREATED => Ok(SinglePost::Stored),
            StatusCode::ACCEPTED => Ok(SinglePost::Session(self.location(&response)?)),
            StatusCode::FORBIDDEN => Err(self
                .unexpected(response, &format!("uploading blob {}", blob.digest))
                .await),
            status => {
                let detail = registry_errors(response).await;
                tracing::debug!(
                    "{} answered {status} to a single-POST upload{detail}",
                    self.registry
                );
                Ok(SinglePost::Refused)
            }
        }
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
}

/// A blob to upload: its digest, size, and the file it is in (a layout's blob file, or an
/// archive holding it from byte `start` on).
#[derive(Clone, Copy)]
pub struct BlobFile<'a> {
    pub digest: &'a Digest,
    pub size: u64,
    pub path: &'a Path,
    pub start: u64,
}

impl BlobFile<'_> {
    /// The file from `offset` on as a streamed request body that advances `progress`.
    fn body_from(&self, offset: u64, progress: &BlobProgress) -> anyhow::Result<reqwest::Body> {
        let mut file = std::fs::File::open(self.path)
            .with_context(|| format!("cannot read the layer {}", self.path.display()))?;
        file.seek(SeekFrom::Start(self.start + offset))
            .with_context(|| format!("cannot read the layer {}", self.path.display()))?;
        let progress = progress.clone();
        let rest = tokio::io::AsyncReadExt::take(
            tokio::fs::File::from_std(file),
            self.size.saturating_sub(offset),
        );
        let stream = ReaderStream::with_capacity(rest, 256 * 1024);
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
