//! Where flags become validated settings: each command's `settings()`, checked before
//! anything is read or sent, and the checks they share (registry paths, URLs, mirrors).

use super::*;

impl GlobalArgs {
    /// The app `--from` names and what the state file remembers for it.
    pub fn app_context(
        &self,
        out: &crate::output::Output,
    ) -> anyhow::Result<crate::context::AppContext> {
        crate::context::AppContext::load(&self.from, self.state_file.as_deref(), out)
    }

    /// The state file, read (for commands about clusters and registries, not one app).
    pub fn store(&self, out: &crate::output::Output) -> anyhow::Result<crate::context::Store> {
        crate::context::Store::load(self.state_file.as_deref(), out)
    }
}

impl TargetArgs {
    /// The target, reached directly (commands that only talk to the API server).
    pub fn settings(&self) -> crate::context::target::TargetSettings {
        crate::context::target::TargetSettings {
            kubeconfig: self.kubeconfig.clone(),
            context: self.context.clone(),
            namespace: self.namespace.clone(),
            aks: self.aks.selector(),
            via: crate::context::target::Via::Auto,
        }
    }

    /// The target, reached by the route `--via` asks for.
    pub fn settings_via(&self, via: ViaArg) -> crate::context::target::TargetSettings {
        crate::context::target::TargetSettings {
            via: match via {
                ViaArg::Auto => crate::context::target::Via::Auto,
                ViaArg::Api => crate::context::target::Via::Api,
                ViaArg::RunCommand => crate::context::target::Via::RunCommand,
            },
            ..self.settings()
        }
    }
}

impl WorkloadArgs {
    /// The workload settings; refuses combinations clap cannot express (an autoscaler that
    /// could not work).
    pub fn settings(&self) -> anyhow::Result<crate::workload::objects::WorkloadSettings> {
        use crate::deploy::workload;
        let resources = objects::ResourceOptions {
            cpu_limit: self.cpu_limit.clone(),
            memory_limit: self.memory_limit.clone(),
            cpu_request: self.cpu_request.clone(),
            memory_request: self.memory_request.clone(),
        };
        let autoscale = self.autoscale.then_some(objects::Autoscale {
            max_replicas: self.max_replicas,
            target_cpu_utilization: self.autoscaler_target_cpu_utilization,
        });
        workload::check_autoscale(autoscale.as_ref(), self.replicas, &resources)?;
        Ok(objects::WorkloadSettings {
            kind: self.kind,
            replicas: self.replicas,
            runtime_class: self.runtime_class.clone(),
            key_vault: self.key_vault.clone(),
            key_vault_mode: self.key_vault_mode,
            identity_client_id: self.identity_client_id.clone(),
            tenant_id: self.tenant_id.clone(),
            service_account: self.service_account.clone(),
            kv_stores: self.kv_stores.clone(),
            sqlite: self
                .sqlite
                .iter()
                .cloned()
                .map(workload::with_env_token)
                .collect(),
            resources,
            autoscale,
            health_path: self.health_path.clone(),
            image_pull_secrets: self.image_pull_secrets.clone(),
        })
    }
}

impl DeployArgs {
    /// The deploy settings: the workload's, the exposure (`--host` only with an Ingress, which
    /// needs one) and the libsql tokens a runtime config would need.
    pub fn settings(&self) -> anyhow::Result<crate::deploy::Settings> {
        use crate::cluster::expose::Exposure;
        let workload = self.workload.settings()?;
        let exposure = match (self.expose, &self.host) {
            (ExposeKind::Ingress, Some(host)) => Exposure::Ingress { host: host.clone() },
            (ExposeKind::Ingress, None) => return Err(crate::bad_input!(
                "--expose ingress needs --host <HOST>, the name the app answers on (e.g. --host hello.example.com)"
            )),
            (_, Some(_)) => return Err(crate::bad_input!("--host is only used with --expose ingress")),
            (ExposeKind::Loadbalancer, None) => Exposure::LoadBalancer,
            (ExposeKind::None, None) => Exposure::None,
        };
        crate::deploy::workload::require_tokens(&workload)?;
        Ok(crate::deploy::Settings {
            target: self.target.settings_via(self.via),
            dir: self.dir.clone(),
            dry_run: self.dry_run == DryRun::Server,
            diff: self.diff,
            force_conflicts: self.force_conflicts,
            prune: self.prune,
            wait: !self.no_wait,
            timeout: self.timeout,
            exposure,
            secrets: self.secrets.clone(),
            workload,
        })
    }
}

