//! `dev`: `up` once, then a round per change of the watched files (as `spin watch` watches them),
//! the app's logs streamed between rounds, until Ctrl-C leaves the app deployed (or deletes it).

mod round;
mod watch;

use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use self::round::{Round, RoundCause};
pub use self::round::{RoundReport, Steps};
pub use self::watch::Debounce;
use self::watch::{Batch, Watched, Watcher};
use crate::cluster::logs::{self, LogOptions};
use crate::context::target::{Cluster, Target};
use crate::context::AppContext;
use crate::deploy;
use crate::oci::reference::ImageRef;

/// The dev flags, validated (made by `cli`: `DevArgs::settings`).
#[derive(Clone, Copy, Debug)]
pub struct DevSettings {
    /// How long the files must be quiet after a change before a round starts.
    pub debounce: Debounce,
    /// Stream the app's logs between rounds.
    pub logs: bool,
    /// Delete what was applied when watching stops.
    pub delete_on_exit: bool,
}

/// Deploys the app, then rounds until Ctrl-C (or SIGTERM); `report` prints each round's line. A
/// failed first deploy ends `dev` with its error; later failures are reported and waited out.
pub async fn run(
    ctx: &mut AppContext,
    steps: &Steps<'_>,
    settings: &DevSettings,
    report: &dyn Fn(&RoundReport) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let out = steps.out;
    // The cluster is chosen and checked before anything is built or pushed, as by `up`.
    let target = Target::resolve(&steps.deploy.target, ctx.store.state(), steps.yes).await?;
    target.check(ctx.remembered()).await?;
    let mut stop = crate::interrupt::take_next();
    let mut forced = forced_rounds()?;
    let mut watched = Watched::new(&ctx.app)?;
    let mut watcher = Watcher::start(&watched, settings.debounce)?;
    let mut last_good: Option<ImageRef> = None;
    let mut logs: Option<tokio::task::JoinHandle<()>> = None;
    let mut asked = Some(Round {
        number: 1,
        trigger: RoundCause::Start,
        started: Instant::now(),
        debounce: Duration::ZERO,
        changed: Vec::new(),
        rebuild: Vec::new(),
    });
    let mut number = 1;
    loop {
        if let Some(round) = asked.take() {
            if let Some(task) = logs.take() {
                task.abort();
            }
            let first = round.trigger == RoundCause::Start;
            let ran = round::run(ctx, steps, round, &mut last_good);
            let (line, error) = tokio::select! {
                ran = ran => ran,
                _ = &mut stop => break,
            };
            match error {
                Some(error) if first => return Err(error),
                _ => report(&line)?,
            }
            if settings.logs && last_good.is_some() {
                logs = follow_logs(ctx, steps).await;
            }
            out.info("watching for changes (Enter or SIGUSR1 for a round now, Ctrl-C to stop)");
        }
        number += 1;
        tokio::select! {
            batch = watcher.next(&watched) => {
                let Some(batch) = batch else { break };
                let (round, reloaded) = changed(ctx, steps, &watched, batch, number);
                if let Some(fresh) = reloaded {
                    watched = fresh;
                    watcher = Watcher::start(&watched, settings.debounce)?;
                }
                asked = Some(round);
            }
            Some(()) = forced.recv() => {
                let rebuild = ctx.app.components.iter().filter(|c| c.build.is_some()).map(|c| c.id.clone()).collect();
                asked = Some(Round { number, trigger: RoundCause::Forced, started: Instant::now(), debounce: Duration::ZERO, changed: Vec::new(), rebuild });
            }
            _ = &mut stop => break,
        }
    }
    if let Some(task) = logs.take() {
        task.abort();
    }
    stop_watching(ctx, steps, settings).await
}

