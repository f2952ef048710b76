//! The state file: versioned JSON with each app's last image and the repositories it was pushed
//! to, plus the last registry and cluster. Locked, re-read and atomically replaced; never secrets.

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::azure::vault::Vault;

/// The schema version this build writes.
pub const VERSION: u32 = 1;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub version: u32,
    /// Keyed by the app's canonical spin.toml path (or the layout/archive pushed without one).
    #[serde(default)]
    pub apps: BTreeMap<String, AppState>,
    /// The registry (login server) last selected, for commands that offer registries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_registry: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_cluster: Option<ClusterRef>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppState {
    /// The last reference pushed to, as given (`myacr.azurecr.io/hello:dev`, or without a tag
    /// when the tag came from the app's version).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_image: Option<String>,
    /// Registry → repositories this app was pushed to, most recent last (mount sources).
    #[serde(default)]
    pub pushed: BTreeMap<String, Vec<String>>,
    /// The last push pinned by digest (`registry/repository@sha256:…`): what apply deploys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_pinned: Option<String>,
    /// Where this app was last applied, so `up` with no flags repeats that deployment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_deploy: Option<DeployTarget>,
    /// The Key Vault this app's secret variables live in (URL), remembered from `--key-vault`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_vault: Option<String>,
    /// The workload identity `identity setup` made or found for this app.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<WorkloadIdentity>,
}

/// A user-assigned managed identity federated with the app's ServiceAccount (ids only).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadIdentity {
    /// The identity's ARM resource id.
    pub resource_id: String,
    pub client_id: String,
    pub principal_id: String,
    pub tenant_id: String,
    /// The ServiceAccount the federated credential trusts, and its namespace.
    pub namespace: String,
    pub service_account: String,
}

/// A kubeconfig context and namespace an app was applied to.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeployTarget {
    pub context: String,
    pub namespace: String,
}

impl AppState {
    /// `given` (a `--key-vault` flag), else the remembered Key Vault, checked: an unusable entry
    /// is bad input that `--key-vault` fixes.
    pub fn vault_or(&self, given: Option<&Vault>) -> anyhow::Result<Option<Vault>> {
        if let Some(vault) = given {
            return Ok(Some(vault.clone()));
        }
        let parse = |url: &String| {
            Vault::parse(url).map_err(|e| {
                crate::bad_input!(
                    "the Key Vault remembered for this app is unusable ({e}); pass --key-vault"
                )
            })
        };
        self.key_vault.as_ref().map(parse).transpose()
    }

    /// Records a push of this app to `registry/repository` as `reference`.
    pub fn record_push(&mut self, reference: &str, registry: &str, repository: &str) {
        self.last_image = Some(reference.to_string());
        let repositories = self.pushed.entry(registry.to_string()).or_default();
        repositories.retain(|r| r != repository);
        repositories.push(repository.to_string());
    }

    /// The repository on `registry` this app was pushed to most recently, other than `except`.
    pub fn mount_source(&self, registry: &str, except: &str) -> Option<&str> {
        self.pushed
            .get(registry)?
            .iter()
            .rev()
            .find(|r| *r != except)
            .map(String::as_str)
    }
}

/// An AKS cluster selection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterRef {
    pub subscription: String,
    pub resource_group: String,
    pub name: String,
}

/// The state file on disk.
#[derive(Clone, Debug)]
pub struct StateFile {
    path: PathBuf,
}

impl StateFile {
    /// The file at `path`, else the default `<data dir>/spin/plugins/aks/state`.
    pub fn new(path: Option<&Path>) -> anyhow::Result<Self> {
        let path = match path {
            Some(path) => path.to_path_buf(),
            None => dirs::data_dir()
                .context(
                    "cannot find the user data directory for the state file; pass --state-file",
                )?
                .join("spin")
                .join("plugins")
                .join("aks")
                .join("state"),
        };
        refuse_unless_regular(&path, "state file")?;
        refuse_unless_regular(&sibling(&path, "lock"), "state file's lock")?;
        Ok(StateFile { path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the state. A corrupt file is moved to `<file>.bak` and the returned warning says so
    /// (once: the next read finds no file).
    pub fn load(&self) -> anyhow::Result<(State, Option<String>)> {
        let _lock = self.lock()?;
        self.read()
    }

    /// Applies `change` to the current state and writes it back, holding the lock throughout so
    /// overlapping runs each see the other's changes.
    pub fn update(&self, change: impl FnOnce(&mut State)) -> anyhow::Result<Option<String>> {
        Ok(self.update_and_read(change)?.1)
    }

    /// As [`StateFile::update`], returning the state as written (with other runs' changes).
    pub fn update_and_read(
        &self,
        change: impl FnOnce(&mut State),
    ) -> anyhow::Result<(State, Option<String>)> {
        let _lock = self.lock()?;
        let (mut state, warning) = self.read()?;
        change(&mut state);
        state.version = VERSION;
        let bytes = serde_json::to_vec_pretty(&state)?;
        // NamedTempFile is created 0600, and rename keeps the mode.
        crate::oci::layout::write_atomically(&self.path, &bytes)
            .with_context(|| format!("cannot save the state file {}", self.path.display()))?;
        Ok((state, warning))
    }

    fn read(&self) -> anyhow::Result<(State, Option<String>)> {
        let bytes = match fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok((fresh(), None));
            }
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("cannot read the state file {}", self.path.display()))
            }
        };
        let problem = match serde_json::from_slice::<State>(&bytes) {
            Ok(state) if state.version <= VERSION => return Ok((state, None)),
            Ok(state) => format!(
                "it has version {} and this spin-aks understands up to {VERSION}",
                state.version
            ),
            Err(e) => format!("it is not valid JSON ({e})"),
        };
        let backup = sibling(&self.path, "bak");
        fs::rename(&self.path, &backup).with_context(|| {
            format!(
                "cannot move the unreadable state file {} aside",
                self.path.display()
            )
        })?;
        Ok((
            fresh(),
            Some(format!(
                "the state file {} was unreadable: {problem}; kept it as {} and started a new one",
                self.path.display(),
                backup.display()
            )),
        ))
    }

    fn lock(&self) -> anyhow::Result<fs::File> {
        let dir = self
            .path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the state directory {}", dir.display()))?;
        let lock_path = sibling(&self.path, "lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .with_context(|| format!("cannot open the state lock {}", lock_path.display()))?;
        fs4::FileExt::lock(&file)
            .with_context(|| format!("cannot lock the state file {}", lock_path.display()))?;
        Ok(file)
    }
}