impl ImageArgs {
    /// How to build: the target shim release must be one spin-aks knows.
    pub fn settings(&self) -> anyhow::Result<crate::build::BuildSettings> {
        Ok(crate::build::BuildSettings {
            format: self.format,
            skip_spin_build: self.skip_spin_build,
            target: crate::app::compat::target_shim(&self.shim_version)?,
            sbom: self.sbom != "none",
            provenance: self.provenance != "none",
        })
    }
}

impl PushArgs {
    /// `push`'s settings: the image's (below), and `--env` only with `--publish`.
    pub fn settings(&self) -> anyhow::Result<crate::push::PushSettings> {
        let settings = self.image_settings()?;
        if !self.publish && !self.envs.is_empty() {
            return Err(crate::bad_input!(
                "--env names a deploy artifact tag: add --publish to publish one"
            ));
        }
        Ok(settings)
    }

    /// The push settings: where the image comes from, the reference (checked now, before any
    /// build), transport and credentials.
    fn image_settings(&self) -> anyhow::Result<crate::push::PushSettings> {
        use crate::push::ImageSource;
        let source = match (&self.from_layout, &self.from_archive) {
            (Some(dir), _) => ImageSource::Layout(dir.clone()),
            (None, Some(file)) => ImageSource::Archive(file.clone()),
            (None, None) => ImageSource::Build(self.image.settings()?),
        };
        let reference = self
            .reference
            .as_deref()
            .map(RegistryRef::parse)
            .transpose()?;
        Ok(crate::push::PushSettings {
            source,
            reference,
            registry: self.registry.settings(),
            sign: self.sign.settings()?,
        })
    }
}

impl RegistryArgs {
    /// Transport, parallelism, retry budget and credentials.
    pub fn settings(&self) -> crate::push::RegistrySettings {
        crate::push::RegistrySettings {
            transport: crate::registry::TransportOptions {
                plain_http: self.plain_http,
                ca_file: self.ca_file.clone(),
                max_connections: usize::from(self.jobs),
            },
            jobs: usize::from(self.jobs),
            retry_budget: self.retry_budget,
            auth: self.auth,
        }
    }
}

impl TrustArgs {
    pub fn settings(&self) -> crate::verify::TrustSettings {
        crate::verify::TrustSettings {
            certs: self.trust_certs.clone(),
            subject: self.subject.clone(),
        }
    }
}

impl DeployVerifyArgs {
    /// `--verify`, `--no-verify` or neither; the trust flags only with `--verify`.
    pub fn settings(&self) -> anyhow::Result<crate::verify::DeployVerify> {
        deploy_verify(self.verify, self.no_verify, &self.trust)
    }
}

impl FleetVerifyArgs {
    /// As `up`'s: `--verify`, `--no-verify` or neither; the trust flags only with `--verify`.
    pub fn settings(&self) -> anyhow::Result<crate::verify::DeployVerify> {
        deploy_verify(self.verify, self.no_verify, &self.trust)
    }
}

fn deploy_verify(
    verify: bool,
    no_verify: bool,
    trust: &TrustArgs,
) -> anyhow::Result<crate::verify::DeployVerify> {
    let trust = trust.settings();
    let given = !trust.certs.is_empty() || trust.subject.is_some();
    if given && !verify {
        return Err(crate::bad_input!(
            "--trust-cert and --subject say what --verify trusts: add --verify"
        ));
    }
    Ok(crate::verify::DeployVerify {
        verify: (verify || no_verify).then_some(verify),
        trust,
    })
}

