//! Where results go: human text to stderr, or exactly one JSON object on stdout with `--output json`.
//! Commands build a serializable report and hand it here. Only streams that are themselves the
//! result write stdout directly: `logs` (the log lines), `apply --diff` in text mode (the diff),
//! `cluster token` (the ExecCredential kubectl reads) and `completions`/`man` (the script or page).

use serde::Serialize;

/// `text` for humans, `json` for one object on stdout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputMode {
    Text,
    Json,
}

/// Sink for a command's messages and its final report.
#[derive(Clone, Copy, Debug)]
pub struct Output {
    pub mode: OutputMode,
    pub quiet: bool,
}

impl Output {
    /// A progress or status line for humans (stderr), silenced by `--quiet`.
    pub fn info(&self, message: impl AsRef<str>) {
        if !self.quiet {
            eprintln!("{}", message.as_ref());
        }
    }

    /// A warning (stderr), shown even with `--quiet`.
    pub fn warn(&self, message: impl AsRef<str>) {
        eprintln!("warning: {}", message.as_ref());
    }

    /// Text that is itself the result in text mode (a diff), printed as is on stdout; a JSON
    /// report carries it instead.
    pub fn text_result(&self, text: &str) {
        if self.mode == OutputMode::Text {
            print!("{text}");
        }
    }

    /// The command's result: JSON on stdout, or the given summary line on stdout for text mode.
    pub fn report<T: Serialize>(&self, report: &T, summary: impl AsRef<str>) -> anyhow::Result<()> {
        match self.mode {
            OutputMode::Json => println!("{}", serde_json::to_string(report)?),
            OutputMode::Text => println!("{}", summary.as_ref()),
        }
        Ok(())
    }
}
