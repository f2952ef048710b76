//! `spin-aks port-forward`: the app on http://127.0.0.1:<port>, tunnelled to a Ready pod, until Ctrl-C.

use serde::Serialize;

use crate::cli::{GlobalArgs, PortForwardArgs};
use crate::cluster::logs::{is_ready, pods_of};
use crate::cluster::portforward;
use crate::context::target::Cluster;
use crate::output::Output;

#[derive(Serialize)]
struct Forwarding {
    url: String,
    pod: String,
    namespace: String,
}

pub async fn run(global: &GlobalArgs, args: &PortForwardArgs, out: &Output) -> anyhow::Result<()> {
    let ctx = global.app_context(out)?;
    let cluster = Cluster::connect(&ctx, &args.target.settings(), global.yes).await?;
    let namespace = cluster.conn.namespace.clone();
    let pods = pods_of(&cluster.conn, &namespace, &ctx.name).await?;
    let pod = pods
        .iter()
        // A Ready pod that is being deleted (the old side of a rollout) is about to go away.
        .find(|p| is_ready(p) && p.metadata.deletion_timestamp.is_none())
        .and_then(|p| p.metadata.name.clone())
        .ok_or_else(|| {
            anyhow::anyhow!(
                "{} has no Ready pod in namespace {namespace}; see `spin-aks status`",
                ctx.name
            )
        })?;
    let (listener, port) = portforward::bind(args.port).await?;
    let report = Forwarding {
        url: format!("http://127.0.0.1:{port}"),
        pod: pod.clone(),
        namespace: namespace.clone(),
    };
    out.report(
        &report,
        format!(
            "forwarding {} → pod {pod} port {} (Ctrl-C to stop)",
            report.url,
            portforward::APP_PORT
        ),
    )?;
    portforward::serve(&cluster.conn, &namespace, &pod, listener).await
}
