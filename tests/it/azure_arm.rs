//! The ARM pipeline functions in-process against the fake ARM: AKS credentials in memory used by a
//! real kube Client (no kubelogin), run command with the real kubectl, retries that are safe only.

use crate::support;
use crate::support::alone;

use crate::support::arm::{entra_user_kubeconfig, write_scoped_az, FakeArm};
use crate::support::kubeapi::FakeKubeApi;
use spin_aks::azure::aks::user_kubeconfig;
use spin_aks::azure::arm::{Arm, ArmError};
use spin_aks::azure::run_command;
use spin_aks::azure::ClusterRef;

const ARM_TOKEN: &str = "arm-token-in-process";
const AKS_TOKEN: &str = "aks-token-in-process";
const AKS_SCOPE: &str = "6dae42f8-4368-4678-94ff-3960e28e3630/.default";
const SUB: &str = "33333333-0000-0000-0000-000000000003";
const VARS: &[&str] = &[
    "PATH",
    "SPIN_AKS_ARM_ENDPOINT",
    "SPIN_AKS_ARM_DELAY_SCALE",
    "AZURE_POD_IDENTITY_AUTHORITY_HOST",
    "AZURE_TENANT_ID",
    "AZURE_CLIENT_ID",
    "AZURE_CLIENT_SECRET",
    "AZURE_FEDERATED_TOKEN_FILE",
    "AZURE_AUTHORITY_HOST",
    "IDENTITY_ENDPOINT",
    "IDENTITY_HEADER",
];

struct Env {
    arm: FakeArm,
    _bin: tempfile::TempDir,
}

/// A fake ARM and an environment whose only sign-in is a fake `az` (PATH holds nothing else);
/// only in a test's own process ([`alone`]).
async fn env() -> Env {
    alone::assert_in_child();
    for name in VARS {
        std::env::remove_var(name);
    }
    let arm = FakeArm::start(ARM_TOKEN, AKS_TOKEN).await;
    arm.add_subscription(SUB, "Dev");
    let bin = tempfile::tempdir().unwrap();
    let arm_scope = format!("{}/.default", arm.endpoint);
    write_scoped_az(
        bin.path(),
        &[(&arm_scope, ARM_TOKEN), (AKS_SCOPE, AKS_TOKEN)],
    );
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    std::env::set_var("PATH", bin.path());
    std::env::set_var("SPIN_AKS_ARM_ENDPOINT", &arm.endpoint);
    std::env::set_var("SPIN_AKS_ARM_DELAY_SCALE", "0");
    std::env::set_var(
        "AZURE_POD_IDENTITY_AUTHORITY_HOST",
        format!("http://{closed}"),
    );
    Env { arm, _bin: bin }
}

fn cluster(name: &str) -> ClusterRef {
    ClusterRef {
        subscription: SUB.into(),
        resource_group: "rg".into(),
        name: name.into(),
    }
}

fn cluster_path(name: &str) -> String {
    format!("/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/{name}")
}

#[tokio::test]
async fn entra_cluster_credentials_reach_the_api_server_as_a_bearer_token_without_kubelogin() {
    if alone::ran_in_child() {
        return;
    }
    let env = env().await;
    let api = FakeKubeApi::start(AKS_TOKEN).await;
    let kubeconfig = entra_user_kubeconfig("c1", "rg", &api.server, &api.ca_pem);
    env.arm.add_cluster(SUB, "rg", "c1", true, &kubeconfig);
    let arm = Arm::from_env().unwrap();

    let config = user_kubeconfig(&arm, &cluster("c1")).await.unwrap();
    let user = config.auth_infos[0].auth_info.as_ref().unwrap();
    assert!(user.exec.is_none(), "the kubelogin exec block is gone");
    let options = kube::config::KubeConfigOptions::default();
    let config = kube::Config::from_custom_kubeconfig(config, &options)
        .await
        .unwrap();
    let client = kube::Client::try_from(config).unwrap();
    let version = client.apiserver_version().await.unwrap();
    assert_eq!(version.git_version, "v1.33.0-fake");
    assert_eq!(api.seen.lock().unwrap().as_slice(), [AKS_TOKEN]);
}

fn app_files() -> Vec<(String, Vec<u8>)> {
    vec![
        (
            "kustomization.yaml".into(),
            b"resources:\n- configmap.yaml\n".to_vec(),
        ),
        (
            "configmap.yaml".into(),
            b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: demo-from-zip\ndata:\n  a: b\n"
                .to_vec(),
        ),
    ]
}

