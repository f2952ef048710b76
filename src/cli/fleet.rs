//! The flags of the deploy artifact and the clusters that follow it: publish, fleet add,
//! remove and status, promote.

use super::*;

#[derive(Debug, Args)]
pub struct PublishArgs {
    /// The image the objects run (default: this app's last push, pinned by digest)
    #[arg(long, value_name = "REF", value_parser = reference(parse_image))]
    pub image: Option<ImageRef>,
    /// The deploy artifact's repository, `registry/name` (default: `<image repository>-deploy`)
    #[arg(long, value_name = "REPOSITORY", value_parser = reference(parse_repository))]
    pub repository: Option<RegistryRef>,
    /// The tag to push, one per environment (repeatable; default `latest`)
    #[arg(long = "env", value_name = "ENV", value_parser = validate::parse_dns_label)]
    pub envs: Vec<String>,
    #[command(flatten)]
    pub objects: ObjectArgs,
    #[command(flatten)]
    pub registry: RegistryArgs,
    #[command(flatten)]
    pub sign: SignArgs,
}

#[derive(Debug, Args)]
pub struct FleetArgs {
    #[command(subcommand)]
    pub command: FleetCommand,
}

#[derive(Debug, Subcommand)]
pub enum FleetCommand {
    /// Make clusters (kubeconfig contexts) follow the app's deploy artifact: an OCIRepository and a Kustomization, applied server-side
    Add(Box<FleetAddArgs>),
    /// Stop clusters following the deploy artifact; the app keeps running unless --delete-app
    Remove(FleetRemoveArgs),
    /// For every cluster of the fleet: the revision Flux applied, whether the app runs the published image, and why not
    Status(FleetStatusArgs),
}

#[derive(Debug, Args)]
pub struct FleetAddArgs {
    /// The kubeconfig contexts to add
    #[arg(value_name = "CLUSTER", required = true)]
    pub clusters: Vec<String>,
    /// The kubeconfig file (else `KUBECONFIG`, a list of files merged, else `~/.kube/config`)
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// The namespace the app runs in on those clusters
    #[arg(short = 'n', long, value_name = "NS", default_value = "default", value_parser = validate::parse_dns_label)]
    pub namespace: String,
    /// The deploy artifact tag (environment) the clusters follow
    #[arg(long, value_name = "ENV", default_value = crate::deploy::artifact::DEFAULT_ENV, value_parser = validate::parse_dns_label)]
    pub env: String,
    /// How often Flux looks for a new artifact and re-applies it
    #[arg(long, value_name = "DURATION", default_value = "1m", value_parser = parse_flux_duration)]
    pub interval: std::time::Duration,
    /// How long Flux's health checks may wait for the app to run the new image
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_flux_duration)]
    pub timeout: std::time::Duration,
    /// Flux pulls the artifact over plain HTTP (a registry without TLS; loopback registries always)
    #[arg(long)]
    pub insecure: bool,
    /// A secret variable's value, written into each cluster's Secret: `NAME=VALUE`, `NAME=@FILE`, or `NAME` (from env `SPIN_VARIABLE_<NAME>`)
    #[arg(long = "secret", value_name = "NAME[=VALUE|=@FILE]", value_parser = redacted(SecretArg::parse))]
    pub secrets: Vec<SecretArg>,
    #[command(flatten)]
    pub objects: ObjectArgs,
    #[command(flatten)]
    pub verify: FleetVerifyArgs,
    /// Where a cluster without Flux's source- or kustomize-controller gets them: a mirror `spin-aks
    /// bundle push` filled (`host[:port][/path]`; plain HTTP with --insecure or on loopback; not for AKS)
    #[arg(long, value_name = "REGISTRY")]
    pub mirror: Option<String>,
}

#[derive(Debug, Args)]
pub struct FleetRemoveArgs {
    /// The kubeconfig contexts to remove from the fleet
    #[arg(value_name = "CLUSTER", required = true)]
    pub clusters: Vec<String>,
    /// The kubeconfig file (else `KUBECONFIG`, else `~/.kube/config`)
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// Also delete the app's objects Flux applied there (default: they keep running, unmanaged)
    #[arg(long)]
    pub delete_app: bool,
}

#[derive(Debug, Args)]
pub struct FleetStatusArgs {
    /// The kubeconfig file (else `KUBECONFIG`, else `~/.kube/config`)
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// Only the clusters following this tag (environment)
    #[arg(long, value_name = "ENV", value_parser = validate::parse_dns_label)]
    pub env: Option<String>,
}

#[derive(Debug, Args)]
pub struct PromoteArgs {
    /// The environment whose published digest moves on, given first: `promote staging --to prod`
    /// (`--from`, as for every command, names the app's spin.toml, not an environment)
    #[arg(value_name = "FROM_ENV", value_parser = validate::parse_dns_label)]
    pub from_env: Option<String>,
    /// The environment tag that gets it
    #[arg(long, value_name = "ENV", value_parser = validate::parse_dns_label)]
    pub to: String,
    /// The kubeconfig file for reading the `--from` clusters (else `KUBECONFIG`, else `~/.kube/config`)
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// Wait until the `--to` clusters converged, for at most this long
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub wait: Option<std::time::Duration>,
    #[command(flatten)]
    pub registry: RegistryArgs,
}
