//! The publish step, as ko's publish: an image (built now, or a layout or oci-archive) pushed to
//! the chosen reference with streamed, resumable uploads, and remembered pinned by digest.

mod carried;

pub use carried::{images as image_and_carried, PREFIX as CARRIED_PREFIX};
mod reference;

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::app::App;
use crate::attest::signing::{self, Signing};
use crate::build::{build_image, BuildReport, BuildSettings};
use crate::context::{state_key, Store};
use crate::oci::reference::RegistryRef;
use crate::oci::{archive, Layout};
use crate::output::Output;
use crate::registry::auth::AuthMode;
use crate::registry::{self, PushOptions, PushReport, RegistryClient, TransportOptions};
use crate::workload::objects;

/// Where the image to push comes from.
#[derive(Clone, Debug)]
pub enum ImageSource {
    /// Built from the app now.
    Build(BuildSettings),
    /// An OCI image layout directory.
    Layout(PathBuf),
    /// An oci-archive, as `export` writes.
    Archive(PathBuf),
}

/// The push flags, validated (made by `cli`: `PushArgs::settings`).
#[derive(Clone, Debug)]
pub struct PushSettings {
    pub source: ImageSource,
    /// The reference given, else the app's last one, else a default or a prompt.
    pub reference: Option<RegistryRef>,
    pub registry: RegistrySettings,
    /// Whether and with what to sign the image before it is pushed.
    pub sign: Signing,
}

/// How to talk to a registry (push and publish share these flags).
#[derive(Clone, Debug)]
pub struct RegistrySettings {
    pub transport: TransportOptions,
    pub jobs: usize,
    /// How long each blob (and the manifest) may keep retrying transient failures.
    pub retry_budget: Duration,
    pub auth: AuthMode,
}

/// What the push step did: the build it ran (if any) and the push.
pub struct Pushed {
    pub build: Option<BuildReport>,
    pub report: PushReport,
    /// How long building the image took (zero when it came from a layout or archive).
    pub build_time: Duration,
}

/// Gets the image (builds `app`, loaded from `from` when not given, or opens the layout or
/// archive), pushes it and remembers the push for the app (or for the layout or archive when
/// `from` holds no app).
pub async fn push_image(
    store: &mut Store,
    app: Option<App>,
    from: &Path,
    settings: &PushSettings,
    yes: bool,
    out: &Output,
) -> anyhow::Result<Pushed> {
    // The app is loaded and the signing key read before anything is built, unpacked or sent.
    let (key, source) = match &settings.source {
        ImageSource::Layout(dir) => (source_key(from, dir)?, Source::Layout(dir)),
        ImageSource::Archive(file) => (source_key(from, file)?, Source::Archive(file)),
        ImageSource::Build(image) => {
            let app = match app {
                Some(app) => app,
                None => crate::app::load(from)?,
            };
            (
                state_key(&app.manifest_path)?,
                Source::Build(image, Box::new(app)),
            )
        }
    };
    let signer = ImageSigner::prepare(store, &key, &settings.sign).await?;
    // Keeps an unpacked archive alive until the push is done.
    let mut _unpacked = None;
    let started = std::time::Instant::now();
    let (layout, build, app_name) = match source {
        Source::Layout(dir) => (Layout::open(dir)?, None, None),
        Source::Archive(file) => {
            let dir = crate::interrupt::temp_dir()?;
            let layout = archive::unpack(file, dir.path())?;
            _unpacked = Some(dir);
            (layout, None, None)
        }
        Source::Build(image, app) => {
            let built = build_image(*app, image, None, out).await?;
            crate::attest::attach(&built, image, out)?;
            let report = built.report(image.format);
            let name = objects::dns_name(&built.app.name);
            (built.layout, Some(report), Some(name))
        }
    };
    let build_time = build.as_ref().map_or(Duration::ZERO, |_| started.elapsed());
    let reference = match &settings.reference {
        Some(given) => given.clone(),
        None => {
            reference::remembered_or_default(store, &key, app_name.as_deref(), yes, out).await?
        }
    };
    let (image, deploy_tags) = carried::images(&layout)?;
    let (descriptor, _) = layout.image(image.as_deref())?;
    signer.sign(store, &key, &layout, &descriptor, out).await?;
    let report = push(
        store,
        &key,
        &layout,
        image.as_deref(),
        reference,
        settings,
        out,
    )
    .await?;
    let carried = carried::push(&layout, &deploy_tags, &report, &settings.registry, out).await?;
    if !carried.is_empty() {
        store.update(out, |state| {
            let app = state.apps.entry(key.clone()).or_default();
            carried::remember(app, &carried, &report);
        })?;
    }
    Ok(Pushed {
        build,
        report,
        build_time,
    })
}

