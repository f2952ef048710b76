//! `spin-aks status`: what runs for this app in the cluster (image digest, replicas, endpoint, conditions).

use super::deploy::{self, Route};
use super::remote;
use crate::cli::{GlobalArgs, StatusArgs};
use crate::cluster::apply::Resources;
use crate::cluster::status;
use crate::output::Output;

pub async fn run(global: &GlobalArgs, args: &StatusArgs, out: &Output) -> anyhow::Result<()> {
    let status = match deploy::route(global, &args.target, args.via, out).await? {
        Route::RunCommand(record, aks) => {
            let namespace = args.target.namespace.as_deref();
            remote::status(&record, &aks, namespace, out).await?
        }
        Route::Api(target) => {
            let resources = Resources::discover(&target.conn).await?;
            let namespace = target.conn.namespace.clone();
            status::read(&target.conn, &resources, &namespace, &target.name).await?
        }
    };
    let mut lines = vec![
        format!(
            "{} {} in namespace {} of {}",
            status.kind, status.name, status.namespace, status.cluster
        ),
        format!(
            "image: {}",
            status.image.as_deref().unwrap_or("(no Deployment yet)")
        ),
        format!("ready: {}/{}", status.ready, status.desired),
        format!(
            "endpoint: {}",
            status
                .endpoint
                .as_deref()
                .unwrap_or("none (spin-aks port-forward)")
        ),
    ];
    for c in &status.conditions {
        lines.push(format!(
            "{}: {}{}",
            c.type_,
            c.status,
            c.message
                .as_deref()
                .map(|m| format!(" ({m})"))
                .unwrap_or_default()
        ));
    }
    out.report(&status, lines.join("\n"))
}
