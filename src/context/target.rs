//! Choosing and reaching the cluster a command targets, as kubectl and az do: a kubeconfig
//! context, or an AKS cluster (flags, else the one `cluster use` chose) reached through ARM.

use std::path::PathBuf;

use tokio::sync::OnceCell;

use crate::azure::aks;
use crate::azure::arm::{Arm, ManagedCluster};
use crate::azure::ClusterRef;
use crate::cluster::connect::{self, Connection, Remembered};
use crate::context::choose::{self, ClusterSelector, Mode};
use crate::context::AppContext;
use crate::state::{AppState, State};

/// Which cluster and namespace the flags ask for.
#[derive(Clone, Debug, Default)]
pub struct TargetSettings {
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
    /// `-n`: validated as a DNS label.
    pub namespace: Option<String>,
    /// An AKS cluster instead of a kubeconfig context.
    pub aks: ClusterSelector,
    pub via: Via,
}

impl TargetSettings {
    /// The AKS cluster just made (`cluster create`), reached by the default route.
    pub fn created(cluster: &ClusterRef) -> Self {
        TargetSettings {
            aks: ClusterSelector {
                subscription: Some(cluster.subscription.clone()),
                resource_group: Some(cluster.resource_group.clone()),
                cluster: Some(cluster.name.clone()),
            },
            ..TargetSettings::default()
        }
    }
}

/// The route to an AKS cluster's API server.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Via {
    /// Run command when the API server is private, else directly.
    #[default]
    Auto,
    /// The API server's address, like kubectl.
    Api,
    /// AKS run command: kubectl runs in the cluster; spin-aks talks only to ARM.
    RunCommand,
}

/// An AKS cluster reached through ARM; its resource read once, when first needed.
pub struct Aks {
    pub arm: Arm,
    pub cluster: ClusterRef,
    managed: OnceCell<ManagedCluster>,
}

impl Aks {
    pub fn new(arm: Arm, cluster: ClusterRef) -> Self {
        Aks {
            arm,
            cluster,
            managed: OnceCell::new(),
        }
    }

    /// The cluster's ARM resource (one GET per command).
    pub async fn managed(&self) -> anyhow::Result<&ManagedCluster> {
        self.managed
            .get_or_try_init(|| self.arm.cluster(&self.cluster))
            .await
    }
}

/// The cluster a command targets: the AKS cluster resolved (asked for at most once), or the
/// kubeconfig the flags name.
pub struct Target {
    settings: TargetSettings,
    aks: Option<Aks>,
}

impl Target {
    /// An AKS cluster when `--cluster` names one, or `cluster use` chose one and no kubeconfig
    /// flag is given; else the kubeconfig.
    pub async fn resolve(
        settings: &TargetSettings,
        state: &State,
        yes: bool,
    ) -> anyhow::Result<Self> {
        let use_aks = settings.aks.cluster.is_some()
            || (settings.kubeconfig.is_none()
                && settings.context.is_none()
                && state.last_cluster.is_some());
        let aks = if use_aks {
            let arm = Arm::from_env()?;
            let cluster =
                choose::resolve_cluster(&arm, &settings.aks, state, Mode::detect(yes)).await?;
            Some(Aks::new(arm, cluster))
        } else {
            None
        };
        Ok(Target {
            settings: settings.clone(),
            aks,
        })
    }

    pub fn aks(&self) -> Option<&Aks> {
        self.aks.as_ref()
    }

    /// `-n`, when given.
    pub fn namespace_flag(&self) -> Option<&str> {
        self.settings.namespace.as_deref()
    }

    /// The AKS cluster, taken out of the target, when the route is AKS run command: asked for,
    /// or an AKS API server that is private.
    pub async fn take_run_command(&mut self) -> anyhow::Result<Option<Aks>> {
        let Some(aks) = &self.aks else {
            return Ok(None);
        };
        let run_command = match self.settings.via {
            Via::Api => false,
            Via::RunCommand => true,
            Via::Auto => aks.managed().await?.is_private(),
        };
        Ok(if run_command { self.aks.take() } else { None })
    }

    /// Reads what reaching a kubeconfig cluster needs (the file, the context, its client),
    /// sending nothing: a command calls it before it pushes or changes anything, so a bad
    /// kubeconfig is refused first. An AKS cluster's credentials come from ARM when it connects.
    pub async fn check(&self, remembered: &AppState) -> anyhow::Result<()> {
        if self.aks.is_some() {
            return Ok(());
        }
        let (flags, remembered) = self.flags(remembered);
        let conn = connect::connect(&flags, &remembered).await?;
        // One request, so an unreachable cluster stops the run before anything is built or
        // pushed, and a later outage (a restart) is known to be one and waited out.
        conn.client.apiserver_version().await.map_err(|e| {
            crate::cluster::errors::explain(
                e,
                &conn,
                crate::cluster::errors::ApiCall::new("get", "the server version", None),
            )
        })?;
        Ok(())
    }

    /// The kubeconfig flags, and the context and namespace this app used last.
    fn flags(&self, remembered: &AppState) -> (connect::KubeconfigChoice, Remembered) {
        let last = remembered.last_deploy.as_ref();
        let remembered = Remembered {
            context: last.map(|d| d.context.clone()),
            namespace: last.map(|d| d.namespace.clone()),
        };
        let flags = connect::KubeconfigChoice {
            kubeconfig: self.settings.kubeconfig.clone(),
            context: self.settings.context.clone(),
            namespace: self.settings.namespace.clone(),
        };
        (flags, remembered)
    }

    /// Connects to the API server: the kubeconfig context, or the AKS user credentials in
    /// memory; the context and namespace this app used last when the flags name none.
    pub async fn connect(self, remembered: &AppState) -> anyhow::Result<Cluster> {
        let (flags, remembered) = self.flags(remembered);
        let Some(aks) = self.aks else {
            let conn = connect::connect(&flags, &remembered).await?;
            return Ok(Cluster { conn, aks: None });
        };
        let kubeconfig = aks::user_kubeconfig(&aks.arm, &aks.cluster).await?;
        let mut conn = connect::connect_with(kubeconfig, &flags, &remembered).await?;
        conn.in_memory = true;
        if aks.managed().await?.is_private() {
            conn.unreachable_hint = Some(format!(
                "{}'s API server is private: run this from its virtual network (or a peered network or VPN); `apply`, `up`, `status` and `delete` reach it from anywhere through AKS run command",
                aks.cluster.name
            ));
        }
        Ok(Cluster {
            conn,
            aks: Some(aks),
        })
    }
}

/// A cluster reached through its API server.
pub struct Cluster {
    pub conn: Connection,
    /// The AKS cluster, when reached through ARM.
    pub aks: Option<Aks>,
}

impl Cluster {
    /// The API server of the cluster `settings` name, for commands that need nothing else.
    pub async fn connect(
        ctx: &AppContext,
        settings: &TargetSettings,
        yes: bool,
    ) -> anyhow::Result<Cluster> {
        let target = Target::resolve(settings, ctx.store.state(), yes).await?;
        target.connect(ctx.remembered()).await
    }
}
