//! `spin-aks push`: get a layout (build, `--from-layout` or `--from-archive`), pick the reference
//! (argument, state file, prompt), resolve credentials, push, remember, report.

use std::io::IsTerminal;
use std::path::Path;

use super::build::{self, BuildReport};
use crate::azure::arm::Arm;
use crate::azure::choose::{self, Mode};
use crate::cli::{GlobalArgs, PushArgs};
use crate::kube::objects;
use crate::oci::media_types::REF_NAME_ANNOTATION;
use crate::oci::reference::RegistryRef;
use crate::oci::{archive, Layout};
use crate::output::Output;
use crate::prompt;
use crate::registry::{self, auth, PushOptions, PushReport, RegistryClient, TransportOptions};
use crate::state::{State, StateFile};

pub async fn run(global: &GlobalArgs, args: &PushArgs, out: &Output) -> anyhow::Result<()> {
    let pushed = push(global, args, out).await?;
    let report = &pushed.report;
    let summary = format!("pushed {}\n{}", report.reference, report.pinned);
    out.report(report, summary)
}

/// What the push step did: the build it ran (if any) and the push.
pub struct Pushed {
    pub build: Option<BuildReport>,
    pub report: PushReport,
}

/// The push step (also `up`'s): a layout from a build, `--from-layout` or `--from-archive`, pushed
/// to the argument's, the remembered or the prompted reference, and remembered pinned by digest.
pub async fn push(global: &GlobalArgs, args: &PushArgs, out: &Output) -> anyhow::Result<Pushed> {
    let mut build_report = None;
    // Keeps an unpacked archive alive until the push is done.
    let mut _unpacked = None;
    let mut app_name = None;
    let (app_key, layout) = match (&args.from_layout, &args.from_archive) {
        (Some(dir), _) => (source_key(global, dir)?, Layout::open(dir)?),
        (None, Some(file)) => {
            let dir = crate::interrupt::temp_dir()?;
            let layout = archive::unpack(file, dir.path())?;
            _unpacked = Some(dir);
            (source_key(global, file)?, layout)
        }
        (None, None) => {
            let built = build::build_image(global, &args.image, None, out).await?;
            build_report = Some(built.report(args.image.format));
            app_name = Some(objects::dns_name(&built.app.name));
            (canonical(&built.app.manifest_path)?, built.layout)
        }
    };

    let state_file = StateFile::new(global.state_file.as_deref())?;
    let (state, warning) = state_file.load()?;
    if let Some(warning) = warning {
        out.warn(warning);
    }
    let app_state = state.apps.get(&app_key).cloned().unwrap_or_default();
    let mut target = match &args.reference {
        Some(reference) => RegistryRef::parse(reference)?,
        None => match &app_state.last_image {
            Some(last) => {
                out.info(format!("pushing to {last}, this app's last reference"));
                last.clone()
            }
            None => match app_name {
                Some(name) => default_reference(global, &state, &name, out).await?,
                None => prompt_reference(global)?,
            },
        },
    };
    // Remembered as given: a tag left out stays out, so the next push takes the app's version then.
    let remembered = target.without_digest();
    let (descriptor, _) = layout.image(None)?;
    if let Some(pinned) = target.digest() {
        if *pinned != descriptor.digest {
            return Err(crate::bad_input!(
                "the reference `{target}` pins {pinned} but the image to push is {}; drop the `@digest` or push the matching image",
                descriptor.digest
            ));
        }
    } else if target.tag().is_none() {
        let annotated = descriptor.annotations.get(REF_NAME_ANNOTATION);
        target = annotated
            .and_then(|tag| target.with_tag(tag).ok())
            .unwrap_or(target.with_tag("latest")?);
    }

    let transport = TransportOptions {
        plain_http: args.plain_http,
        ca_file: args.ca_file.clone(),
        max_connections: usize::from(args.jobs),
    };
    let http = registry::client::http_client(&transport)?;
    let credential = auth::resolve_credential(args.auth, target.registry(), &http).await?;
    let mount_from = app_state
        .mount_source(target.registry(), target.repository())
        .map(str::to_string);
    let mut client = RegistryClient::new(
        &target,
        credential,
        mount_from.as_slice(),
        http,
        &transport,
        registry::retry::RetryPolicy::with_budget(args.retry_budget),
    )?;
    let options = PushOptions {
        jobs: usize::from(args.jobs),
        mount_from,
        progress: !out.quiet && std::io::stderr().is_terminal(),
    };
    let report = registry::push_layout(&layout, &target, &mut client, &options).await?;

    let warning = state_file.update(|state| {
        let app = state.apps.entry(app_key).or_default();
        app.record_push(&remembered);
        app.last_pinned = Some(report.pinned.clone());
        state.last_registry = Some(target.registry().to_string());
    })?;
    if let Some(warning) = warning {
        out.warn(warning);
    }

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
    Ok(Pushed {
        build: build_report,
        report,
    })
}

/// The state-file key for a push from a layout or archive: the app's spin.toml when there is
/// one at `--from`, else the layout or archive itself.
fn source_key(global: &GlobalArgs, source: &Path) -> anyhow::Result<String> {
    let manifest = if global.from.is_dir() {
        global.from.join("spin.toml")
    } else {
        global.from.clone()
    };
    if manifest.is_file() {
        canonical(&manifest)
    } else {
        canonical(source)
    }
}

pub(super) fn canonical(path: &Path) -> anyhow::Result<String> {
    let path = std::fs::canonicalize(path)
        .map_err(|e| crate::bad_input!("cannot find {}: {e}", path.display()))?;
    Ok(path.to_string_lossy().into_owned())
}

/// A first push with no reference: `<registry>/<app>` on the last registry chosen, else on an ACR
/// of the chosen cluster's (or `AZURE_SUBSCRIPTION_ID`'s) subscription, picked from ARM; else asked.
async fn default_reference(
    global: &GlobalArgs,
    state: &State,
    app: &str,
    out: &Output,
) -> anyhow::Result<RegistryRef> {
    let subscription = std::env::var("AZURE_SUBSCRIPTION_ID")
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| state.last_cluster.as_ref().map(|c| c.subscription.clone()));
    let registry = match (&state.last_registry, subscription) {
        (Some(registry), _) => registry.clone(),
        (None, Some(subscription)) => {
            let arm = Arm::from_env()?;
            let mode = Mode::detect(global.yes);
            let flag = "a reference (`spin-aks push <registry>/<repository>[:tag]`) or `spin-aks cluster use --registry NAME`";
            choose::resolve_registry(&arm, &subscription, None, state, mode, flag)
                .await?
                .properties
                .login_server
        }
        (None, None) => return prompt_reference(global),
    };
    let reference = RegistryRef::parse(&format!("{registry}/{app}"))?;
    out.info(format!(
        "pushing to {reference} (pass a reference to choose another)"
    ));
    Ok(reference)
}

/// Asks for the reference on a terminal; never under `-y` or without one.
fn prompt_reference(global: &GlobalArgs) -> anyhow::Result<RegistryRef> {
    if !prompt::can_ask(global.yes) {
        return Err(crate::bad_input!(
            "no image reference given and none remembered for this app; pass one, e.g. `spin-aks push myacr.azurecr.io/hello:1.0.0`"
        ));
    }
    prompt::input(
        "Push to which reference (registry/repository[:tag])",
        None,
        |answer| RegistryRef::parse(answer).map_err(|e| e.to_string()),
    )
}

fn human_bytes(bytes: u64) -> String {
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
