//! One round of `dev`: the changed components' build commands, then `up`'s own steps (the image
//! with unchanged layers reused, only new blobs pushed, apply, rollout), each step timed.

use std::path::Path;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::app::spin_build;
use crate::context::target::Target;
use crate::context::AppContext;
use crate::deploy::{self, Settings};
use crate::oci::reference::ImageRef;
use crate::output::Output;
use crate::push::{self, PushSettings};

/// What a round runs with, the same every round.
pub struct Steps<'a> {
    pub from: &'a Path,
    pub push: &'a PushSettings,
    pub deploy: &'a Settings,
    pub yes: bool,
    pub out: &'a Output,
}

/// Why a round ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RoundCause {
    /// The first deploy, when `dev` starts.
    Start,
    /// Watched files changed.
    Change,
    /// A key on the terminal or SIGUSR1.
    Forced,
}

/// One round asked for.
pub struct Round {
    pub number: usize,
    pub trigger: RoundCause,
    /// The watcher's first event (or the key, the signal, the start): the round's clock.
    pub started: Instant,
    /// How long the changes were gathered before the round began.
    pub debounce: Duration,
    pub changed: Vec<String>,
    /// The components whose build command runs, in manifest order.
    pub rebuild: Vec<String>,
}

/// Seconds each step took; `total` runs from the first change to the new digest ready.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Seconds {
    pub debounce: f64,
    pub build_command: f64,
    pub image: f64,
    pub push: f64,
    pub apply: f64,
    pub rollout: f64,
    pub total: f64,
}

/// One line of `dev`: what a round did (the `--output json` line, schema `dev`).
#[derive(Debug, Serialize)]
pub struct RoundReport {
    pub round: usize,
    pub trigger: RoundCause,
    pub changed: Vec<String>,
    pub built: Vec<String>,
    pub ok: bool,
    /// The image digest the round pushed (ready when `ok`).
    pub digest: Option<String>,
    pub blobs_uploaded: usize,
    pub blobs_skipped: usize,
    pub bytes_uploaded: u64,
    pub seconds: Seconds,
    /// The step that failed: `build_command`, `publish` or `deploy`.
    pub failed_step: Option<&'static str>,
    pub error: Option<String>,
    /// The image that runs after the round: the new one, else the last good one.
    pub running: Option<String>,
    /// A failed rollout re-applied the last good image.
    pub rolled_back: bool,
}

/// Runs `round`; on success `last_good` becomes the new image. The error is the failure's own
/// (its exit code kept) for a caller that stops on it; the report says it too.
pub async fn run(
    ctx: &mut AppContext,
    steps: &Steps<'_>,
    round: Round,
    last_good: &mut Option<ImageRef>,
) -> (RoundReport, Option<anyhow::Error>) {
    let mut report = RoundReport {
        round: round.number,
        trigger: round.trigger,
        changed: round.changed,
        built: Vec::new(),
        ok: false,
        digest: None,
        blobs_uploaded: 0,
        blobs_skipped: 0,
        bytes_uploaded: 0,
        seconds: Seconds {
            debounce: round.debounce.as_secs_f64(),
            ..Seconds::default()
        },
        failed_step: None,
        error: None,
        running: last_good.as_ref().map(ToString::to_string),
        rolled_back: false,
    };
    let result = steps_of(ctx, steps, &round.rebuild, &mut report, last_good).await;
    report.seconds.total = round.started.elapsed().as_secs_f64();
    match result {
        Ok(()) => {
            report.ok = true;
            (report, None)
        }
        Err((step, error)) => {
            report.failed_step = Some(step);
            report.error = Some(format!("{error:#}"));
            if step == "deploy" {
                report.rolled_back = roll_back(ctx, steps, last_good).await;
            }
            (report, Some(error))
        }
    }
}

