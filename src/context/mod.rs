//! What a command works on, loaded once: the app (its spin.toml) and what the state file
//! remembers; `remember_*` change the copy in memory and the file together.

pub mod choose;
pub mod target;

use std::path::Path;
use std::sync::LazyLock;

use crate::app::{self, App};
use crate::azure::vault::Vault;
use crate::oci::reference::ImageRef;
use crate::output::Output;
use crate::state::{AppState, DeployTarget, State, StateFile, WorkloadIdentity};
use crate::workload::objects;

/// The state file and its contents, read once; [`Store::update`] writes through to the file.
pub struct Store {
    file: StateFile,
    state: State,
}

impl Store {
    /// The state file at `path` (else the default one), read; a reset file is warned about.
    pub fn load(path: Option<&Path>, out: &Output) -> anyhow::Result<Store> {
        let file = StateFile::new(path)?;
        let (state, warning) = file.load()?;
        if let Some(warning) = warning {
            out.warn(warning);
        }
        Ok(Store { file, state })
    }

    pub fn state(&self) -> &State {
        &self.state
    }

    /// What the state remembers for the app under `key` (nothing when it never was).
    pub fn app(&self, key: &str) -> &AppState {
        static NOTHING: LazyLock<AppState> = LazyLock::new(AppState::default);
        self.state.apps.get(key).unwrap_or(&NOTHING)
    }

    /// Applies `change` to the file (re-read under its lock) and keeps the result in memory.
    pub fn update(&mut self, out: &Output, change: impl FnOnce(&mut State)) -> anyhow::Result<()> {
        let (state, warning) = self.file.update_and_read(change)?;
        if let Some(warning) = warning {
            out.warn(warning);
        }
        self.state = state;
        Ok(())
    }
}

/// The app a command works on and what is remembered for it.
pub struct AppContext {
    pub app: App,
    /// The app's name as Kubernetes objects carry it.
    pub name: String,
    /// The app's key in the state file: its canonical spin.toml path.
    pub key: String,
    pub store: Store,
}

impl AppContext {
    /// Loads the app at `from` (a spin.toml or its directory) and the state file.
    pub fn load(from: &Path, state_file: Option<&Path>, out: &Output) -> anyhow::Result<Self> {
        let app = app::load(from)?;
        let key = state_key(&app.manifest_path)?;
        let store = Store::load(state_file, out)?;
        let name = objects::dns_name(&app.name);
        Ok(AppContext {
            app,
            name,
            key,
            store,
        })
    }

    /// What the state file remembers for this app.
    pub fn remembered(&self) -> &AppState {
        self.store.app(&self.key)
    }

    /// Changes what is remembered for this app.
    pub fn remember(
        &mut self,
        out: &Output,
        change: impl FnOnce(&mut AppState),
    ) -> anyhow::Result<()> {
        let key = self.key.clone();
        self.store
            .update(out, |state| change(state.apps.entry(key).or_default()))
    }

    /// Where the app was applied, so `up` with no flags repeats it.
    pub fn remember_deploy(
        &mut self,
        context: &str,
        namespace: &str,
        out: &Output,
    ) -> anyhow::Result<()> {
        self.remember(out, |app| {
            app.last_deploy = Some(DeployTarget {
                context: context.to_string(),
                namespace: namespace.to_string(),
            });
        })
    }

    /// The workload identity `identity setup` made (ids only), and the vault it reads.
    pub fn remember_identity(
        &mut self,
        identity: WorkloadIdentity,
        vault: Option<&Vault>,
        out: &Output,
    ) -> anyhow::Result<()> {
        self.remember(out, |app| {
            app.identity = Some(identity);
            if let Some(vault) = vault {
                app.key_vault = Some(vault.clone());
            }
        })
    }

    /// `given` (`--key-vault`), else the vault remembered for this app; bad input when neither.
    pub fn vault(&self, given: Option<&Vault>) -> anyhow::Result<Vault> {
        self.vault_or(given).ok_or_else(|| {
            crate::bad_input!(
                "no Key Vault given and none remembered for {}; pass --key-vault https://<vault>.vault.azure.net/",
                self.app.manifest_path.display()
            )
        })
    }

    /// Remembers `vault` as the app's vault (no write when it already is).
    pub fn remember_vault(&mut self, vault: &Vault, out: &Output) -> anyhow::Result<()> {
        if self.remembered().key_vault.as_ref() == Some(vault) {
            return Ok(());
        }
        self.remember(out, |app| app.key_vault = Some(vault.clone()))
    }

    /// `given` (a `--key-vault` flag), else the vault remembered for this app.
    pub fn vault_or(&self, given: Option<&Vault>) -> Option<Vault> {
        self.remembered().vault_or(given)
    }
}

impl AppContext {
    /// The image this app was last pushed to (state file), else `<app name>:<version>`.
    pub fn default_image(&self) -> ImageRef {
        let app = &self.app;
        if let Some(image) = self.remembered().last_image.clone().map(ImageRef::from) {
            // Push tags an untagged reference with the app's version; so does the default here.
            if image.tag().is_none() && image.digest().is_none() {
                return image.with_tag(&app.image_tag()).unwrap_or(image);
            }
            return image;
        }
        let name = format!("{}:{}", objects::dns_name(&app.name), app.image_tag());
        ImageRef::parse(&name).expect("a DNS name and a valid tag form a reference")
    }
}

/// The state-file key of a file: its canonical path (bad input when it does not exist).
pub fn state_key(path: &Path) -> anyhow::Result<String> {
    let path = std::fs::canonicalize(path)
        .map_err(|e| crate::bad_input!("cannot find {}: {e}", path.display()))?;
    Ok(path.to_string_lossy().into_owned())
}
