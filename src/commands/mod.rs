//! One module per command: each reads its arguments, runs the pipeline steps, and reports.

mod apply;
mod build;
mod bundle;
mod cluster;
mod delete;
mod dev;
mod export;
mod fleet;
mod identity;
mod logs;
mod port_forward;
mod promote;
mod publish;
mod push;
mod scaffold;
mod secrets;
mod shell;
mod status;
mod up;
mod verify;

use crate::cli::{Cli, Command};
use crate::output::Output;

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    // Named once per process; the sink stays `Copy`.
    let name: &'static str = Box::leak(cli.command_name.clone().into_boxed_str());
    let out = Output::new(cli.global.output, cli.global.quiet, name);
    match &cli.command {
        Command::Build(args) => build::run(&cli.global, args, &out).await,
        Command::Export(args) => export::run(&cli.global, args, &out).await,
        Command::Push(args) => push::run(&cli.global, args, &out).await,
        Command::Scaffold(args) => scaffold::run(&cli.global, args, &out),
        Command::Apply(args) => apply::run(&cli.global, args, &out).await,
        Command::Up(args) => up::run(&cli.global, args, &out).await,
        Command::Dev(args) => dev::run(&cli.global, args, &out).await,
        Command::Status(args) => status::run(&cli.global, args, &out).await,
        Command::Logs(args) => logs::run(&cli.global, args, &out).await,
        Command::PortForward(args) => port_forward::run(&cli.global, args, &out).await,
        Command::Delete(args) => delete::run(&cli.global, args, &out).await,
        Command::Cluster(args) => cluster::run(&cli.global, args, &out).await,
        Command::Identity(args) => identity::run(&cli.global, args, &out).await,
        Command::Secrets(args) => secrets::run(&cli.global, args, &out).await,
        Command::Publish(args) => publish::run(&cli.global, args, &out).await,
        Command::Fleet(args) => fleet::run(&cli.global, args, &out).await,
        Command::Promote(args) => promote::run(&cli.global, args, &out).await,
        Command::Verify(args) => verify::run(&cli.global, args, &out).await,
        Command::Bundle(args) => bundle::run(&cli.global, args, &out).await,
        Command::Completions(args) => shell::completions(args.shell),
        Command::Man(args) => shell::man_pages(args.dir.as_deref()),
    }
}