/// The image source with what it needs read: the app to build, loaded.
enum Source<'a> {
    Layout(&'a Path),
    Archive(&'a Path),
    Build(&'a BuildSettings, Box<App>),
}

/// The signer a push uses, made before anything is built or sent (a key that is no key, a chain
/// that does not match, a vault that refuses: refused first), and what to remember after.
pub struct ImageSigner {
    signer: Option<Box<dyn crate::attest::notation::Signer>>,
    remember: Option<crate::state::SigningKeyState>,
}

impl ImageSigner {
    /// The key `choice` gives, else the one remembered for `key`, loaded (or reached) now.
    pub async fn prepare(
        store: &Store,
        key: &str,
        choice: &Signing,
    ) -> anyhow::Result<ImageSigner> {
        let (settings, remember) = choice.resolve(store.app(key).signing.as_ref())?;
        let signer = match &settings {
            Some(settings) => Some(signing::signer(settings).await?),
            None => None,
        };
        Ok(ImageSigner { signer, remember })
    }

    /// Signs the layout's `image` (and its provenance), then remembers the key for `key`.
    pub async fn sign(
        &self,
        store: &mut Store,
        key: &str,
        layout: &Layout,
        image: &crate::oci::Descriptor,
        out: &Output,
    ) -> anyhow::Result<()> {
        if let Some(signer) = &self.signer {
            let made = signing::sign_layout(layout, image, signer.as_ref()).await?;
            if !made.is_empty() {
                out.info(format!(
                    "signed {} manifest(s) of {}",
                    made.len(),
                    image.digest
                ));
            }
        }
        if store.app(key).signing != self.remember {
            let remember = self.remember.clone();
            store.update(out, |state| {
                state.apps.entry(key.to_string()).or_default().signing = remember;
            })?;
        }
        Ok(())
    }
}

/// Pushes the layout's image to `target` (its tag, when none is given, the image's own or
/// `latest`) and remembers it.
async fn push(
    store: &mut Store,
    key: &str,
    layout: &Layout,
    image: Option<&str>,
    mut target: RegistryRef,
    settings: &PushSettings,
    out: &Output,
) -> anyhow::Result<PushReport> {
    // Remembered as given: a tag left out stays out, so the next push takes the app's version then.
    let remembered = target.without_digest();
    let (descriptor, _) = layout.image(image)?;
    target = reference::with_image_tag(target, &descriptor)?;
    let mount_from = (store.app(key))
        .mount_source(target.registry(), target.repository())
        .map(str::to_string);
    let (mut client, options) =
        registry_client(&target, &settings.registry, mount_from, out).await?;
    let report = registry::push_layout(layout, image, &target, &mut client, &options).await?;
    store.update(out, |state| {
        let app = state.apps.entry(key.to_string()).or_default();
        app.record_push(&remembered);
        app.last_pinned = Some(report.pinned.clone());
        state.last_registry = Some(target.registry().to_string());
    })?;
    let manifest_note = if report.manifest_put {
        ""
    } else {
        ", manifest already there"
    };
    out.info(format!(
        "{} blobs uploaded ({}), {} already present, {} mounted, {} retries{manifest_note}",
        report.blobs_uploaded,
        human_bytes(report.bytes_uploaded),
        report.blobs_skipped,
        report.blobs_mounted,
        report.retries
    ));
    Ok(report)
}

/// A client for `target`'s repository with the credential the settings ask for, and how to push.
pub(crate) async fn registry_client(
    target: &RegistryRef,
    settings: &RegistrySettings,
    mount_from: Option<String>,
    out: &Output,
) -> anyhow::Result<(RegistryClient, PushOptions)> {
    let connection = RegistryConnection::open(target.registry(), settings).await?;
    connection.client(target, mount_from, out)
}

/// What every client for one registry shares: the HTTP client (loading the system's CA
/// certificates once) and the credential found for the registry.
pub(crate) struct RegistryConnection<'a> {
    http: reqwest::Client,
    credential: registry::SourcedCredential,
    settings: &'a RegistrySettings,
}

impl<'a> RegistryConnection<'a> {
    pub(crate) async fn open(
        registry_host: &str,
        settings: &'a RegistrySettings,
    ) -> anyhow::Result<Self> {
        let http = registry::client::http_client(&settings.transport)?;
        let credential =
            registry::auth::resolve_credential(settings.auth, registry_host, &http).await?;
        Ok(RegistryConnection {
            http,
            credential,
            settings,
        })
    }

    /// A client for `target`'s repository (on this connection's registry), and how to push.
    pub(crate) fn client(
        &self,
        target: &RegistryRef,
        mount_from: Option<String>,
        out: &Output,
    ) -> anyhow::Result<(RegistryClient, PushOptions)> {
        let settings = self.settings;
        let client = RegistryClient::new(
            target,
            self.credential.clone(),
            mount_from.as_slice(),
            self.http.clone(),
            &settings.transport,
            crate::retry::RetryPolicy::with_budget(settings.retry_budget),
        )?;
        let options = PushOptions {
            jobs: settings.jobs,
            mount_from,
            progress: out.progress(),
        };
        Ok((client, options))
    }
}

/// The state-file key for a push from a layout or archive: the app's spin.toml when there is
/// one at `from`, else the layout or archive itself.
fn source_key(from: &Path, source: &Path) -> anyhow::Result<String> {
    let manifest = if from.is_dir() {
        from.join("spin.toml")
    } else {
        from.to_path_buf()
    };
    if manifest.is_file() {
        state_key(&manifest)
    } else {
        state_key(source)
    }
}

/// Bytes as B, KiB, MiB or GiB.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}
