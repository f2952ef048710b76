//! `spin-aks dev` (`spin aks dev`): `up` once, then a round per saved change until Ctrl-C; one
//! line per round (one JSON object per line with `--output json`).

use crate::cli::{DevArgs, GlobalArgs};
use crate::dev::{self, Steps};
use crate::output::Output;

pub async fn run(global: &GlobalArgs, args: &DevArgs, out: &Output) -> anyhow::Result<()> {
    let settings = args.settings()?;
    let push = args.push.settings()?;
    let deploy = args.deploy.settings()?;
    let mut ctx = global.app_context(out)?;
    let steps = Steps {
        from: &global.from,
        push: &push,
        deploy: &deploy,
        yes: global.yes,
        out,
    };
    let report = |round: &dev::RoundReport| out.report(round, round.line());
    dev::run(&mut ctx, &steps, &settings, &report).await
}