impl VerifyArgs {
    /// The image (a registry reference, or a name in an archive), the trust (at least one
    /// certificate) and how to reach the registry.
    pub fn settings(&self) -> anyhow::Result<crate::verify::VerifySettings> {
        use crate::verify::Subject;
        let trust = self.trust.settings();
        if trust.certs.is_empty() {
            return Err(crate::bad_input!(
                "verify needs the certificates to trust: give --trust-cert FILE (the signers' root or intermediate CA certificate, PEM or DER; repeatable)"
            ));
        }
        let subject = match (&self.archive, &self.image) {
            (Some(file), image) => Subject::Archive {
                file: file.clone(),
                image: image.clone(),
            },
            (None, Some(image)) => Subject::Registry(RegistryRef::parse(image)?),
            (None, None) => unreachable!("clap requires IMAGE without --archive"),
        };
        Ok(crate::verify::VerifySettings {
            subject,
            trust,
            registry: self.registry.settings(),
        })
    }
}

impl ObjectArgs {
    /// Deploy settings that shape only the objects (no cluster is reached through them).
    pub fn settings(&self) -> anyhow::Result<crate::deploy::Settings> {
        let workload = self.workload.settings()?;
        crate::deploy::workload::require_tokens(&workload)?;
        Ok(crate::deploy::Settings {
            target: Default::default(),
            dir: self.dir.clone(),
            dry_run: false,
            diff: false,
            force_conflicts: false,
            prune: false,
            wait: false,
            timeout: std::time::Duration::from_secs(300),
            exposure: crate::cluster::expose::Exposure::None,
            secrets: Vec::new(),
            workload,
        })
    }

    /// The objects as publish makes them with every flag at its default (`push --publish`).
    pub fn defaults() -> Self {
        use clap::{CommandFactory, FromArgMatches};
        #[derive(Parser)]
        struct Only {
            #[command(flatten)]
            objects: ObjectArgs,
        }
        let matches = Only::command().get_matches_from(["spin-aks"]);
        Only::from_arg_matches(&matches)
            .expect("the defaults of the object flags parse")
            .objects
    }
}

impl PublishArgs {
    pub fn settings(&self) -> anyhow::Result<crate::deploy::artifact::PublishSettings> {
        Ok(crate::deploy::artifact::PublishSettings {
            image: self.image.clone(),
            repository: self.repository.clone(),
            envs: self.envs.clone(),
            objects: self.objects.settings()?,
            registry: self.registry.settings(),
            sign: self.sign.settings()?,
        })
    }
}

impl PushArgs {
    /// The deploy artifact's settings (`--publish`, `up --fleet`): the `--env` tags, the objects
    /// shaped by `objects`.
    pub fn publish_settings(
        &self,
        objects: crate::deploy::Settings,
    ) -> anyhow::Result<crate::deploy::artifact::PublishSettings> {
        Ok(crate::deploy::artifact::PublishSettings {
            image: None,
            repository: None,
            envs: self.envs.clone(),
            objects,
            registry: self.registry.settings(),
            sign: self.sign.settings()?,
        })
    }
}

impl FleetAddArgs {
    pub fn settings(&self) -> anyhow::Result<crate::fleet::AddSettings> {
        Ok(crate::fleet::AddSettings {
            clusters: self.clusters.clone(),
            kubeconfig: self.kubeconfig.clone(),
            namespace: self.namespace.clone(),
            env: self.env.clone(),
            interval: self.interval,
            timeout: self.timeout,
            insecure: self.insecure,
            secrets: self.secrets.clone(),
            objects: self.objects.settings()?,
            verify: self.verify.settings()?,
            mirror: (self.mirror.as_deref())
                .map(|given| mirror_setting(given, self.insecure))
                .transpose()?,
        })
    }
}

impl FleetRemoveArgs {
    pub fn settings(&self) -> crate::fleet::RemoveSettings {
        crate::fleet::RemoveSettings {
            clusters: self.clusters.clone(),
            kubeconfig: self.kubeconfig.clone(),
            delete_app: self.delete_app,
        }
    }
}

