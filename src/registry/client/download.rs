//! Fetching blobs whole into an OCI layout: streamed to disk and hashed on the way, a blob whose
//! bytes do not hash to its digest discarded; a blob the layout holds is not asked for.

use reqwest::StatusCode;

use super::RegistryClient;
use crate::oci::{Digest, Layout};
use crate::retry::{self, Attempt};

impl RegistryClient {
    /// Copies blob `digest` of this repository into `layout` unless it is there already; the
    /// bytes fetched (0 when it was there). `on_chunk` hears each chunk's length (progress).
    pub async fn download_blob(
        &self,
        digest: &Digest,
        layout: &Layout,
        on_chunk: &(dyn Fn(u64) + Sync),
    ) -> anyhow::Result<u64> {
        if layout.has_blob(digest) {
            return Ok(0);
        }
        let url = self.blob_url(digest)?;
        retry::run(&self.retry, |_| async {
            let mut response = self
                .send(|| Ok(self.http.get(url.clone())), "get blob")
                .await?;
            match response.status() {
                StatusCode::OK => {}
                StatusCode::NOT_FOUND => {
                    return Err(Attempt::Final(anyhow::anyhow!(
                        "{}/{} has no blob {digest}, though a manifest names it",
                        self.registry,
                        self.repository
                    )))
                }
                _ => {
                    return Err(self
                        .unexpected(response, &format!("getting blob {digest}"))
                        .await)
                }
            }
            let mut writer = layout.blob_writer()?;
            while let Some(chunk) = response.chunk().await.map_err(|e| {
                Attempt::Transient(anyhow::anyhow!("reading blob {digest}: {e}"), None)
            })? {
                std::io::Write::write_all(&mut writer, &chunk).map_err(anyhow::Error::from)?;
                on_chunk(chunk.len() as u64);
            }
            let size = writer.commit_expecting(digest).map_err(|e| {
                anyhow::anyhow!("{}/{} answered: {e}", self.registry, self.repository)
            })?;
            Ok(size)
        })
        .await
    }
}
