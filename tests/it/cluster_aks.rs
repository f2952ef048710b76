//! apply against an AKS cluster chosen by name: the user kubeconfig comes from the fake ARM, in
//! memory, and its kubelogin exec user is replaced by a token from our credential chain (a fake
//! `az`), which the real API server of the kube rig accepts. No kubeconfig file, no kubelogin.

use crate::support;

use crate::support::apps::example_copy;
use crate::support::arm::{entra_user_kubeconfig, write_scoped_az, FakeArm};
use crate::support::rig::{fake_image, rig, Rig};

const ARM_TOKEN: &str = "arm-token-5e1b7a";
/// The token the rig's API server knows (scripts/kube-rig/start.sh, tokens.csv).
const AKS_TOKEN: &str = "spin-aks-rig-entra-token";
const AKS_SCOPE: &str = "6dae42f8-4368-4678-94ff-3960e28e3630/.default";
pub(crate) const SUB: &str = "33333333-0000-0000-0000-000000000003";

/// A fake ARM with one Entra cluster whose user kubeconfig names `server`, a fake `az` signing
/// in to ARM and AKS, and a private home with a copy of the example app.
pub(crate) struct Aks {
    pub(crate) arm: FakeArm,
    home: tempfile::TempDir,
    bin: tempfile::TempDir,
    app: std::path::PathBuf,
}

impl Aks {
    pub(crate) async fn start(rig: &Rig, cluster: &str, server: &str) -> Aks {
        let aks = Aks::empty().await;
        let ca = std::fs::read_to_string(rig.path("pki/ca.crt")).unwrap();
        aks.arm.add_cluster(
            SUB,
            "rg",
            cluster,
            true,
            &entra_user_kubeconfig(cluster, "rg", server, &ca),
        );
        aks
    }

    /// The private home (state file, app copy).
    pub(crate) fn home(&self) -> &std::path::Path {
        self.home.path()
    }

    /// Makes each cluster ARM creates a new private rig started with `modes`: the rig, once made.
    pub(crate) fn rigs_on_create(
        &self,
        modes: &'static [&'static str],
    ) -> std::sync::Arc<std::sync::Mutex<Option<crate::support::rig::PrivateRig>>> {
        let rig: std::sync::Arc<std::sync::Mutex<Option<_>>> = Default::default();
        let started = rig.clone();
        let provisioner: crate::support::arm::Provisioner = std::sync::Arc::new(move |_name| {
            let new = crate::support::rig::try_private_rig_with(modes)?;
            let kubeconfig = new.kubeconfig.clone();
            *started.lock().unwrap() = Some(new);
            Ok(kubeconfig)
        });
        self.arm
            .world(|w| w.provisioning.provisioner = Some(provisioner));
        rig
    }

    /// A fake ARM with one subscription and no cluster yet.
    pub(crate) async fn empty() -> Aks {
        let arm = FakeArm::start(ARM_TOKEN, AKS_TOKEN).await;
        arm.add_subscription(SUB, "Dev");
        let home = tempfile::tempdir().unwrap();
        let bin = tempfile::tempdir().unwrap();
        write_scoped_az(
            bin.path(),
            &[
                (&format!("{}/.default", arm.endpoint), ARM_TOKEN),
                (AKS_SCOPE, AKS_TOKEN),
            ],
        );
        let app = example_copy(home.path());
        Aks {
            arm,
            home,
            bin,
            app,
        }
    }

    /// A private cluster: the kubeconfig ARM hands out names an address this machine cannot
    /// reach, and run command's kubectl reaches the rig.
    async fn private(rig: &Rig, cluster: &str) -> Aks {
        let unreachable = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let aks = Aks::start(rig, cluster, &format!("https://{unreachable}")).await;
        aks.arm.cluster(cluster, |c| {
            c["properties"]["apiServerAccessProfile"] =
                serde_json::json!({"enablePrivateCluster": true});
            c["properties"]["privateFQDN"] =
                format!("{cluster}-dns-1a2b.privatelink.westeurope.azmk8s.io").into();
        });
        aks.arm
            .world(|w| w.run_command_kubeconfig = Some(rig.kubeconfig.clone()));
        aks
    }

    /// `spin-aks -f <app> <args> --output json` aimed at `cluster` in `ns`, with no kubeconfig,
    /// no kubelogin and no managed identity endpoint.
    pub(crate) fn command(&self, cluster: &str, ns: &str, args: &[&str]) -> std::process::Command {
        let mut cmd = self.azure(args);
        cmd.args(["--resource-group", "rg", "--cluster", cluster, "-n", ns]);
        cmd
    }

    /// `spin-aks -f <app> <args> --output json --subscription <the fake's>`, signed in to the fake
    /// ARM only.
    pub(crate) fn azure(&self, args: &[&str]) -> std::process::Command {
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_spin-aks"));
        cmd.env_clear()
            .env(
                "PATH",
                format!("{}:/usr/local/bin:/usr/bin:/bin", self.bin.path().display()),
            )
            .env("HOME", self.home.path())
            .env("SPIN_AKS_STATE_FILE", self.home.path().join("state"))
            .env("DOCKER_CONFIG", self.home.path().join("docker"))
            .env("SPIN_AKS_ARM_ENDPOINT", &self.arm.endpoint)
            .env("SPIN_AKS_ARM_DELAY_SCALE", "0")
            .env(
                "AZURE_POD_IDENTITY_AUTHORITY_HOST",
                format!("http://{closed}"),
            )
            .arg("-f")
            .arg(&self.app)
            .args(args)
            .args(["--output", "json", "--subscription", SUB]);
        cmd
    }
}

