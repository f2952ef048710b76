//! One function per command: each reads its arguments, runs the pipeline steps, and reports.

mod push;

use crate::cli::{Cli, Command};
use crate::output::Output;

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let out = Output {
        mode: cli.global.output,
        quiet: cli.global.quiet,
    };
    match cli.command {
        Command::Build(_) | Command::Export(_) => anyhow::bail!("not implemented yet"),
        Command::Push(args) => push::run(&cli.global, &args, &out).await,
    }
}
