//! The state file: versioned JSON with each app's last image and the repositories it was pushed
//! to, plus the last registry and cluster. Locked, re-read and atomically replaced; never secrets.

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::azure::vault::Vault;
use crate::azure::ClusterRef;
use crate::oci::reference::RegistryRef;

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
    pub last_image: Option<RegistryRef>,
    /// Registry → repositories this app was pushed to, most recent last (mount sources).
    #[serde(default)]
    pub pushed: BTreeMap<String, Vec<String>>,
    /// The last push pinned by digest (`registry/repository@sha256:…`): what apply deploys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_pinned: Option<RegistryRef>,
    /// Where this app was last applied, so `up` with no flags repeats that deployment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_deploy: Option<DeployTarget>,
    /// The Key Vault this app's secret variables live in (URL), remembered from `--key-vault`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_vault: Option<Vault>,
    /// The workload identity `identity setup` made or found for this app.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<WorkloadIdentity>,
    /// The deploy artifact `publish` pushed last (Flux OCI artifact beside the image).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deploy_artifact: Option<DeployArtifact>,
    /// The clusters following the deploy artifact (`fleet add`), in the order added.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fleet: Vec<FleetMember>,
    /// The key this app's images are signed with (`--sign`), so the next push signs again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing: Option<SigningKeyState>,
    /// What `up --verify` or `apply --verify` trusts: the app's images are verified before each
    /// deploy until `--no-verify`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<VerifyTrust>,
}

/// Where the signing key is: a file path or a Key Vault key URL (never the key itself), and
/// the certificate chain file given with it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SigningKeyState {
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert: Option<std::path::PathBuf>,
}

/// The certificates (absolute paths of `--trust-cert` files; never keys) and the signing identity
/// (`--subject`) an app's images must be signed with.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyTrust {
    pub trust_certs: Vec<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
}

/// Where the app's deploy artifact lives and what each tag (environment) points at.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeployArtifact {
    /// `registry/repository`, without tag.
    pub repository: String,
    /// Tag → the artifact's manifest digest and the image it pins.
    #[serde(default)]
    pub tags: BTreeMap<String, PublishedTag>,
}

/// One tag of the deploy artifact.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishedTag {
    pub digest: String,
    pub image: String,
}

