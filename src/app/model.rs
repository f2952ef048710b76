//! The typed Spin application: what every later step (image assembly, manifests, apply) reads.
//! Built once from spin.toml by `app::load`; plain data, no I/O.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::oci::Digest;

/// A Spin application, as declared in its manifest (v1 manifests are converted to this shape).
#[derive(Clone, Debug, PartialEq)]
pub struct App {
    /// The directory holding spin.toml; every relative path is resolved against it.
    pub dir: PathBuf,
    /// The manifest file itself.
    pub manifest_path: PathBuf,
    /// The manifest as a version 2 TOML document (v1 converted), for formats that embed it.
    pub manifest: toml::Table,
    pub name: String,
    pub version: Option<String>,
    pub description: Option<String>,
    pub authors: Vec<String>,
    /// Application-level trigger settings, `[application.trigger.<type>]`.
    pub trigger_settings: BTreeMap<String, serde_json::Value>,
    pub variables: BTreeMap<String, Variable>,
    pub triggers: Vec<Trigger>,
    pub components: Vec<Component>,
}

impl App {
    /// The tag an image of this app gets when none is given: its version, else `latest`.
    pub fn default_tag(&self) -> &str {
        self.version.as_deref().unwrap_or("latest")
    }

    /// [`Self::default_tag`] made a valid OCI tag: characters a tag cannot hold become `_`.
    pub fn image_tag(&self) -> String {
        let mut tag: String = self
            .default_tag()
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                    c
                } else {
                    '_'
                }
            })
            .take(128)
            .collect();
        if tag.starts_with(['.', '-']) {
            tag.insert(0, '_');
        }
        tag
    }

    pub fn component(&self, id: &str) -> Option<&Component> {
        self.components.iter().find(|c| c.id == id)
    }

    /// The distinct trigger types, in first-use order.
    pub fn trigger_types(&self) -> Vec<&str> {
        let mut types: Vec<&str> = Vec::new();
        for trigger in &self.triggers {
            if !types.contains(&trigger.trigger_type.as_str()) {
                types.push(&trigger.trigger_type);
            }
        }
        types
    }
}

/// An application variable, `[variables]`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Variable {
    pub default: Option<String>,
    pub required: bool,
    pub secret: bool,
    pub description: Option<String>,
}

/// One trigger, bound to one component.
#[derive(Clone, Debug, PartialEq)]
pub struct Trigger {
    pub id: String,
    /// `http`, `redis`, `sqs`, `mqtt`, `command`, `cron`, ...
    pub trigger_type: String,
    /// The id of the component it invokes; `None` for an http trigger answering with its
    /// `static_response` setting instead.
    pub component: Option<String>,
    /// Trigger-specific settings (route, channel, executor, ...), without `component` and `id`.
    pub settings: serde_json::Map<String, serde_json::Value>,
}

/// One component, `[component.<id>]`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Component {
    pub id: String,
    pub description: Option<String>,
    pub source: Source,
    pub files: Vec<FileMount>,
    pub exclude_files: Vec<String>,
    pub allowed_outbound_hosts: Vec<String>,
    pub key_value_stores: Vec<String>,
    pub sqlite_databases: Vec<String>,
    pub ai_models: Vec<String>,
    pub environment: BTreeMap<String, String>,
    /// Component variables, `[component.<id>.variables]` (templates such as `"{{ name }}"`).
    pub variables: BTreeMap<String, String>,
    pub build: Option<BuildConfig>,
    /// `[component.<id>.dependencies]`, in the order Spin's locked app lists them.
    pub dependencies: Vec<Dependency>,
}

/// One component dependency: the import it satisfies, the wasm that does, and what it inherits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dependency {
    /// The dependency name as Spin writes it (`my:pkg/iface@1.0.0`, or a plain `name`).
    pub name: String,
    pub source: DependencySource,
    /// The export of the dependency to use, when not the import's own name.
    pub export: Option<String>,
    pub inherit: Inherit,
}

/// Where a dependency's wasm comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DependencySource {
    /// A file, relative to the app directory (Spin lets it lie outside).
    Local(PathBuf),
    /// A download, pinned by digest.
    Remote { url: String, digest: Digest },
    /// Another component of the app, whose source is composed in.
    Component(String),
}

/// Which of the parent component's capabilities a dependency may use.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Inherit {
    /// None: Spin composes a deny-all adapter in front of it.
    #[default]
    Nothing,
    All,
    /// Only the named capability sets (`allowed_outbound_hosts`, `key_value_stores`, ...).
    Only(Vec<String>),
}

/// Where a component's wasm comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// A file relative to the app directory (checked to stay inside it).
    Local(PathBuf),
    /// A download, pinned by digest.
    Remote { url: String, digest: Digest },
}

impl Default for Source {
    fn default() -> Self {
        Source::Local(PathBuf::new())
    }
}

/// One entry of a component's `files`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileMount {
    /// A glob (or a plain file or directory path) relative to the app directory; files keep their
    /// relative path in the guest.
    Pattern(String),
    /// A file or directory placed at a guest path.
    Placement {
        source: PathBuf,
        destination: String,
    },
}

/// `[component.<id>.build]`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BuildConfig {
    pub command: String,
    pub workdir: Option<PathBuf>,
    pub watch: Vec<String>,
}

/// A file a component sees at `guest_path`, read from `source` on disk.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct MountedFile {
    /// Absolute guest path with forward slashes, e.g. `/static/index.html`.
    pub guest_path: String,
    pub source: PathBuf,
}

/// A component whose inputs were found on disk: the wasm to ship and every mounted file, sorted.
#[derive(Clone, Debug, PartialEq)]
pub struct ResolvedComponent {
    pub id: String,
    pub wasm: PathBuf,
    pub files: Vec<MountedFile>,
    /// The wasm of each of the component's dependencies, in the same order.
    pub dependencies: Vec<PathBuf>,
}

/// The app plus its resolved inputs; what image assembly consumes.
#[derive(Clone, Debug, PartialEq)]
pub struct ResolvedApp {
    pub app: App,
    pub components: Vec<ResolvedComponent>,
}

impl ResolvedApp {
    pub fn dir(&self) -> &Path {
        &self.app.dir
    }
}