impl PromoteArgs {
    /// The promote settings; `app` is the global `--from`. `promote --from staging --to prod`
    /// reads as "from staging" but names the app: it is refused with the command meant.
    pub fn settings(
        &self,
        app: &std::path::Path,
    ) -> anyhow::Result<crate::fleet::promote::PromoteSettings> {
        let mistaken = validate::parse_dns_label(&app.to_string_lossy()).is_ok()
            && std::fs::symlink_metadata(app).is_err();
        let from = match &self.from_env {
            Some(from) if !mistaken => from.clone(),
            _ => {
                let env = match (&self.from_env, mistaken) {
                    (_, true) => app.to_string_lossy().into_owned(),
                    (Some(env), false) => env.clone(),
                    (None, false) => "<FROM_ENV>".to_string(),
                };
                return Err(crate::bad_input!(
                    "`--from` names the app's manifest (spin.toml), not the environment to promote from{}: write `spin-aks promote {env} --to {}`",
                    if mistaken { format!(", and `{}` is no file here", app.display()) } else { String::new() },
                    self.to
                ));
            }
        };
        Ok(crate::fleet::promote::PromoteSettings {
            from,
            to: self.to.clone(),
            kubeconfig: self.kubeconfig.clone(),
            registry: self.registry.settings(),
        })
    }
}

impl ReleaseArgs {
    /// The releases asked for, each a release version, the pinned one where none is given.
    pub fn releases(&self) -> anyhow::Result<crate::install::releases::ReleaseSet> {
        crate::install::releases::ReleaseSet::pinned(&crate::install::releases::Versions {
            cert_manager: self.cert_manager_version.clone(),
            runtime_class_manager: self.runtime_class_manager_version.clone(),
            spin_operator: self.spin_operator_version.clone(),
            shim: self.shim_version.clone(),
        })
    }
}

impl ClusterInstallArgs {
    /// The install settings: versions that are releases, the sources checked.
    pub fn settings(&self) -> anyhow::Result<crate::install::InstallSettings> {
        let releases = self.versions.releases()?;
        self.sources
            .settings(releases, self.plain_http, self.dry_run, self.timeout)
    }
}

impl ClusterCreateArgs {
    /// The creation's settings, every name checked before anything is asked of ARM.
    pub fn settings(&self) -> anyhow::Result<crate::provision::spec::CreateSettings> {
        use crate::provision::spec::{self, CreateSettings, RegistryWish};
        let target = &self.install.target;
        if target.kubeconfig.is_some() || target.context.is_some() || target.namespace.is_some() {
            return Err(crate::bad_input!(
                "cluster create makes an AKS cluster: --kubeconfig, --context and -n do not apply"
            ));
        }
        let aks = &target.aks;
        let required = |value: &Option<String>, flag: &str| {
            value.clone().ok_or_else(|| {
                crate::bad_input!("cluster create needs {flag}: the new cluster's {flag}")
            })
        };
        // Clap checked both names against Azure's rules (`azure::names`).
        Ok(CreateSettings {
            name: required(&aks.cluster, "--cluster")?,
            resource_group: required(&aks.resource_group, "--resource-group")?,
            location: self.location.as_deref().map(spec::location).transpose()?,
            node_count: self.node_count,
            node_vm_size: spec::vm_size(&self.node_vm_size)?,
            kubernetes_version: (self.kubernetes_version.as_deref())
                .map(spec::kubernetes_version)
                .transpose()?,
            registry: match &self.registry {
                // A name that could be neither an existing registry nor a new one's is refused
                // before ARM is asked anything.
                Some(name) => RegistryWish::Named(
                    names::parse_registry(name)
                        .map_err(|rule| crate::bad_input!("--registry {name:?}: {rule}"))?,
                ),
                None => RegistryWish::Default,
            },
            registry_sku: spec::registry_sku(&self.registry_sku)?,
            install: (!self.no_install)
                .then(|| self.install.settings())
                .transpose()?,
            dry_run: self.install.dry_run,
        })
    }
}

impl DevArgs {
    /// The dev settings; the `up` flags a redeploy loop cannot honour are refused.
    pub fn settings(&self) -> anyhow::Result<crate::dev::DevSettings> {
        let refused = [
            (self.push.from_layout.is_some(), "--from-layout"),
            (self.push.from_archive.is_some(), "--from-archive"),
            (self.push.publish, "--publish"),
            (!self.push.envs.is_empty(), "--env"),
            (self.deploy.dry_run == DryRun::Server, "--dry-run"),
            (self.deploy.no_wait, "--no-wait"),
            (self.deploy.diff, "--diff"),
        ];
        if let Some((_, flag)) = refused.iter().find(|(given, _)| *given) {
            return Err(crate::bad_input!(
                "dev builds the app and waits for every rollout, so it takes no {flag}: drop {flag} (or use `spin-aks up` for a one-off)"
            ));
        }
        Ok(crate::dev::DevSettings {
            debounce: self
                .debounce
                .map_or(crate::dev::Debounce::Saves, crate::dev::Debounce::Quiet),
            logs: !self.no_logs,
            delete_on_exit: self.delete_on_exit,
        })
    }
}