/// A cluster following the app's deploy artifact.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FleetMember {
    /// The kubeconfig context, or `aks:<resource group>/<name>`.
    pub cluster: String,
    /// The AKS cluster, when followed through ARM (a `fluxConfigurations` resource).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aks: Option<ClusterRef>,
    pub namespace: String,
    /// The deploy artifact's tag it follows.
    pub env: String,
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
    /// `given` (a `--key-vault` flag), else the remembered Key Vault.
    pub fn vault_or(&self, given: Option<&Vault>) -> Option<Vault> {
        given.or(self.key_vault.as_ref()).cloned()
    }

    /// Records a push of this app to `reference` (as given: without the tag when it came from the
    /// app's version).
    pub fn record_push(&mut self, reference: &RegistryRef) {
        let repository = reference.repository();
        let repositories = self
            .pushed
            .entry(reference.registry().to_string())
            .or_default();
        repositories.retain(|r| r != repository);
        repositories.push(repository.to_string());
        self.last_image = Some(reference.clone());
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
    /// (once: the next read finds no file); so does a remembered value this build cannot use,
    /// which is left out of the state (and of the file at the next update).
    pub fn load(&self) -> anyhow::Result<(State, Option<String>)> {
        let _lock = self.lock()?;
        let read = self.read()?;
        Ok((read.state, read.unreadable.or(read.unusable)))
    }

    /// Applies `change` to the current state and writes it back, holding the lock throughout so
    /// overlapping runs each see the other's changes. Unusable remembered values, reported by the
    /// load before, are dropped from the file without a second warning.
    pub fn update(&self, change: impl FnOnce(&mut State)) -> anyhow::Result<Option<String>> {
        Ok(self.update_and_read(change)?.1)
    }

    /// As [`StateFile::update`], returning the state as written (with other runs' changes).
    pub fn update_and_read(
        &self,
        change: impl FnOnce(&mut State),
    ) -> anyhow::Result<(State, Option<String>)> {
        let _lock = self.lock()?;
        let Read {
            mut state,
            unreadable: warning,
            ..
        } = self.read()?;
        change(&mut state);
        state.version = VERSION;
        let bytes = serde_json::to_vec_pretty(&state)?;
        // NamedTempFile is created 0600, and rename keeps the mode.
        crate::oci::layout::write_atomically(
            &self.path,
            &bytes,
            crate::oci::layout::FileAccess::Private,
        )
        .with_context(|| format!("cannot save the state file {}", self.path.display()))?;
        Ok((state, warning))
    }

    fn read(&self) -> anyhow::Result<Read> {
        let bytes = match fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Read::fresh(None));
            }
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("cannot read the state file {}", self.path.display()))
            }
        };
        let parsed = serde_json::from_slice::<Value>(&bytes).and_then(|mut value| {
            let unusable = drop_unusable(&mut value);
            Ok((State::deserialize(value)?, unusable))
        });
        let problem = match parsed {
            Ok((state, unusable)) if state.version <= VERSION => {
                let unusable = (!unusable.is_empty()).then(|| {
                    format!(
                        "the state file {} holds values this spin-aks cannot use, ignored: {}; the next push (or --key-vault) remembers new ones",
                        self.path.display(),
                        unusable.join("; ")
                    )
                });
                return Ok(Read {
                    state,
                    unreadable: None,
                    unusable,
                });
            }
            Ok((state, _)) => format!(
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
        Ok(Read::fresh(Some(format!(
            "the state file {} was unreadable: {problem}; kept it as {} and started a new one",
            self.path.display(),
            backup.display()
        ))))
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

/// What reading the file found: the state, and the warnings to give about it.
struct Read {
    state: State,
    /// The file was moved aside and the state started anew.
    unreadable: Option<String>,
    /// Remembered values left out of the state.
    unusable: Option<String>,
}

impl Read {
    fn fresh(unreadable: Option<String>) -> Self {
        Read {
            state: fresh(),
            unreadable,
            unusable: None,
        }
    }
}

/// Whether a field's JSON value parses into its type; if not, why.
type Check = fn(&Value) -> Result<(), serde_json::Error>;

/// The app fields parsed into types at load, each with its check.
const TYPED_FIELDS: [(&str, Check); 3] = [
    ("last_image", usable::<RegistryRef>),
    ("last_pinned", usable::<RegistryRef>),
    ("key_vault", usable::<Vault>),
];

fn usable<T: DeserializeOwned>(value: &Value) -> Result<(), serde_json::Error> {
    T::deserialize(value).map(drop)
}

/// Removes the typed app fields whose value this build cannot use (a hand edit, an older
/// build's looser rule), one line each naming the app, the field and why: one bad value must not
/// cost the whole file, nor fail every command that never needs it.
fn drop_unusable(state: &mut Value) -> Vec<String> {
    let mut unusable = Vec::new();
    let Some(apps) = state.get_mut("apps").and_then(Value::as_object_mut) else {
        return unusable;
    };
    for (key, app) in apps {
        let Some(app) = app.as_object_mut() else {
            continue;
        };
        for (field, check) in TYPED_FIELDS {
            let value = app.get(field).filter(|value| !value.is_null());
            if let Some(Err(why)) = value.map(check) {
                app.remove(field);
                unusable.push(format!("`{field}` of {key} ({why})"));
            }
        }
    }
    unusable
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
    let kind = match file_type {
        t if t.is_file() => return Ok(()),
        t if t.is_symlink() => match fs::read_link(path) {
            Ok(target) => format!("a symbolic link (to {})", target.display()),
            Err(_) => "a symbolic link".to_string(),
        },
        t => crate::file_kind::describe(t).to_string(),
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

    fn reference(s: &str) -> RegistryRef {
        RegistryRef::parse(s).unwrap()
    }

    #[test]
    fn updates_round_trip_and_the_file_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let file = StateFile::new(Some(&dir.path().join("nested/state"))).unwrap();
        file.update(|s| {
            s.apps
                .entry("/app/spin.toml".into())
                .or_default()
                .record_push(&reference("r.example/a:1"));
            s.last_registry = Some("r.example".into());
        })
        .unwrap();
        let (state, warning) = file.load().unwrap();
        assert_eq!(warning, None);
        assert_eq!(state.version, VERSION);
        assert_eq!(
            state.apps["/app/spin.toml"].last_image,
            Some(reference("r.example/a:1"))
        );
        let on_disk: Value = serde_json::from_slice(&fs::read(file.path()).unwrap()).unwrap();
        assert_eq!(
            on_disk["apps"]["/app/spin.toml"]["last_image"],
            "r.example/a:1"
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
        app.record_push(&reference("r.io/a:1"));
        app.record_push(&reference("r.io/b:1"));
        app.record_push(&reference("s.io/c:1"));
        assert_eq!(app.mount_source("r.io", "c"), Some("b"));
        assert_eq!(app.mount_source("r.io", "b"), Some("a"));
        assert_eq!(app.mount_source("s.io", "c"), None);
        assert_eq!(app.mount_source("t.io", "a"), None);
    }

    /// Typed fields are parsed at load: usable ones round-trip as the same strings; an unusable
    /// one is left out with one warning naming the file, the app, the field and the value, the
    /// rest of the file kept; the next update drops it from the file.
    #[test]
    fn unusable_remembered_values_are_reported_once_and_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state");
        let pinned = format!("r.example/hello@sha256:{}", "a".repeat(64));
        let good = serde_json::json!({
            "last_image": "r.example/hello:1",
            "last_pinned": pinned,
            "key_vault": "https://shop-kv.vault.azure.net/",
            "pushed": {},
        });
        let bad = serde_json::json!({
            "last_image": "Not/A/Reference",
            "last_pinned": 7,
            "key_vault": "https://example.com/",
            "pushed": {"r.example": ["hello"]},
        });
        let file_json = serde_json::json!({"version": 1, "apps": {"/good": good, "/bad": bad}, "last_registry": "r.example"});
        fs::write(&path, serde_json::to_vec(&file_json).unwrap()).unwrap();
        let file = StateFile::new(Some(&path)).unwrap();

        let (state, warning) = file.load().unwrap();
        let warning = warning.expect("the unusable values are reported");
        for expected in [
            path.display().to_string(),
            "`last_image` of /bad".into(),
            "`Not/A/Reference` is not an image reference".into(),
            "`last_pinned` of /bad".into(),
            "integer `7`".into(),
            "`key_vault` of /bad".into(),
            "`https://example.com/` is not a Key Vault URL".into(),
        ] {
            assert!(warning.contains(&expected), "{expected}: {warning}");
        }
        assert!(!warning.contains("/good"), "{warning}");
        let bad_app = &state.apps["/bad"];
        assert_eq!(
            (
                &bad_app.last_image,
                &bad_app.last_pinned,
                &bad_app.key_vault
            ),
            (&None, &None, &None)
        );
        assert_eq!(bad_app.pushed["r.example"], ["hello"]);
        assert_eq!(state.last_registry.as_deref(), Some("r.example"));
        let good_app = &state.apps["/good"];
        assert_eq!(good_app.last_pinned, Some(reference(&pinned)));
        assert_eq!(good_app.key_vault.as_ref().unwrap().name, "shop-kv");

        assert_eq!(file.update(|_| {}).unwrap(), None, "not reported twice");
        assert_eq!(file.load().unwrap().1, None);
        let on_disk: Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        assert_eq!(on_disk["apps"]["/good"], good);
        assert_eq!(
            on_disk["apps"]["/bad"],
            serde_json::json!({"pushed": {"r.example": ["hello"]}})
        );
    }
}