/// The round a batch of changes asks for: the components whose `build.watch` matched rebuild; a
/// changed manifest is read again (the components whose build changed rebuild too) and the
/// watched set made anew from it, returned.
fn changed(
    ctx: &mut AppContext,
    steps: &Steps<'_>,
    watched: &Watched,
    batch: Batch,
    number: usize,
) -> (Round, Option<Watched>) {
    let mut rebuild = Vec::new();
    let mut manifest = false;
    for path in &batch.paths {
        let meaning = watched.meaning(path);
        manifest |= meaning.manifest;
        rebuild.extend(meaning.rebuild);
    }
    let mut reloaded = None;
    if manifest {
        match crate::app::load(steps.from).and_then(|app| Ok((Watched::new(&app)?, app))) {
            Ok((fresh, app)) => {
                for c in &app.components {
                    if c.build.is_some()
                        && ctx.app.component(&c.id).map(|o| &o.build) != Some(&c.build)
                    {
                        rebuild.push(c.id.clone());
                    }
                }
                ctx.app = app;
                reloaded = Some(fresh);
            }
            Err(e) => steps
                .out
                .warn(format!("{e:#}; the last good spin.toml is kept")),
        }
    }
    let order: Vec<String> = ctx.app.components.iter().map(|c| c.id.clone()).collect();
    let rebuild = order
        .into_iter()
        .filter(|id| rebuild.contains(id))
        .collect();
    let round = Round {
        number,
        trigger: RoundCause::Change,
        debounce: batch.first.elapsed(),
        started: batch.first,
        changed: batch.paths,
        rebuild,
    };
    (round, reloaded)
}

/// Enter on the terminal and SIGUSR1 each ask for a round now.
fn forced_rounds() -> anyhow::Result<mpsc::UnboundedReceiver<()>> {
    use std::io::{BufRead, IsTerminal};
    let (sender, receiver) = mpsc::unbounded_channel();
    if std::io::stdin().is_terminal() {
        let keys = sender.clone();
        std::thread::spawn(move || {
            for _ in std::io::stdin().lock().lines().map_while(Result::ok) {
                if keys.send(()).is_err() {
                    break;
                }
            }
        });
    }
    let mut usr1 = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::user_defined1())?;
    tokio::spawn(async move {
        while usr1.recv().await.is_some() {
            if sender.send(()).is_err() {
                break;
            }
        }
    });
    Ok(receiver)
}

/// Streams the logs of the app's running pods to stderr, `[pod] line`, until aborted.
async fn follow_logs(ctx: &AppContext, steps: &Steps<'_>) -> Option<tokio::task::JoinHandle<()>> {
    let cluster = Cluster::connect(ctx, &steps.deploy.target, steps.yes)
        .await
        .ok()?;
    let (conn, name) = (cluster.conn, ctx.name.clone());
    let namespace = conn.namespace.clone();
    let pods: Vec<_> = logs::pods_of(&conn, &namespace, &name)
        .await
        .ok()?
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .collect();
    Some(tokio::spawn(async move {
        let print = |pod: &str, line: &str| crate::output::eprint_line(&format!("[{pod}] {line}"));
        let options = LogOptions {
            follow: true,
            ..LogOptions::default()
        };
        let _ = logs::stream(&conn, &namespace, &pods, &options, &print).await;
    }))
}

/// Ctrl-C: the app stays deployed, or with `--delete-on-exit` what was applied is deleted.
async fn stop_watching(
    ctx: &AppContext,
    steps: &Steps<'_>,
    settings: &DevSettings,
) -> anyhow::Result<()> {
    if !settings.delete_on_exit {
        steps.out.info(format!(
            "stopped watching; {} keeps running (`spin-aks delete` removes it)",
            ctx.name
        ));
        return Ok(());
    }
    let target = Target::resolve(&steps.deploy.target, ctx.store.state(), steps.yes).await?;
    let deleted = deploy::delete(ctx, target, false, steps.out).await?;
    steps.out.info(format!(
        "stopped watching; {}",
        deleted.summary(&ctx.name).replace('\n', ", ")
    ));
    Ok(())
}