impl UpArgs {
    /// `up`'s settings: the push's, the deploy's, the SpinKube install it may run, what to
    /// verify, and the deploy artifact (`--publish`, `--fleet`); `--env` only with either.
    pub fn settings(&self) -> anyhow::Result<crate::install::up::UpSettings> {
        let push = self.push.image_settings()?;
        let deploy = self.deploy.settings()?;
        let spinkube = self.install_settings()?;
        let verify = self.deploy.verify.settings()?;
        if !self.fleet && !self.push.publish && !self.push.envs.is_empty() {
            return Err(crate::bad_input!(
                "--env names a deploy artifact tag: add --fleet (or --publish)"
            ));
        }
        let publish = (self.fleet || self.push.publish)
            .then(|| self.push.publish_settings(self.deploy.settings()?))
            .transpose()?;
        Ok(crate::install::up::UpSettings {
            push,
            deploy,
            spinkube,
            verify,
            publish,
            fleet: self.fleet,
            install_spinkube: self.install_spinkube,
        })
    }

    /// The install `up` runs on a cluster that cannot run SpinApps: the pinned releases, from
    /// the sources given (plain HTTP as the push's `--plain-http` says, or on loopback).
    fn install_settings(&self) -> anyhow::Result<crate::install::InstallSettings> {
        let releases = crate::install::releases::ReleaseSet::pinned(&Default::default())?;
        let timeout = std::time::Duration::from_secs(600);
        (self.install_sources).settings(releases, self.push.registry.plain_http, false, timeout)
    }
}

impl ExportArgs {
    /// `export`'s settings: `--out` names a file, not a directory; the deploy artifact's objects
    /// (`--with-deploy`) checked with the rest.
    pub fn settings(&self) -> anyhow::Result<crate::deploy::artifact::ExportSettings> {
        if let Some(path) = self.out.as_ref().filter(|path| path.is_dir()) {
            return Err(crate::bad_input!(
                "--out {} is a directory; name the archive file to write",
                path.display()
            ));
        }
        let build = self.image.settings()?;
        let sign = self.sign.settings()?;
        let carry = match &self.with_deploy {
            Some(repository) => Some(crate::deploy::artifact::CarrySettings {
                repository: repository.clone(),
                envs: match self.envs.as_slice() {
                    [] => vec![crate::deploy::artifact::DEFAULT_ENV.to_string()],
                    envs => envs.to_vec(),
                },
                objects: self.objects.settings()?,
            }),
            None => None,
        };
        Ok(crate::deploy::artifact::ExportSettings {
            build,
            sign,
            out: self.out.clone(),
            carry,
        })
    }
}

impl LogsArgs {
    /// How to read the logs; `--follow` streams text, so not with `--output json`.
    pub fn settings(&self, json: bool) -> anyhow::Result<crate::cluster::logs::LogOptions> {
        if json && self.follow {
            return Err(crate::bad_input!(
                "logs --follow streams text; drop --output json or --follow"
            ));
        }
        Ok(crate::cluster::logs::LogOptions {
            follow: self.follow,
            since: self.since,
            tail: self.tail,
        })
    }
}

impl SecretSetArgs {
    /// The variable to set. `secrets set api_key=…` or `secrets set api_key …` is refused
    /// without repeating the value.
    pub fn variable(&self) -> anyhow::Result<&str> {
        let name = self.variable.split('=').next().unwrap_or_default();
        if self.variable.contains('=') || !self.inline_value.is_empty() {
            return Err(crate::bad_input!(
                "`secrets set` takes no value on the command line, where it would land in your shell history; give the value of `{name}` on stdin, with --from-file FILE or --from-env VAR, or type it at the prompt"
            ));
        }
        Ok(&self.variable)
    }
}