/// Refuses `path` unless it is a regular file or does not exist: the state file is read, moved
/// aside when unreadable and replaced, which must never happen to a device node, a FIFO (reading
/// one waits for a writer forever), a directory, a socket, or a link to somewhere else.
fn refuse_unless_regular(path: &Path, what: &str) -> anyhow::Result<()> {
    let file_type = match fs::symlink_metadata(path) {
        Ok(meta) => meta.file_type(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(crate::bad_input!(
                "cannot inspect the {what} {}: {e}; pass --state-file (or set SPIN_AKS_STATE_FILE) naming a file spin-aks can read",
                path.display()
            ))
        }
    };
    let kind = {
        use std::os::unix::fs::FileTypeExt;
        match file_type {
            t if t.is_file() => return Ok(()),
            t if t.is_symlink() => match fs::read_link(path) {
                Ok(target) => format!("a symbolic link (to {})", target.display()),
                Err(_) => "a symbolic link".to_string(),
            },
            t if t.is_dir() => "a directory".to_string(),
            t if t.is_char_device() => "a character device".to_string(),
            t if t.is_block_device() => "a block device".to_string(),
            t if t.is_fifo() => "a FIFO (named pipe)".to_string(),
            t if t.is_socket() => "a socket".to_string(),
            _ => "not a regular file".to_string(),
        }
    };
    Err(crate::bad_input!(
        "the {what} {} is {kind}, not a regular file (spin-aks replaces it on every save); pass --state-file (or set SPIN_AKS_STATE_FILE) naming a regular file or a path that does not exist yet",
        path.display()
    ))
}

/// `<path>.<suffix>` beside `path` (`state` → `state.bak`, `s.json` → `s.json.bak`).
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".");
    name.push(suffix);
    PathBuf::from(name)
}

fn fresh() -> State {
    State {
        version: VERSION,
        ..State::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn updates_round_trip_and_the_file_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let file = StateFile::new(Some(&dir.path().join("nested/state"))).unwrap();
        file.update(|s| {
            s.apps
                .entry("/app/spin.toml".into())
                .or_default()
                .record_push("r.example/a:1", "r.example", "a");
            s.last_registry = Some("r.example".into());
        })
        .unwrap();
        let (state, warning) = file.load().unwrap();
        assert_eq!(warning, None);
        assert_eq!(state.version, VERSION);
        assert_eq!(
            state.apps["/app/spin.toml"].last_image.as_deref(),
            Some("r.example/a:1")
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(file.path()).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn corrupt_file_is_kept_as_bak_reported_once_and_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state");
        fs::write(&path, b"{not json").unwrap();
        let file = StateFile::new(Some(&path)).unwrap();
        let (state, warning) = file.load().unwrap();
        assert_eq!(state, fresh());
        assert!(warning.unwrap().contains("state.bak"));
        assert_eq!(
            fs::read(dir.path().join("state.bak")).unwrap(),
            b"{not json"
        );
        assert_eq!(file.update(|_| {}).unwrap(), None);
        assert_eq!(file.load().unwrap().1, None);
    }

    #[test]
    fn newer_versions_are_not_silently_misread() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state");
        fs::write(&path, br#"{"version":99,"apps":{}}"#).unwrap();
        let (_, warning) = StateFile::new(Some(&path)).unwrap().load().unwrap();
        assert!(warning.unwrap().contains("version 99"));
    }

    #[test]
    fn overlapping_updates_keep_every_change() {
        let dir = tempfile::tempdir().unwrap();
        let file = StateFile::new(Some(&dir.path().join("state"))).unwrap();
        std::thread::scope(|scope| {
            for i in 0..8 {
                let file = file.clone();
                scope.spawn(move || {
                    file.update(|s| {
                        s.apps.entry(format!("app{i}")).or_default();
                    })
                    .unwrap();
                });
            }
        });
        assert_eq!(file.load().unwrap().0.apps.len(), 8);
    }

    #[test]
    fn mount_source_is_the_latest_other_repository_on_the_same_registry() {
        let mut app = AppState::default();
        app.record_push("r/a:1", "r", "a");
        app.record_push("r/b:1", "r", "b");
        app.record_push("s/c:1", "s", "c");
        assert_eq!(app.mount_source("r", "c"), Some("b"));
        assert_eq!(app.mount_source("r", "b"), Some("a"));
        assert_eq!(app.mount_source("s", "c"), None);
        assert_eq!(app.mount_source("t", "a"), None);
    }
}