type Failed = (&'static str, anyhow::Error);

async fn steps_of(
    ctx: &mut AppContext,
    steps: &Steps<'_>,
    rebuild: &[String],
    report: &mut RoundReport,
    last_good: &mut Option<ImageRef>,
) -> Result<(), Failed> {
    let clock = Instant::now();
    for id in rebuild {
        let Some(component) = ctx.app.component(id) else {
            continue;
        };
        spin_build::run_component_build(&ctx.app, component)
            .await
            .map_err(|e| ("build_command", e))?;
        report.built.push(id.clone());
    }
    report.seconds.build_command = clock.elapsed().as_secs_f64();
    let clock = Instant::now();
    let (store, app) = (&mut ctx.store, Some(ctx.app.clone()));
    let pushed = push::push_image(store, app, steps.from, steps.push, steps.yes, steps.out)
        .await
        .map_err(|e| ("publish", e))?;
    report.seconds.image = pushed.build_time.as_secs_f64();
    report.seconds.push = (clock.elapsed() - pushed.build_time).as_secs_f64();
    report.digest = Some(pushed.report.digest.to_string());
    report.blobs_uploaded = pushed.report.blobs_uploaded;
    report.blobs_skipped = pushed.report.blobs_skipped + pushed.report.blobs_mounted;
    report.bytes_uploaded = pushed.report.bytes_uploaded;
    let image = ImageRef::from(pushed.report.pinned.clone());
    let clock = Instant::now();
    let applied = apply(ctx, steps, &image).await.map_err(|e| ("deploy", e))?;
    let rollout = applied.rollout.as_ref().map_or(0.0, |r| r.seconds);
    report.seconds.rollout = rollout;
    report.seconds.apply = (clock.elapsed().as_secs_f64() - rollout).max(0.0);
    report.running = Some(image.to_string());
    *last_good = Some(image);
    Ok(())
}

/// `up`'s deploy step: the target resolved as `up` resolves it, applied, the rollout waited for.
async fn apply(
    ctx: &mut AppContext,
    steps: &Steps<'_>,
    image: &ImageRef,
) -> anyhow::Result<deploy::DeployReport> {
    let target = Target::resolve(&steps.deploy.target, ctx.store.state(), steps.yes).await?;
    deploy::deploy(ctx, target, steps.deploy, Some(image.clone()), steps.out).await
}

/// After a failed rollout, applies the last good image again so the app's objects name what
/// runs; whether that worked.
async fn roll_back(ctx: &mut AppContext, steps: &Steps<'_>, last_good: &Option<ImageRef>) -> bool {
    let Some(image) = last_good else {
        return false;
    };
    match apply(ctx, steps, image).await {
        Ok(_) => true,
        Err(e) => {
            steps.out.warn(format!(
                "could not re-apply the last good image {image}: {e:#}"
            ));
            false
        }
    }
}

impl RoundReport {
    /// The text line: what changed, the digest, the time to ready and its split; or why not.
    pub fn line(&self) -> String {
        let what = match self.trigger {
            RoundCause::Start => "first deploy".to_string(),
            RoundCause::Forced => "forced".to_string(),
            RoundCause::Change if self.changed.len() > 3 => format!(
                "{} and {} more changed",
                self.changed[..3].join(", "),
                self.changed.len() - 3
            ),
            RoundCause::Change => format!("{} changed", self.changed.join(", ")),
        };
        let s = &self.seconds;
        if self.ok {
            return format!(
                "round {} ({what}): {} ready {:.2}s after the change (build command {:.2}s, image {:.2}s, push {:.2}s: {} new blob(s), apply {:.2}s, rollout {:.2}s)",
                self.round,
                self.digest.as_deref().unwrap_or_default(),
                s.total,
                s.build_command,
                s.image,
                s.push,
                self.blobs_uploaded,
                s.apply,
                s.rollout
            );
        }
        let running = match (&self.running, self.rolled_back) {
            (Some(image), true) => format!("re-applied {image}, the last good version"),
            (Some(image), false) => format!("{image} (the last good version) keeps running"),
            (None, _) => "nothing was deployed yet".to_string(),
        };
        format!(
            "round {} ({what}): {} failed: {}; {running}; waiting for the next change",
            self.round,
            self.failed_step.unwrap_or("round").replace('_', " "),
            self.error.as_deref().unwrap_or_default()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(ok: bool) -> RoundReport {
        RoundReport {
            round: 4,
            trigger: RoundCause::Change,
            changed: vec!["static/index.html".into()],
            built: Vec::new(),
            ok,
            digest: Some("sha256:ab".into()),
            blobs_uploaded: 2,
            blobs_skipped: 1,
            bytes_uploaded: 10,
            seconds: Seconds {
                total: 0.5,
                rollout: 0.25,
                ..Seconds::default()
            },
            failed_step: (!ok).then_some("build_command"),
            error: (!ok).then(|| "the build command of component `api` failed".into()),
            running: Some("r/app@sha256:aa".into()),
            rolled_back: false,
        }
    }

    #[test]
    fn the_line_says_what_changed_the_digest_and_the_split_or_why_not() {
        let line = report(true).line();
        assert!(
            line.starts_with(
                "round 4 (static/index.html changed): sha256:ab ready 0.50s after the change"
            ),
            "{line}"
        );
        assert!(
            line.contains("push 0.00s: 2 new blob(s)") && line.contains("rollout 0.25s"),
            "{line}"
        );
        let line = report(false).line();
        assert!(
            line.contains("build command failed: the build command of component `api` failed"),
            "{line}"
        );
        assert!(line.contains("r/app@sha256:aa (the last good version) keeps running; waiting for the next change"), "{line}");
    }
}