impl InstallSourceArgs {
    /// A chart registry named as a registry host and path, a module proxy URL; plain HTTP only
    /// when asked for or on loopback.
    fn settings(
        &self,
        releases: crate::install::releases::ReleaseSet,
        plain_http: bool,
        dry_run: bool,
        timeout: std::time::Duration,
    ) -> anyhow::Result<crate::install::InstallSettings> {
        use crate::install::objects::ChartSource;
        let flux_registry = registry_path("--flux-registry", &self.flux_registry)?;
        let insecure = |registry: &str| registry_insecure(registry, plain_http);
        let mirror = (self.mirror.as_deref())
            .map(|given| mirror_setting(given, plain_http))
            .transpose()?;
        let charts = match (&self.chart_registry, &mirror) {
            (_, Some(mirror)) => ChartSource::Mirror {
                registry: mirror.repository(crate::install::mirror::CHARTS),
                insecure: mirror.insecure,
            },
            (None, None) => ChartSource::Publishers,
            (Some(given), None) => {
                let registry = registry_path("--chart-registry", given)?;
                ChartSource::Mirror {
                    insecure: insecure(&registry),
                    registry,
                }
            }
        };
        http_url("--module-proxy", &self.module_proxy, plain_http)?;
        Ok(crate::install::InstallSettings {
            releases,
            charts,
            module_proxy: self.module_proxy.clone(),
            flux_registry,
            mirror,
            dry_run,
            timeout,
        })
    }
}

/// `host[:port][/path]` of a registry given to `flag`: a repository path with a throwaway name
/// checks host and path as push does; its message shows the value with any credentials hidden
/// (they belong in the Docker config).
fn registry_path(flag: &str, given: &str) -> anyhow::Result<String> {
    let registry = given.trim_start_matches("oci://").trim_end_matches('/');
    RegistryRef::parse(&format!("{registry}/chart")).map_err(|e| {
        let shown = crate::oci::reference::shown(given);
        crate::bad_input!("{flag} `{shown}` is not a registry and path: {e:#}")
    })?;
    Ok(registry.to_string())
}

/// Plain HTTP to `registry`: when asked for, or on loopback.
fn registry_insecure(registry: &str, plain_http: bool) -> bool {
    let host = registry.split('/').next().unwrap_or_default();
    plain_http || crate::tls::is_loopback(host)
}

/// The mirror registry `--mirror` names, as `bundle push` filled it.
fn mirror_setting(given: &str, plain_http: bool) -> anyhow::Result<crate::install::mirror::Mirror> {
    let registry = registry_path("--mirror", given)?;
    Ok(crate::install::mirror::Mirror {
        insecure: registry_insecure(&registry, plain_http),
        registry,
    })
}

/// A URL with a host, `https://` (plain `http://` only on loopback or with `--plain-http`); its
/// login (a GOPROXY may carry one) is never repeated in a message.
pub(super) fn http_url(flag: &str, given: &str, plain_http: bool) -> anyhow::Result<url::Url> {
    let url = url::Url::parse(given)
        .ok()
        .filter(|url| url.has_host())
        .ok_or_else(|| {
            crate::bad_input!("{flag} is not a URL with a host: give an https:// URL")
        })?;
    let shown = crate::redact::redact_userinfo(url.as_str());
    // Paths are appended to it: a query or fragment would swallow them, and a control character
    // (which URL parsing drops without a word) means the value is not what was meant.
    if url.query().is_some() || url.fragment().is_some() || given.chars().any(char::is_control) {
        return Err(crate::bad_input!(
            "{flag} `{}` must be a base URL without `?`, `#` or control characters: paths are appended to it",
            crate::redact::redact_userinfo(url.as_str()).split(['?', '#']).next().unwrap_or_default()
        ));
    }
    let loopback = url.host_str().is_some_and(crate::tls::is_loopback);
    match url.scheme() {
        "https" => Ok(url),
        "http" if plain_http || loopback => Ok(url),
        _ => Err(crate::bad_input!(
            "{flag} `{shown}` must be https:// (plain http:// only on loopback or with --plain-http)"
        )),
    }
}