#[tokio::test]
async fn run_command_unzips_the_context_and_runs_kubectl_there_with_a_cluster_token_for_entra() {
    if alone::ran_in_child() {
        return;
    }
    let env = env().await;
    if support::tool("kubectl").is_none() {
        return;
    }
    env.arm.add_cluster(SUB, "rg", "entra", true, "");
    env.arm.add_cluster(SUB, "rg", "local", false, "");
    let arm = Arm::from_env().unwrap();

    let result = run_command::run(&arm, &cluster("entra"), "kubectl kustomize .", &app_files())
        .await
        .unwrap();
    assert_eq!(result.exit_code, 0, "{}", result.logs);
    assert!(
        result.logs.contains("name: demo-from-zip"),
        "{}",
        result.logs
    );
    let local = run_command::run(&arm, &cluster("local"), "kubectl kustomize .", &app_files())
        .await
        .unwrap();
    assert_eq!(local.exit_code, 0, "{}", local.logs);
    let sent = env.arm.world(|w| w.run_commands.clone());
    assert_eq!(sent[0]["clusterToken"], AKS_TOKEN);
    assert!(
        sent[1].get("clusterToken").is_none(),
        "only Entra clusters get a clusterToken"
    );
    // One GET of each cluster (cached), one POST each, and the results polled.
    assert_eq!(env.arm.count("GET", &cluster_path("entra")), 1);
    assert_eq!(
        env.arm
            .count("POST", &format!("{}/runCommand", cluster_path("entra"))),
        1
    );
}

#[tokio::test]
async fn a_failing_remote_command_returns_its_exit_code_and_logs() {
    if alone::ran_in_child() {
        return;
    }
    let env = env().await;
    if support::tool("kubectl").is_none() {
        return;
    }
    env.arm.add_cluster(SUB, "rg", "c1", false, "");
    let arm = Arm::from_env().unwrap();
    let result = run_command::run(
        &arm,
        &cluster("c1"),
        "kubectl kustomize not-there",
        &app_files(),
    )
    .await
    .unwrap();
    assert_ne!(result.exit_code, 0);
    let err = result.success("kubectl kustomize").unwrap_err().to_string();
    assert!(
        err.contains("failed in the cluster") && err.contains("not-there"),
        "{err}"
    );
}

#[tokio::test]
async fn disabled_run_command_is_explained_without_calling_it() {
    if alone::ran_in_child() {
        return;
    }
    let env = env().await;
    env.arm.add_cluster(SUB, "rg", "c1", false, "");
    env.arm.cluster("c1", |c| {
        c["properties"]["apiServerAccessProfile"] =
            serde_json::json!({"enablePrivateCluster": true, "disableRunCommand": true});
    });
    let arm = Arm::from_env().unwrap();
    let err = run_command::run(&arm, &cluster("c1"), "kubectl version --client", &[])
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("disableRunCommand") && err.contains("run command is disabled"),
        "{err}"
    );
    assert_eq!(
        env.arm
            .count("POST", &format!("{}/runCommand", cluster_path("c1"))),
        0
    );
}

#[tokio::test]
async fn server_errors_are_retried_for_reads_but_a_run_command_is_never_sent_twice() {
    if alone::ran_in_child() {
        return;
    }
    let env = env().await;
    env.arm.add_cluster(SUB, "rg", "c1", false, "");
    let run_path = format!("{}/runCommand", cluster_path("c1"));
    env.arm.world(|w| {
        w.server_errors.insert(cluster_path("c1"), 2);
        w.server_errors.insert(run_path.clone(), 1);
    });
    let arm = Arm::from_env().unwrap();
    let managed = arm.cluster(&cluster("c1")).await.unwrap();
    assert_eq!(managed.name, "c1");
    arm.cluster(&cluster("c1")).await.unwrap();
    assert_eq!(
        env.arm.count("GET", &cluster_path("c1")),
        3,
        "2 failures, 1 success, then cached"
    );

    let err = run_command::run(&arm, &cluster("c1"), "kubectl version --client", &[])
        .await
        .unwrap_err();
    let arm_error = err.downcast_ref::<ArmError>().expect("an ARM error");
    assert_eq!(arm_error.code, "InternalServerError");
    assert!(err
        .to_string()
        .starts_with("InternalServerError: Encountered internal server error"));
    assert_eq!(env.arm.count("POST", &run_path), 1);
}

#[tokio::test]
async fn a_remembered_cluster_costs_one_arm_call_for_in_memory_credentials() {
    if alone::ran_in_child() {
        return;
    }
    let env = env().await;
    let api = FakeKubeApi::start(AKS_TOKEN).await;
    let kubeconfig = entra_user_kubeconfig("c1", "rg", &api.server, &api.ca_pem);
    env.arm.add_cluster(SUB, "rg", "c1", true, &kubeconfig);
    let arm = Arm::from_env().unwrap();
    let state = spin_aks::state::State {
        last_cluster: Some(cluster("c1")),
        ..Default::default()
    };
    let selector = spin_aks::context::choose::ClusterSelector::default();
    let mode = spin_aks::context::choose::Mode::Defaults;
    let chosen = spin_aks::context::choose::resolve_cluster(&arm, &selector, &state, mode)
        .await
        .unwrap();
    assert_eq!(chosen, cluster("c1"));
    assert_eq!(env.arm.total_requests(), 0, "the state file answers");
    user_kubeconfig(&arm, &chosen).await.unwrap();
    assert_eq!(
        env.arm.total_requests(),
        1,
        "listClusterUserCredential only"
    );
}
