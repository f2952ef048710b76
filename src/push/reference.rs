//! Which reference a push goes to when none is given: the app's last one, else `<registry>/<app>`
//! on the last registry or an ACR of the chosen subscription, else asked; and the tag it gets.

use crate::azure::arm::Arm;
use crate::context::choose::{self, Mode};
use crate::context::Store;
use crate::oci::media_types::REF_NAME_ANNOTATION;
use crate::oci::reference::RegistryRef;
use crate::oci::Descriptor;
use crate::output::Output;
use crate::prompt;

/// The app's last reference, else (for a built app named `app_name`) a default on a known
/// registry, else asked for on a terminal.
pub async fn remembered_or_default(
    store: &Store,
    key: &str,
    app_name: Option<&str>,
    yes: bool,
    out: &Output,
) -> anyhow::Result<RegistryRef> {
    match (&store.app(key).last_image, app_name) {
        (Some(last), _) => {
            out.info(format!("pushing to {last}, this app's last reference"));
            Ok(last.clone())
        }
        (None, Some(name)) => default_reference(store, name, yes, out).await,
        (None, None) => prompt_reference(yes),
    }
}

/// `target`, checked against the image to push: a pinned digest must be the image's; without a
/// tag, the image's own (its version) or `latest`.
pub fn with_image_tag(target: RegistryRef, image: &Descriptor) -> anyhow::Result<RegistryRef> {
    if let Some(pinned) = target.digest() {
        if *pinned != image.digest {
            return Err(crate::bad_input!(
                "the reference `{target}` pins {pinned} but the image to push is {}; drop the `@digest` or push the matching image",
                image.digest
            ));
        }
        return Ok(target);
    }
    if target.tag().is_some() {
        return Ok(target);
    }
    let annotated = image.annotations.get(REF_NAME_ANNOTATION);
    match annotated.and_then(|tag| target.with_tag(tag).ok()) {
        Some(tagged) => Ok(tagged),
        None => Ok(target.with_tag("latest")?),
    }
}

/// A first push with no reference: `<registry>/<app>` on the last registry chosen, else on an ACR
/// of the chosen cluster's (or `AZURE_SUBSCRIPTION_ID`'s) subscription, picked from ARM; else asked.
async fn default_reference(
    store: &Store,
    app: &str,
    yes: bool,
    out: &Output,
) -> anyhow::Result<RegistryRef> {
    let state = store.state();
    let subscription = std::env::var("AZURE_SUBSCRIPTION_ID")
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| state.last_cluster.as_ref().map(|c| c.subscription.clone()));
    let registry = match (&state.last_registry, subscription) {
        (Some(registry), _) => registry.clone(),
        (None, Some(subscription)) => {
            let arm = Arm::from_env()?;
            let flag = "a reference (`spin-aks push <registry>/<repository>[:tag]`) or `spin-aks cluster use --registry NAME`";
            choose::resolve_registry(&arm, &subscription, None, state, Mode::detect(yes), flag)
                .await?
                .properties
                .login_server
        }
        (None, None) => return prompt_reference(yes),
    };
    let reference = RegistryRef::parse(&format!("{registry}/{app}"))?;
    out.info(format!(
        "pushing to {reference} (pass a reference to choose another)"
    ));
    Ok(reference)
}

/// Asks for the reference on a terminal; never under `-y` or without one.
fn prompt_reference(yes: bool) -> anyhow::Result<RegistryRef> {
    if !prompt::can_ask(yes) {
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
