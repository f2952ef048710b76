//! The API a cluster serves for each kind: discovered from the server, or read from a cache on
//! disk per server and server version (as kubectl keeps one) when it knows every kind asked for.

use std::path::PathBuf;
use std::time::Duration;

use kube::core::GroupVersionKind;
use kube::discovery::{ApiResource, Discovery, Scope};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::applyset;
use super::connect::Connection;
use super::errors::{explain, ApiCall};

/// SpinApp's group since spin-operator v0.4.0, and before it.
pub const SPINKUBE_GROUP: &str = "core.spinkube.dev";
pub const OLD_SPINKUBE_GROUP: &str = "core.spinoperator.dev";

/// One kind the server serves at one version.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Served {
    resource: ApiResource,
    namespaced: bool,
    /// The version discovery recommends for its group.
    preferred: bool,
}

/// The cache file's content.
#[derive(Serialize, Deserialize)]
struct Cached {
    server: String,
    version: String,
    served: Vec<Served>,
}

/// The API the cluster serves for each kind, found once per command.
pub struct ServedApis {
    served: Vec<Served>,
}

impl ServedApis {
    /// Asks the server (aggregated discovery) and refreshes the cache. An API server that has
    /// just started lists its CRDs' kinds a moment after it answers: when SpinApp's CRD exists and
    /// is established but its kind is not listed yet, discovery is asked again (every 250 ms, for
    /// up to 10 s) rather than taken to say SpinKube is missing.
    pub async fn discover(conn: &Connection) -> anyhow::Result<Self> {
        let started = std::time::Instant::now();
        loop {
            let resources = ServedApis::discover_once(conn).await?;
            if resources.spinapp_group().is_some()
                || started.elapsed() > Duration::from_secs(10)
                || !spinapp_crd_established(conn).await
            {
                return Ok(resources);
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    async fn discover_once(conn: &Connection) -> anyhow::Result<Self> {
        let discovery = Discovery::new(conn.client.clone())
            .run_aggregated()
            .await
            .map_err(|e| explain(e, conn, ApiCall::new("discover", "APIs", None)))?;
        let mut served = Vec::new();
        for group in discovery.groups() {
            let preferred = group.preferred_version_or_latest().to_string();
            for version in group.versions() {
                for (resource, caps) in group.versioned_resources(version) {
                    served.push(Served {
                        resource,
                        namespaced: caps.scope == Scope::Namespaced,
                        preferred: version == preferred,
                    });
                }
            }
        }
        let resources = ServedApis { served };
        if let Some(version) = server_version(conn).await {
            resources.save(conn, &version);
        }
        Ok(resources)
    }

    /// The cached table when it serves every object's kind (one small request: the server's
    /// version), else [`ServedApis::discover`].
    pub async fn for_objects(conn: &Connection, objects: &[Value]) -> anyhow::Result<Self> {
        let cached = match server_version(conn).await {
            Some(version) => load(conn, &version),
            None => None,
        };
        if let Some(resources) = cached {
            let known = objects.iter().all(|o| {
                let field = |f: &str| o[f].as_str().unwrap_or_default();
                resources
                    .resolve(field("apiVersion"), field("kind"))
                    .is_ok()
            });
            if known {
                return Ok(resources);
            }
        }
        ServedApis::discover(conn).await
    }

    /// The SpinApp group the cluster serves, new or old; None when SpinKube is not installed.
    pub fn spinapp_group(&self) -> Option<&'static str> {
        [SPINKUBE_GROUP, OLD_SPINKUBE_GROUP]
            .into_iter()
            .find(|group| self.find(group, "v1alpha1", "SpinApp").is_some())
    }

    /// The resource of `api_version`/`kind` and whether it is namespaced, or an error saying the
    /// cluster does not serve it.
    pub fn resolve(&self, api_version: &str, kind: &str) -> anyhow::Result<(ApiResource, bool)> {
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        self.find(group, version, kind).ok_or_else(|| {
            anyhow::anyhow!(
                "the cluster does not serve {kind} in {api_version}; install what provides it (for SpinKube objects: `spin-aks cluster check`)"
            )
        })
    }

    /// The resource of a `Kind.group` from an ApplySet annotation, at its preferred version.
    pub fn resolve_group_kind(&self, group_kind: &str) -> Option<(ApiResource, bool)> {
        let (group, kind) = applyset::split_group_kind(group_kind);
        (self.served.iter())
            .find(|s| s.preferred && s.resource.group == group && s.resource.kind == kind)
            .map(|s| (s.resource.clone(), s.namespaced))
    }

    fn find(&self, group: &str, version: &str, kind: &str) -> Option<(ApiResource, bool)> {
        let gvk = GroupVersionKind::gvk(group, version, kind);
        (self.served.iter())
            .find(|s| {
                let r = &s.resource;
                r.group == gvk.group && r.version == gvk.version && r.kind == gvk.kind
            })
            .map(|s| (s.resource.clone(), s.namespaced))
    }

    /// Writes the table for `version` of the server (best effort: a cache only saves requests).
    fn save(&self, conn: &Connection, version: &str) {
        let Some(path) = cache_path(conn, version) else {
            return;
        };
        let cached = Cached {
            server: conn.server.clone(),
            version: version.to_string(),
            served: self.served.clone(),
        };
        let written = (path.parent().map(std::fs::create_dir_all))
            .transpose()
            .ok()
            .and_then(|_| serde_json::to_vec(&cached).ok());
        if let Some(bytes) = written {
            let _ = crate::oci::layout::write_atomically(
                &path,
                &bytes,
                crate::oci::layout::FileAccess::Private,
            );
        }
    }
}

/// Forgets the server's cached table (a kind it listed answered 404).
pub fn forget(conn: &Connection) {
    if let Some(dir) = cache_dir() {
        let prefix = server_key(conn);
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            if entry.file_name().to_string_lossy().starts_with(&prefix) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}

/// The table cached for the server at `version`, when there is one for exactly that.
fn load(conn: &Connection, version: &str) -> Option<ServedApis> {
    let bytes = std::fs::read(cache_path(conn, version)?).ok()?;
    let cached: Cached = serde_json::from_slice(&bytes).ok()?;
    (cached.server == conn.server && cached.version == version).then_some(ServedApis {
        served: cached.served,
    })
}

/// Whether SpinApp's CRD exists with `Established` true (a failed read says no).
async fn spinapp_crd_established(conn: &Connection) -> bool {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    let crds: kube::Api<CustomResourceDefinition> = kube::Api::all(conn.client.clone());
    let name = format!("spinapps.{SPINKUBE_GROUP}");
    crds.get_opt(&name).await.ok().flatten().is_some_and(|crd| {
        crd.status
            .and_then(|s| s.conditions)
            .into_iter()
            .flatten()
            .any(|c| c.type_ == "Established" && c.status == "True")
    })
}

/// The server's `gitVersion`, or `None` when it will not say (no cache then).
async fn server_version(conn: &Connection) -> Option<String> {
    conn.client
        .apiserver_version()
        .await
        .ok()
        .map(|info| info.git_version)
}

/// `$XDG_CACHE_HOME/spin-aks/discovery` (else `~/.cache/…`).
fn cache_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))?;
    Some(base.join("spin-aks").join("discovery"))
}

/// A file name part naming the server (its URL hashed).
fn server_key(conn: &Connection) -> String {
    let digest = Sha256::digest(conn.server.as_bytes());
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

fn cache_path(conn: &Connection, version: &str) -> Option<PathBuf> {
    let version: String = (version.chars())
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    Some(cache_dir()?.join(format!("{}-{version}.json", server_key(conn))))
}
