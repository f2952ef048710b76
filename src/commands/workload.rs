//! The workload flags (`WorkloadArgs`) turned into `WorkloadOptions`, shared by scaffold, apply
//! and up so the three generate the same objects from the same flags.

use crate::bad_input;
use crate::cli::WorkloadArgs;
use crate::kube::image::ImageRef;
use crate::kube::objects::{Autoscale, ResourceOptions, WorkloadKind, WorkloadOptions};

/// Refuses flag combinations clap cannot express.
pub fn check(args: &WorkloadArgs) -> anyhow::Result<()> {
    if args.autoscale && args.cpu_limit.is_none() && args.cpu_request.is_none() {
        return Err(bad_input!(
            "--autoscale scales on CPU utilization, which needs a CPU request; add --cpu-limit or --cpu-request (e.g. --cpu-limit 500m)"
        ));
    }
    if args.autoscale && args.max_replicas < args.replicas {
        return Err(bad_input!(
            "--max-replicas {} is below --replicas {}; the autoscaler needs max ≥ min",
            args.max_replicas,
            args.replicas
        ));
    }
    Ok(())
}

/// The options `objects::build` takes, from the flags plus what the command decided.
pub fn options(
    args: &WorkloadArgs,
    kind: WorkloadKind,
    image: ImageRef,
    namespace: Option<String>,
) -> WorkloadOptions {
    WorkloadOptions {
        kind,
        image,
        namespace,
        replicas: args.replicas,
        runtime_class: args.runtime_class.clone(),
        key_vault: args.key_vault.clone(),
        service_account: args.service_account.clone(),
        kv_stores: args.kv_stores.clone(),
        sqlite: args.sqlite.clone(),
        resources: ResourceOptions {
            cpu_limit: args.cpu_limit.clone(),
            memory_limit: args.memory_limit.clone(),
            cpu_request: args.cpu_request.clone(),
            memory_request: args.memory_request.clone(),
        },
        autoscale: args.autoscale.then_some(Autoscale {
            max_replicas: args.max_replicas,
            target_cpu_utilization: args.autoscaler_target_cpu_utilization,
        }),
        health_path: args.health_path.clone(),
        image_pull_secrets: args.image_pull_secrets.clone(),
    }
}
