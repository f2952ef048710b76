//! One module per command: each reads its arguments, runs the pipeline steps, and reports.

pub mod build;
mod export;
mod push;
mod scaffold;
mod shell;

use crate::cli::{Cli, Command};
use crate::output::Output;

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let out = Output {
        mode: cli.global.output,
        quiet: cli.global.quiet,
    };
    match &cli.command {
        Command::Build(args) => build::run(&cli.global, args, &out).await,
        Command::Export(args) => export::run(&cli.global, args, &out).await,
        Command::Push(args) => push::run(&cli.global, args, &out).await,
        Command::Scaffold(args) => scaffold::run(&cli.global, args, &out),
        Command::Completions(args) => shell::completions(args.shell),
        Command::Man(args) => shell::man_pages(args.dir.as_deref()),
    }
}
