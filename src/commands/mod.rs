//! One function per command: each reads its arguments, runs the pipeline steps, and reports.

use crate::cli::{Cli, Command};

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Build(_) | Command::Export(_) => anyhow::bail!("not implemented yet"),
    }
}