pub(crate) async fn run_blocking(mut cmd: std::process::Command) -> std::process::Output {
    tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn apply_to_an_entra_aks_cluster_by_name_without_kubelogin_or_a_kubeconfig() {
    let Some(rig) = rig() else { return };
    let aks = Aks::start(rig, "aks1", &rig.server()).await;
    let (arm, home) = (&aks.arm, aks.home.path());
    let ns = rig.namespace("aks");
    let spin_aks = |args: &[&str]| aks.command("aks1", &ns, args);
    let image = fake_image(40);
    let output = run_blocking(spin_aks(&[
        "apply",
        "--image",
        &image,
        "--secret",
        "api_token=x",
    ]))
    .await;
    let (stdout, stderr) = (
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
    assert!(output.status.success(), "{stderr}");
    let report: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(report["cluster"], "aks1");
    assert_eq!(report["rollout"]["ready"], 2);
    assert_eq!(arm.count("POST", "/subscriptions/33333333-0000-0000-0000-000000000003/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/aks1/listClusterUserCredential"), 1);
    let arm_calls = arm.total_requests();
    assert!(
        arm_calls <= 3,
        "apply on a chosen AKS cluster made {arm_calls} ARM calls"
    );
    for text in [
        &stdout,
        &stderr,
        &std::fs::read_to_string(home.join("state")).unwrap().into(),
    ] {
        assert!(
            !text.contains(AKS_TOKEN) && !text.contains(ARM_TOKEN),
            "a token leaked: {text}"
        );
    }
    assert!(
        std::fs::read_dir(home).unwrap().all(|e| !e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .contains("kube")),
        "no kubeconfig written"
    );

    // cluster check adds ARM's view: a kubelet that cannot pull from the app's ACR, and workload
    // identity off while the app reads Key Vault, each with its fix; one GET of the cluster.
    arm.add_registry(SUB, "rg", "shopacr", false);
    arm.cluster("aks1", |c| {
        c["properties"]["securityProfile"]["workloadIdentity"]["enabled"] = false.into()
    });
    let state_path = home.join("state");
    let mut state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&state_path).unwrap()).unwrap();
    let record = state["apps"]
        .as_object_mut()
        .unwrap()
        .values_mut()
        .next()
        .unwrap();
    record["last_pinned"] = format!("shopacr.azurecr.io/hello@sha256:{}", "a".repeat(64)).into();
    record["key_vault"] = "https://shop-kv.vault.azure.net/".into();
    std::fs::write(&state_path, state.to_string()).unwrap();
    let cluster_gets = || {
        arm.count("GET", "/subscriptions/33333333-0000-0000-0000-000000000003/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/aks1")
    };
    let gets_before = cluster_gets();
    let output = run_blocking(spin_aks(&["cluster", "check"])).await;
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report = crate::support::json_stdout(&output);
    let failed: Vec<(String, String)> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["ok"] == false)
        .map(|c| {
            (
                c["name"].as_str().unwrap().into(),
                c["fix"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(failed.len(), 2, "{failed:?}");
    assert_eq!(
        failed[0],
        (
            "kubelet-pull".into(),
            "spin-aks cluster attach-acr --registry shopacr".into()
        )
    );
    assert_eq!(failed[1].0, "workload-identity");
    assert!(
        failed[1]
            .1
            .contains("securityProfile.workloadIdentity.enabled"),
        "{failed:?}"
    );
    assert_eq!(
        cluster_gets() - gets_before,
        1,
        "the cluster is read once per command"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn apply_to_a_private_cluster_goes_through_run_command_and_waits_there() {
    let Some(rig) = rig() else { return };
    let aks = Aks::private(rig, "aksp").await;
    let arm = &aks.arm;
    let ns = rig.bare_namespace("private");
    let image = fake_image(41);
    let args = [
        "apply",
        "--image",
        &image,
        "--secret",
        "api_token=never-shown-7",
        "--timeout",
        "60s",
    ];
    let output = run_blocking(aks.command("aksp", &ns, &args)).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let report = crate::support::json_stdout(&output);
    assert_eq!(report["cluster"], "aksp");
    assert_eq!(report["namespace"], ns.as_str());
    assert_eq!(
        (
            report["rollout"]["ready"].as_i64(),
            report["rollout"]["desired"].as_i64()
        ),
        (Some(2), Some(2))
    );
    let kinds: Vec<&str> = report["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["Secret", "SpinApp"]);
    // The real kubectl applied it in the cluster: the operator's Deployment runs the image.
    assert_eq!(rig.running_image(&ns, "hello-aks"), fake_image(41));
    let commands = arm.world(|w| w.run_commands.clone());
    assert_eq!(
        commands.len(),
        1,
        "one run command: apply and wait together"
    );
    let command = commands[0]["command"].as_str().unwrap();
    assert!(
        command.lines().any(|line| line
            == format!("kubectl apply --server-side --field-manager=spin-aks -n {ns} -f app/")),
        "{command}"
    );
    assert_eq!(
        commands[0]["clusterToken"], AKS_TOKEN,
        "Entra clusters get the AKS server token"
    );
    let cluster_gets = arm.count("GET", "/subscriptions/33333333-0000-0000-0000-000000000003/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/aksp");
    assert_eq!(cluster_gets, 1, "the cluster is read once");
    let status = run_blocking(aks.command("aksp", &ns, &["status"])).await;
    let said = String::from_utf8_lossy(&status.stderr);
    assert!(status.status.success(), "{said}");
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(
        (
            status["cluster"].as_str(),
            status["kind"].as_str(),
            status["image"].as_str(),
            status["ready"].as_i64(),
            status["desired"].as_i64()
        ),
        (
            Some("aksp"),
            Some("SpinApp"),
            Some(fake_image(41).as_str()),
            Some(2),
            Some(2)
        ),
        "status through run command: {status}"
    );
    assert_eq!(status["conditions"][0]["type"], "Available");
    let logs = run_blocking(aks.command("aksp", &ns, &["logs"])).await;
    let said = String::from_utf8_lossy(&logs.stderr);
    assert_eq!(logs.status.code(), Some(1), "{said}");
    assert!(
        said.contains("cannot reach the cluster of context `aksp`")
            && said.contains("aksp's API server is private: run this from its virtual network"),
        "logs needs the API server, and says why it cannot reach it: {said}"
    );
    assert!(
        !String::from_utf8_lossy(&output.stdout).contains("never-shown-7")
            && !stderr.contains("never-shown-7")
    );
}

/// A SpinApp reading two variables from one Secret, in a directory for `--dir`.
fn two_secret_variables(dir: &std::path::Path) -> String {
    let variable = |name: &str| {
        format!("  - name: {name}\n    valueFrom: {{secretKeyRef: {{name: hello-aks-variables, key: {name}}}}}\n")
    };
    let text = format!(
        "apiVersion: core.spinkube.dev/v1alpha1\nkind: SpinApp\nmetadata: {{name: hello-aks}}\nspec:\n  image: replaced\n  executor: containerd-shim-spin\n  replicas: 1\n  variables:\n{}{}",
        variable("api_token"),
        variable("region_key")
    );
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("app.yaml"), text).unwrap();
    dir.display().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn run_command_keeps_live_secret_values_it_is_not_given_and_stops_when_a_required_one_has_none(
) {
    let Some(rig) = rig() else { return };
    let aks = Aks::private(rig, "aksr").await;
    let ns = rig.bare_namespace("private-secrets");
    let dir = two_secret_variables(&aks.home.path().join("objects"));
    let apply = |image: String, secrets: &[&str]| {
        let mut args = vec!["apply", "--dir", &dir, "--no-wait", "--image", &image];
        for secret in secrets {
            args.extend(["--secret", secret]);
        }
        aks.command("aksr", &ns, &args)
    };
    let secret_value = |key: &str| {
        let encoded = rig.kubectl_ok(&[
            "get",
            "secret",
            "hello-aks-variables",
            "-n",
            &ns,
            "-o",
            &format!("jsonpath={{.data.{key}}}"),
        ]);
        String::from_utf8(
            base64::Engine::decode(&base64::engine::general_purpose::STANDARD, encoded).unwrap(),
        )
        .unwrap()
    };

    let both = run_blocking(apply(
        fake_image(51),
        &["api_token=first-7c1", "region_key=kept-9d2"],
    ))
    .await;
    assert!(
        both.status.success(),
        "{}",
        String::from_utf8_lossy(&both.stderr)
    );
    let one = run_blocking(apply(fake_image(51), &["api_token=second-4e8"])).await;
    assert!(
        one.status.success(),
        "{}",
        String::from_utf8_lossy(&one.stderr)
    );
    assert_eq!(secret_value("api_token"), "second-4e8");
    assert_eq!(
        secret_value("region_key"),
        "kept-9d2",
        "a value not given now is kept"
    );

    let image = fake_image(51);
    let prune = [
        "apply",
        "--dir",
        &dir,
        "--no-wait",
        "--image",
        &image,
        "--prune",
    ];
    let pruned = run_blocking(aks.command("aksr", &ns, &prune)).await;
    assert!(
        pruned.status.success(),
        "{}",
        String::from_utf8_lossy(&pruned.stderr)
    );
    assert_eq!(
        secret_value("region_key"),
        "kept-9d2",
        "a prune keeps the Secret the workload reads, with no values given"
    );

    rig.kubectl_ok(&["delete", "secret", "hello-aks-variables", "-n", &ns]);
    let none = run_blocking(apply(fake_image(52), &["api_token=third-0a3"])).await;
    let stderr = String::from_utf8_lossy(&none.stderr);
    assert_eq!(none.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("region_key (key `region_key` of Secret hello-aks-variables)")
            && stderr.contains("nothing was applied"),
        "{stderr}"
    );
    let image = rig.kubectl_ok(&[
        "get",
        "spinapp",
        "hello-aks",
        "-n",
        &ns,
        "-o",
        "jsonpath={.spec.image}",
    ]);
    assert_eq!(image, fake_image(51), "the SpinApp was not applied again");
    let said = [&both, &one, &none]
        .iter()
        .map(|o| {
            format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            )
        })
        .collect::<String>();
    for value in ["first-7c1", "kept-9d2", "second-4e8", "third-0a3"] {
        assert!(!said.contains(value), "{value} leaked: {said}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn run_command_prunes_and_deletes_through_the_applyset_a_direct_apply_shares() {
    let Some(rig) = rig() else { return };
    let aks = Aks::private(rig, "akst").await;
    let ns = rig.bare_namespace("private-prune");
    let dir = aks.home.path().join("objects");
    std::fs::create_dir_all(&dir).unwrap();
    let spinapp = "apiVersion: core.spinkube.dev/v1alpha1\nkind: SpinApp\nmetadata: {name: hello-aks}\nspec: {image: replaced, executor: containerd-shim-spin, replicas: 1}\n";
    let with_extra = format!("{spinapp}---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: extra}}\ndata: {{a: b}}\n");
    let dir_arg = dir.display().to_string();
    let image = fake_image(53);
    let through_run_command = |extra: &[&str]| {
        let mut args = vec!["apply", "--dir", &dir_arg, "--image", &image, "--no-wait"];
        args.extend_from_slice(extra);
        aks.command("akst", &ns, &args)
    };
    let listed = || {
        rig.kubectl_ok(&[
            "get",
            "secret",
            "hello-aks-applyset",
            "-n",
            &ns,
            "-o",
            "jsonpath={.metadata.annotations.applyset\\.kubernetes\\.io/contains-group-kinds}",
        ])
    };
    let extra_exists = || {
        !rig.kubectl_ok(&[
            "get",
            "configmap",
            "-n",
            &ns,
            "--field-selector",
            "metadata.name=extra",
            "-o",
            "name",
        ])
        .is_empty()
    };

    let extra_deleted = || {
        rig.kubectl_ok(&[
            "wait",
            "--for=delete",
            "configmap/extra",
            "-n",
            &ns,
            "--timeout=30s",
        ])
    };

    std::fs::write(dir.join("app.yaml"), &with_extra).unwrap();
    let first = run_blocking(through_run_command(&[])).await;
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert_eq!(listed(), "ConfigMap,SpinApp.core.spinkube.dev");

    std::fs::write(dir.join("app.yaml"), spinapp).unwrap();
    let pruned = run_blocking(through_run_command(&["--prune"])).await;
    assert!(
        pruned.status.success(),
        "{}",
        String::from_utf8_lossy(&pruned.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&pruned.stdout).unwrap();
    let pruned_objects: Vec<_> = report["objects"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["action"] == "pruned")
        .map(|o| (o["kind"].as_str().unwrap(), o["name"].as_str().unwrap()))
        .collect();
    assert_eq!(pruned_objects, [("ConfigMap", "extra")]);
    extra_deleted();
    assert_eq!(listed(), "SpinApp.core.spinkube.dev");

    // What run command applied, a direct apply (from a network that reaches the API server) prunes.
    std::fs::write(dir.join("app.yaml"), &with_extra).unwrap();
    let again = run_blocking(through_run_command(&[])).await;
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert!(extra_exists());
    std::fs::write(dir.join("app.yaml"), spinapp).unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let direct = support::rig::spin_aks_on(rig, elsewhere.path())
        .arg("-f")
        .arg(&aks.app)
        .args([
            "apply",
            "--dir",
            &dir_arg,
            "-n",
            &ns,
            "--image",
            &image,
            "--prune",
            "--no-wait",
        ])
        .output()
        .unwrap();
    assert!(
        direct.status.success(),
        "{}",
        String::from_utf8_lossy(&direct.stderr)
    );
    extra_deleted();

    // delete through run command removes the set: its members and its parent, nothing else.
    let deleted = run_blocking(aks.command("akst", &ns, &["delete"])).await;
    assert!(
        deleted.status.success(),
        "{}",
        String::from_utf8_lossy(&deleted.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&deleted.stdout).unwrap();
    assert_eq!(report["cluster"], "akst");
    let deleted: Vec<_> = report["deleted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| (o["kind"].as_str().unwrap(), o["name"].as_str().unwrap()))
        .collect();
    assert_eq!(deleted, [("SpinApp", "hello-aks")]);
    rig.kubectl_ok(&[
        "wait",
        "--for=delete",
        "spinapp/hello-aks",
        "secret/hello-aks-applyset",
        "-n",
        &ns,
        "--timeout=30s",
    ]);
    let executor = rig.kubectl_ok(&["get", "spinappexecutors", "-n", &ns, "-o", "name"]);
    assert!(executor.contains("containerd-shim-spin"), "{executor}");
}

#[tokio::test(flavor = "multi_thread")]
async fn up_sets_up_the_workload_identity_the_app_needs_and_applies_key_vault_objects() {
    let Some(rig) = rig() else { return };
    let Some(registry) = support::registry::Registry::open() else {
        return;
    };
    let aks = Aks::start(rig, "aksk", &rig.server()).await;
    let arm = &aks.arm;
    arm.add_key_vault(SUB, "rg", "shop-kv");
    let ns = rig.bare_namespace("upkv");
    let reference = format!("{}/hello-aks", registry.host());
    let vault = "https://shop-kv.vault.azure.net/";
    let args = [
        "up",
        "-y",
        &reference,
        "--key-vault",
        vault,
        "--timeout",
        "60s",
    ];
    let output = run_blocking(aks.command("aksk", &ns, &args)).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("created identity hello-aks-identity"),
        "{stderr}"
    );
    let client_id = arm.world(|w| {
        w.identities[0]["properties"]["clientId"]
            .as_str()
            .unwrap()
            .to_string()
    });
    let annotated = rig.kubectl_ok(&[
        "get",
        "serviceaccount",
        "hello-aks",
        "-n",
        &ns,
        "-o",
        "jsonpath={.metadata.annotations.azure\\.workload\\.identity/client-id}",
    ]);
    assert_eq!(annotated, client_id);
    let class = rig.kubectl_ok(&[
        "get",
        "secretproviderclass",
        "hello-aks-key-vault",
        "-n",
        &ns,
        "-o",
        "jsonpath={.spec.parameters.clientID} {.spec.parameters.keyvaultName}",
    ]);
    assert_eq!(class, format!("{client_id} shop-kv"));
    let subject = arm.world(|w| {
        w.federated_credentials.values().flatten().next().unwrap()["properties"]["subject"].clone()
    });
    assert_eq!(subject, format!("system:serviceaccount:{ns}:hello-aks"));

    // The identity trusts that namespace only: another one is refused before anything is applied.
    let other = rig.bare_namespace("upkv-other");
    let output = run_blocking(aks.command("aksk", &other, &args)).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("trusts ServiceAccount {ns}/hello-aks"))
            && stderr.contains(&format!(
                "identity setup -n {other} --service-account hello-aks"
            )),
        "{stderr}"
    );
    let applied = rig.kubectl_ok(&[
        "get",
        "serviceaccounts,spinapps",
        "-n",
        &other,
        "-o",
        "name",
    ]);
    assert!(!applied.contains("hello-aks"), "{applied}");
}
