//! Where results go: human text to stderr, or exactly one JSON object on stdout with `--output json`.
//! Commands build a serializable report and hand it here. Only streams that are themselves the
//! result write stdout directly: `logs` (the log lines), `apply --diff` in text mode (the diff),
//! `cluster token` (the ExecCredential kubectl reads) and `completions`/`man` (the script or page).
//! Under `GITHUB_ACTIONS=true` warnings are annotations and each report is summarised for the job.

pub mod github;

use std::path::Path;
use std::time::Duration;

use serde::Serialize;

/// The version of the published JSON Schemas (docs/schemas/v1/) the reports follow.
pub const SCHEMA_VERSION: &str = "v1";

/// Seconds between plain progress lines when stderr is not a terminal (default 5).
pub const PROGRESS_SECONDS_ENV: &str = "SPIN_AKS_PROGRESS_SECONDS";

/// A report with the `$id` of its schema first.
#[derive(Serialize)]
struct Stamped<'a, T: Serialize> {
    schema: String,
    #[serde(flatten)]
    report: &'a T,
}

/// `text` for humans, `json` for one object on stdout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputMode {
    Text,
    Json,
}

/// How long work shows that it goes on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    /// `--quiet`: nothing.
    Off,
    /// A terminal: live bars.
    Bars,
    /// Anything else (a CI log, a file): one plain line every interval.
    Lines(Duration),
}

/// Sink for a command's messages and its final report.
#[derive(Clone, Copy, Debug)]
pub struct Output {
    pub mode: OutputMode,
    pub quiet: bool,
    /// `GITHUB_ACTIONS=true`: workflow commands and the step summary.
    pub github: bool,
    /// The command's name as its schema names it (`push`, `cluster-install`).
    pub command: &'static str,
}

impl Output {
    /// The sink for `command` (words joined by `-`), reading `GITHUB_ACTIONS`.
    pub fn new(mode: OutputMode, quiet: bool, command: &'static str) -> Self {
        Output {
            mode,
            quiet,
            github: std::env::var("GITHUB_ACTIONS").is_ok_and(|v| v == "true"),
            command,
        }
    }

    /// A progress or status line for humans (stderr), silenced by `--quiet`.
    pub fn info(&self, message: impl AsRef<str>) {
        if !self.quiet {
            eprintln!("{}", message.as_ref());
        }
    }

    /// A warning (stderr), shown even with `--quiet`; in GitHub Actions an annotation.
    pub fn warn(&self, message: impl AsRef<str>) {
        self.warn_at(None, message);
    }

    /// A warning about a place in a file (`spin.toml`, line 12): GitHub shows it on that line.
    pub fn warn_at(&self, place: Option<(&Path, usize)>, message: impl AsRef<str>) {
        if self.github {
            eprintln!("{}", github::warning(place, message.as_ref()));
        } else {
            eprintln!("warning: {}", message.as_ref());
        }
    }

    /// How long work should show progress on stderr.
    pub fn progress(&self) -> Progress {
        use std::io::IsTerminal;
        if self.quiet {
            Progress::Off
        } else if std::io::stderr().is_terminal() {
            Progress::Bars
        } else {
            let seconds = std::env::var(PROGRESS_SECONDS_ENV)
                .ok()
                .and_then(|text| text.parse::<f64>().ok())
                .filter(|seconds| *seconds > 0.0)
                .unwrap_or(5.0);
            Progress::Lines(Duration::from_secs_f64(seconds))
        }
    }

    /// Runs `work`, saying at intervals that `doing` still runs, so a CI log never looks stalled:
    /// every progress interval without a terminal, every 30 s on one, never under `--quiet`.
    pub async fn while_running<T>(
        &self,
        doing: &str,
        work: impl std::future::Future<Output = T>,
    ) -> T {
        let every = match self.progress() {
            Progress::Off => return work.await,
            Progress::Bars => Duration::from_secs(30),
            Progress::Lines(every) => every,
        };
        let started = std::time::Instant::now();
        tokio::pin!(work);
        let first = tokio::time::Instant::now() + every;
        let mut ticks = tokio::time::interval_at(first, every);
        loop {
            tokio::select! {
                done = &mut work => return done,
                _ = ticks.tick() => {
                    self.info(format!("{doing}: still running after {}s", started.elapsed().as_secs()))
                }
            }
        }
    }

    /// Text that is itself the result in text mode (a diff), printed as is on stdout; a JSON
    /// report carries it instead.
    pub fn text_result(&self, text: &str) {
        if self.mode == OutputMode::Text {
            print!("{text}");
        }
    }

    /// The command's result: JSON on stdout (with `"schema"` naming its published schema), or the
    /// given summary line on stdout for text mode; in GitHub Actions also the job's step summary.
    pub fn report<T: Serialize>(&self, report: &T, summary: impl AsRef<str>) -> anyhow::Result<()> {
        match self.mode {
            OutputMode::Json => {
                let stamped = Stamped {
                    schema: self.schema_id(),
                    report,
                };
                println!("{}", serde_json::to_string(&stamped)?)
            }
            OutputMode::Text => println!("{}", summary.as_ref()),
        }
        if self.github {
            let value = serde_json::to_value(report)?;
            if let Err(err) = github::append_summary(self.command, summary.as_ref(), &value) {
                self.warn(format!("could not write the job summary: {err:#}"));
            }
        }
        Ok(())
    }

    /// `spin-aks/v1/<command>`: the `$id` of the schema in docs/schemas/v1/<command>.json.
    pub fn schema_id(&self) -> String {
        format!("spin-aks/{SCHEMA_VERSION}/{}", self.command)
    }
}
