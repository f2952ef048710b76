//! CRDs taken from a Go module zip (the operator's, which its chart leaves out; Flux's controllers'),
//! from a Go module proxy or a mirror the user names, verified against the checksum database's hash.

use std::io::Read;

use base64::Engine;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::releases::Module;
use crate::bad_input;
use crate::manifests::documents::parse_documents;

/// The public Go module proxy.
pub const DEFAULT_PROXY: &str = "https://proxy.golang.org";

/// Where module zips come from.
#[derive(Clone, Copy, Debug)]
pub enum ModuleSource<'a> {
    /// A GOPROXY-style base URL.
    Proxy(&'a str),
    /// A mirror registry `bundle push` filled.
    Mirror(&'a super::mirror::Mirror),
}

/// The CRDs in `module`'s `config/crd/bases/`, from its zip on `source`, refused unless the
/// zip's `h1:` hash is the pinned one.
pub async fn fetch(
    http: &reqwest::Client,
    source: ModuleSource<'_>,
    module: &Module,
) -> anyhow::Result<Vec<Value>> {
    match source {
        ModuleSource::Proxy(proxy) => fetch_from_proxy(http, proxy, module).await,
        ModuleSource::Mirror(mirror) => {
            let zip = mirror.module_zip(module, http).await?;
            crds_in_zip(&zip, module).map_err(|e| {
                anyhow::anyhow!(
                    "the module zip of {}@{} in the mirror {} is not usable: {e:#}; push the bundle again",
                    module.path,
                    module.version,
                    mirror.registry
                )
            })
        }
    }
}

/// [`fetch`] from a Go module proxy.
async fn fetch_from_proxy(
    http: &reqwest::Client,
    proxy: &str,
    module: &Module,
) -> anyhow::Result<Vec<Value>> {
    let bytes = module_zip(http, proxy, module).await?;
    let shown = crate::redact::redact_userinfo(proxy);
    crds_in_zip(&bytes, module).map_err(|e| {
        anyhow::anyhow!(
            "the module zip of {}@{} from {shown} is not usable: {e:#}; name a Go module proxy or mirror that serves the published module with --module-proxy",
            module.path,
            module.version
        )
    })
}

/// The zip of `module` from the Go module proxy `proxy`, unchecked.
pub async fn module_zip(
    http: &reqwest::Client,
    proxy: &str,
    module: &Module,
) -> anyhow::Result<Vec<u8>> {
    let url = format!(
        "{}/{}/@v/{}.zip",
        proxy.trim_end_matches('/'),
        module.path,
        module.version
    );
    // The proxy's URL may carry a login: messages show it hidden, and reqwest's without its URL.
    let shown = crate::redact::redact_userinfo(&url);
    let fetch_error = |e: String| {
        anyhow::anyhow!(
            "cannot fetch the CRDs of {}@{} from {shown}: {e}; name a reachable Go module proxy or mirror with --module-proxy",
            module.path,
            module.version
        )
    };
    let response = http
        .get(&url)
        .send()
        .await
        .map_err(|e| fetch_error(e.without_url().to_string()))?;
    if !response.status().is_success() {
        return Err(fetch_error(format!("it answered {}", response.status())));
    }
    let bytes = response
        .bytes()
        .await
        .map_err(|e| fetch_error(e.without_url().to_string()))?;
    Ok(bytes.to_vec())
}

/// The CRDs of a module zip whose `h1:` hash is the pinned one.
pub fn crds_in_zip(bytes: &[u8], module: &Module) -> anyhow::Result<Vec<Value>> {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes))?;
    let prefix = format!("{}@{}/", module.path, module.version);
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i)?;
        if entry.is_dir() {
            continue;
        }
        let name = entry.name()?.to_string();
        let mut content = Vec::new();
        entry.read_to_end(&mut content)?;
        files.push((name, content));
    }
    let h1 = dirhash_h1(&mut files)?;
    if h1 != module.h1 {
        return Err(bad_input!(
            "its hash is {h1}, but the Go checksum database records {} for {}@{}: the mirror serves other content",
            module.h1,
            module.path,
            module.version
        ));
    }
    let bases = format!("{prefix}config/crd/bases/");
    let mut crds = Vec::new();
    for (name, content) in &files {
        let Some(file) = name.strip_prefix(&bases) else {
            continue;
        };
        if file.contains('/') || !file.ends_with(".yaml") {
            continue;
        }
        let text = std::str::from_utf8(content)?;
        crds.extend(parse_documents(text, name)?);
    }
    if crds.is_empty() {
        anyhow::bail!("it holds no CRD under config/crd/bases/");
    }
    Ok(crds)
}

/// Go's `dirhash.Hash1`: the SHA-256 of the lines `<hex sha256>  <name>\n` of every file, sorted
/// by name, base64-encoded after `h1:`.
fn dirhash_h1(files: &mut [(String, Vec<u8>)]) -> anyhow::Result<String> {
    files.sort_by(|a, b| a.0.cmp(&b.0));
    let mut summary = Sha256::new();
    for (name, content) in files.iter() {
        if name.contains('\n') {
            anyhow::bail!("a file name holds a newline");
        }
        summary.update(format!(
            "{}  {name}\n",
            hex::encode(Sha256::digest(content))
        ));
    }
    let encoded = base64::engine::general_purpose::STANDARD.encode(summary.finalize());
    Ok(format!("h1:{encoded}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_h1_hash_is_gos_dirhash() {
        // Two files hashed by hand with sha256sum, as dirhash.Hash1 lays them out.
        let mut files = vec![
            ("m@v1.0.0/b.txt".to_string(), b"b\n".to_vec()),
            ("m@v1.0.0/a.txt".to_string(), b"a\n".to_vec()),
        ];
        let summary = format!(
            "{}  m@v1.0.0/a.txt\n{}  m@v1.0.0/b.txt\n",
            hex::encode(Sha256::digest(b"a\n")),
            hex::encode(Sha256::digest(b"b\n"))
        );
        let expected = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(summary));
        assert_eq!(dirhash_h1(&mut files).unwrap(), format!("h1:{expected}"));
    }
}
