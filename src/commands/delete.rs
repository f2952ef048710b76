//! `spin-aks delete`: deletes the members of this app's ApplySet and its parent, nothing else.

use serde::Serialize;

use super::deploy::{self, Aks, AppRecord, Route};
use super::remote;
use crate::cli::{DeleteArgs, DryRun, GlobalArgs};
use crate::cluster::apply::{self, parent_group_kinds, Resources};
use crate::cluster::applyset::ApplySet;
use crate::output::Output;

#[derive(Serialize)]
struct DeleteReport {
    cluster: String,
    namespace: String,
    deleted: Vec<Deleted>,
}

#[derive(Serialize)]
struct Deleted {
    kind: String,
    name: String,
}

pub async fn run(global: &GlobalArgs, args: &DeleteArgs, out: &Output) -> anyhow::Result<()> {
    let target = match deploy::route(global, &args.target, args.via, out).await? {
        Route::RunCommand(record, aks) => {
            return delete_through_run_command(&record, &aks, args, out).await
        }
        Route::Api(target) => target,
    };
    let conn = &target.conn;
    let namespace = conn.namespace.clone();
    let dry_run = args.dry_run == DryRun::Server;
    let resources = Resources::discover(conn).await?;
    let set = ApplySet::for_app(&target.name, &namespace);
    let group_kinds = parent_group_kinds(conn, &set).await?;
    let mut deleted = Vec::new();
    for (resource, namespaced, object) in
        apply::members(conn, &resources, &set, &group_kinds).await?
    {
        let name = object["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        apply::delete(conn, &resource, namespaced, &namespace, &name, dry_run).await?;
        deleted.push(Deleted {
            kind: resource.kind.clone(),
            name,
        });
    }
    if !group_kinds.is_empty() {
        let (secret, _) = resources.resolve("v1", "Secret")?;
        apply::delete(conn, &secret, true, &namespace, &set.parent_name, dry_run).await?;
    }
    let report = DeleteReport {
        cluster: conn.context.clone(),
        namespace,
        deleted,
    };
    report.print(&target.name, out)
}

async fn delete_through_run_command(
    record: &AppRecord,
    aks: &Aks,
    args: &DeleteArgs,
    out: &Output,
) -> anyhow::Result<()> {
    if args.dry_run == DryRun::Server {
        return Err(remote::unsupported_flag("--dry-run server"));
    }
    let namespace = args.target.namespace.as_deref();
    let (namespace, deleted) = remote::delete(record, aks, namespace, out).await?;
    let report = DeleteReport {
        cluster: aks.cluster.name.clone(),
        namespace,
        deleted: deleted
            .into_iter()
            .map(|d| Deleted {
                kind: d.kind,
                name: d.name,
            })
            .collect(),
    };
    report.print(&record.name, out)
}

impl DeleteReport {
    fn print(&self, app: &str, out: &Output) -> anyhow::Result<()> {
        let summary = if self.deleted.is_empty() {
            format!(
                "nothing of {app} was applied in namespace {} of {}",
                self.namespace, self.cluster
            )
        } else {
            self.deleted
                .iter()
                .map(|d| format!("{}/{} deleted", d.kind.to_ascii_lowercase(), d.name))
                .collect::<Vec<_>>()
                .join("\n")
        };
        out.report(self, summary)
    }
}
