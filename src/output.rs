//! Where results go: human text to stderr, or exactly one JSON object on stdout with `--output json`.
//! Commands build a serializable report and hand it here. Only streams that are themselves the
//! result write stdout directly: `logs` (the log lines), `apply --diff` in text mode (the diff),
//! `cluster token` (the ExecCredential kubectl reads) and `completions`/`man` (the script or page).
//! Under `GITHUB_ACTIONS=true` warnings are annotations and each report is summarised for the job.

pub mod github;

use std::io::Write;
use std::path::Path;
use std::sync::OnceLock;
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
pub enum ProgressMode {
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
        let message = printable(message.as_ref());
        let line = if self.github {
            github::warning(place, &message)
        } else {
            format!("warning: {message}")
        };
        let _ = writeln!(std::io::stderr(), "{line}");
    }

    /// How long work should show progress on stderr.
    pub fn progress(&self) -> ProgressMode {
        use std::io::IsTerminal;
        if self.quiet {
            ProgressMode::Off
        } else if std::io::stderr().is_terminal() {
            ProgressMode::Bars
        } else {
            let seconds = std::env::var(PROGRESS_SECONDS_ENV)
                .ok()
                .and_then(|text| text.parse::<f64>().ok())
                .filter(|seconds| *seconds > 0.0)
                .unwrap_or(5.0);
            ProgressMode::Lines(Duration::from_secs_f64(seconds))
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
            ProgressMode::Off => return work.await,
            ProgressMode::Bars => Duration::from_secs(30),
            ProgressMode::Lines(every) => every,
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
    pub fn text_result(&self, text: &str) -> anyhow::Result<()> {
        if self.mode == OutputMode::Text {
            print_stdout(&safe(text), "the result")?;
        }
        Ok(())
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
                print_stdout(
                    &format!("{}\n", serde_json::to_string(&stamped)?),
                    "the report",
                )?
            }
            OutputMode::Text => {
                print_stdout(&format!("{}\n", safe(summary.as_ref())), "the report")?
            }
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

/// Whether this runs as a GitHub Actions step (`GITHUB_ACTIONS=true`), read once.
pub fn in_github_actions() -> bool {
    static GITHUB: OnceLock<bool> = OnceLock::new();
    *GITHUB.get_or_init(|| std::env::var("GITHUB_ACTIONS").is_ok_and(|v| v == "true"))
}

/// `text` made safe for a terminal and a CI log: [`printable`], and in GitHub Actions no line the
/// runner would take for a workflow command ([`github::inert`]).
fn safe(text: &str) -> String {
    let text = printable(text);
    if in_github_actions() {
        github::inert(&text)
    } else {
        text
    }
}

/// Text that may come from anywhere (a manifest, a server's answer) as it may be printed: control
/// characters (a terminal's escape sequences, a carriage return that hides a line) and Unicode's
/// bidirectional overrides are written as `\u{…}` escapes; newlines and tabs stay.
pub fn printable(text: &str) -> String {
    let unsafe_char = |c: char| {
        (c.is_control() && c != '\n' && c != '\t')
            || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    };
    if !text.contains(unsafe_char) {
        return text.to_string();
    }
    text.chars()
        .map(|c| {
            if unsafe_char(c) {
                c.escape_unicode().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// One line for humans on stderr, made [`safe`]. A stderr that cannot be written is ignored:
/// there is nowhere left to say so.
pub fn eprint_line(text: &str) {
    let _ = writeln!(std::io::stderr(), "{}", safe(text));
}

/// The command's failure on stderr: `error: …`, or in GitHub Actions an `::error::` annotation
/// whose message is escaped as one workflow command (no line of it can be read as another).
pub fn print_error(message: &str) {
    let message = printable(message);
    let line = if in_github_actions() {
        github::error(&message)
    } else {
        format!("error: {message}")
    };
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// Writes `text` (`what`: the report, the result) to stdout; a stdout that cannot take it (a full
/// disk, a closed pipe) is an error that says so, never a panic.
pub fn print_stdout(text: &str, what: &str) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|err| anyhow::anyhow!("cannot write {what} to standard output: {err}"))
}

#[cfg(test)]
mod tests {
    use super::printable;

    #[test]
    fn printable_text_has_no_terminal_controls() {
        for (text, shown) in [
            ("hello", "hello"),
            ("two\nlines\tand a tab", "two\nlines\tand a tab"),
            ("\u{1b}]0;owned\u{7}title", "\\u{1b}]0;owned\\u{7}title"),
            ("over\rwrite", "over\\u{d}write"),
            ("csi\u{9b}31m", "csi\\u{9b}31m"),
            ("abc\u{202e}fed", "abc\\u{202e}fed"),
        ] {
            assert_eq!(printable(text), shown, "{text:?}");
        }
    }
}
