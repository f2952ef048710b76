//! `secrets set` and `secrets list`: the app's secret variables in its Azure Key Vault (`--key-vault`,
//! else the one remembered for the app; a vault given is remembered).

mod list;
mod set;

use crate::cli::{GlobalArgs, SecretsArgs, SecretsCommand};
use crate::output::Output;

pub async fn run(global: &GlobalArgs, args: &SecretsArgs, out: &Output) -> anyhow::Result<()> {
    match &args.command {
        SecretsCommand::Set(args) => set::run(global, args, out).await,
        SecretsCommand::List(args) => list::run(global, &args.vault, out).await,
    }
}
