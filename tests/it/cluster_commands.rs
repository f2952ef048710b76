//! `spin-aks cluster …` through the real binary against the fake ARM, signed in by a fake `az`:
//! choosing with and without state and `-y`, get-credentials with real kubectl through the exec
//! plugin, attach-acr's cases, throttled and paged listings, cached reads, no token in any output.

use crate::support;

use std::os::unix::fs::PermissionsExt;

use crate::support::arm::{acr_pull, entra_user_kubeconfig};
use crate::support::arm_cli::{json, Rig, AKS_TOKEN};
use crate::support::kubeapi::FakeKubeApi;

const SUB: &str = "11111111-0000-0000-0000-000000000001";
const SUB2: &str = "22222222-0000-0000-0000-000000000002";

async fn rig() -> Rig {
    Rig::start(SUB).await
}

#[tokio::test]
async fn use_lists_candidates_without_state_then_remembers_the_choice_and_repeats_it() {
    let rig = rig().await;
    rig.arm.add_cluster(SUB, "rg1", "c1", false, "");
    rig.arm.add_cluster(SUB, "rg2", "c2", true, "");
    rig.arm.add_registry(SUB, "rg1", "reg1", false);
    rig.arm.add_registry(SUB, "rg2", "reg2", false);

    let (code, _, stderr) = rig.run(&["cluster", "use", "-y"]).await;
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("several AKS clusters")
            && stderr.contains("c1 (resource group rg1")
            && stderr.contains("c2 (resource group rg2"),
        "{stderr}"
    );
    assert!(!rig.state_path().exists(), "nothing remembered on failure");

    let (code, stdout, stderr) = rig
        .run(&[
            "cluster",
            "use",
            "-y",
            "--cluster",
            "c2",
            "--registry",
            "reg2",
            "--output",
            "json",
        ])
        .await;
    assert_eq!(code, 0, "{stderr}");
    let report = json(&stdout);
    assert_eq!(report["cluster"]["resourceGroup"], "rg2");
    assert_eq!(report["entra"], true);
    assert_eq!(report["registry"], "reg2.azurecr.io");
    let state = rig.state();
    assert_eq!(state["last_cluster"]["name"], "c2");
    assert_eq!(state["last_cluster"]["subscription"], SUB);
    assert_eq!(state["last_registry"], "reg2.azurecr.io");

    // -y now takes the remembered cluster and registry: no subscription or cluster listing.
    let before_subscriptions = rig.arm.count("GET", "/subscriptions");
    let before_lists = rig.arm.count(
        "GET",
        &format!("/subscriptions/{SUB}/providers/Microsoft.ContainerService/managedClusters"),
    );
    let (code, stdout, stderr) = rig.run(&["cluster", "use", "-y", "--output", "json"]).await;
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(json(&stdout)["cluster"]["name"], "c2");
    assert_eq!(json(&stdout)["registry"], "reg2.azurecr.io");
    assert_eq!(rig.arm.count("GET", "/subscriptions"), before_subscriptions);
    assert_eq!(
        rig.arm.count(
            "GET",
            &format!("/subscriptions/{SUB}/providers/Microsoft.ContainerService/managedClusters")
        ),
        before_lists
    );
}

#[tokio::test]
async fn use_with_a_cluster_under_yes_leaves_an_undecided_registry_to_the_first_push() {
    let rig = rig().await;
    rig.arm.add_cluster(SUB, "rg1", "c1", false, "");
    rig.arm.add_cluster(SUB, "rg2", "c2", false, "");
    rig.arm.add_registry(SUB, "rg1", "reg1", false);
    rig.arm.add_registry(SUB, "rg2", "reg2", false);

    // Only a cluster was asked for: it is chosen, the registry is not (no error for it).
    let args = [
        "cluster",
        "use",
        "-y",
        "--cluster",
        "c1",
        "--output",
        "json",
    ];
    let (code, stdout, stderr) = rig.run(&args).await;
    assert_eq!(code, 0, "{stderr}");
    let report = json(&stdout);
    assert_eq!(report["cluster"]["name"], "c1");
    assert_eq!(report["registry"], serde_json::Value::Null);
    assert!(
        stderr.contains("several container registries")
            && stderr.contains("reg1, reg2")
            && stderr.contains("--registry NAME"),
        "{stderr}"
    );
    let state = rig.state();
    assert_eq!(state["last_cluster"]["name"], "c1");
    assert!(
        state.get("last_registry").is_none_or(|r| r.is_null()),
        "{state}"
    );

    // The first push under -y cannot choose either, and says how to.
    let app = support::apps::example_copy(rig.home.path());
    let (code, _, stderr) = rig.run(&["-f", app.to_str().unwrap(), "push", "-y"]).await;
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("several container registries and none remembered")
            && stderr.contains("reg2 (reg2.azurecr.io)")
            && stderr.contains("a reference (`spin-aks push <registry>/<repository>[:tag]`)"),
        "{stderr}"
    );

    // Once a registry is remembered, -y takes it again, as the only one would be.
    let args = [
        "cluster",
        "use",
        "-y",
        "--registry",
        "reg2",
        "--output",
        "json",
    ];
    let (code, stdout, stderr) = rig.run(&args).await;
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        json(&stdout)["cluster"]["name"],
        "c1",
        "the remembered cluster"
    );
    let args = [
        "cluster",
        "use",
        "-y",
        "--cluster",
        "c2",
        "--output",
        "json",
    ];
    let (code, stdout, stderr) = rig.run(&args).await;
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(json(&stdout)["registry"], "reg2.azurecr.io");
}

#[tokio::test]
async fn several_subscriptions_need_azure_subscription_id_and_an_unknown_cluster_is_bad_input() {
    let rig = rig().await;
    rig.arm.add_subscription(SUB2, "Prod");
    rig.arm.add_cluster(SUB2, "rg", "only", false, "");

    let (code, _, stderr) = rig.run(&["cluster", "use", "-y"]).await;
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("several subscriptions") && stderr.contains(SUB2),
        "{stderr}"
    );

    let mut cmd = rig.command(&["cluster", "use", "-y", "--output", "json"]);
    cmd.env("AZURE_SUBSCRIPTION_ID", SUB2);
    let output = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report = json(&String::from_utf8_lossy(&output.stdout));
    assert_eq!(
        report["cluster"]["name"], "only",
        "the only cluster is taken"
    );
    assert_eq!(report["registry"], serde_json::Value::Null);

    let (code, _, stderr) = rig
        .run(&[
            "cluster",
            "use",
            "-y",
            "--subscription",
            SUB2,
            "--cluster",
            "nope",
        ])
        .await;
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("--cluster nope: no such AKS cluster"),
        "{stderr}"
    );
}

#[tokio::test]
async fn throttled_and_paged_listings_are_followed_and_reads_are_cached_within_a_command() {
    let rig = rig().await;
    for i in 0..5 {
        rig.arm.add_cluster(SUB, "rg", &format!("c{i}"), false, "");
    }
    rig.arm.add_registry(SUB, "rg", "reg", false);
    let clusters_path =
        format!("/subscriptions/{SUB}/providers/Microsoft.ContainerService/managedClusters");
    rig.arm.world(|w| {
        w.page_size = 2;
        w.throttle.insert(clusters_path.clone(), 2);
    });
    let (code, stdout, stderr) = rig
        .run(&[
            "cluster",
            "use",
            "-y",
            "--subscription",
            SUB,
            "--cluster",
            "c4",
            "--output",
            "json",
        ])
        .await;
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        json(&stdout)["cluster"]["name"],
        "c4",
        "found on the last page"
    );
    // 2 throttled + 3 pages (5 clusters, 2 per page).
    assert_eq!(rig.arm.count("GET", &clusters_path), 5);
    // The registry list is read twice by the command (any registries? then choose) but fetched once.
    let registries_path =
        format!("/subscriptions/{SUB}/providers/Microsoft.ContainerRegistry/registries");
    assert_eq!(rig.arm.count("GET", &registries_path), 1);
    assert_eq!(rig.arm.count("GET", &format!("/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/c4")), 1);
}

#[tokio::test]
async fn get_credentials_merges_an_exec_plugin_context_that_real_kubectl_uses() {
    let Some(kubectl) = support::tool("kubectl") else {
        return;
    };
    let rig = rig().await;
    let api = FakeKubeApi::start(AKS_TOKEN).await;
    rig.arm.add_cluster(
        SUB,
        "rg1",
        "c1",
        true,
        &entra_user_kubeconfig("c1", "rg1", &api.server, &api.ca_pem),
    );
    let file = rig.home.path().join("kube/config");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    let other = "apiVersion: v1\nkind: Config\nclusters:\n- name: other\n  cluster:\n    server: https://other.example:6443\n    insecure-skip-tls-verify: true\ncontexts:\n- name: other\n  context:\n    cluster: other\n    user: other\nusers:\n- name: other\n  user:\n    token: other-users-token\ncurrent-context: other\n";
    std::fs::write(&file, other).unwrap();
    let file_arg = file.to_str().unwrap();
    let args = [
        "cluster",
        "get-credentials",
        "-y",
        "--subscription",
        SUB,
        "--resource-group",
        "rg1",
        "--cluster",
        "c1",
        "--file",
        file_arg,
        "--output",
        "json",
    ];

    let (code, stdout, stderr) = rig.run(&args).await;
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(json(&stdout)["outcome"], "added");
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let written = std::fs::read_to_string(&file).unwrap();
    assert!(
        written.contains("other-users-token") && written.contains("https://other.example:6443"),
        "{written}"
    );
    assert!(
        !written.contains("kubelogin") && written.contains("--server-id"),
        "{written}"
    );

    // Real kubectl runs `spin-aks cluster token` (no kubelogin anywhere) and the API server accepts it.
    let mut cmd = std::process::Command::new(&kubectl);
    cmd.args(["--kubeconfig", file_arg, "get", "--raw", "/version"])
        .env_clear()
        .env("PATH", rig.bin.path())
        .env("HOME", rig.home.path());
    let output = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("v1.33.0-fake"), "{stdout}");
    assert_eq!(
        api.seen.lock().unwrap().last().map(String::as_str),
        Some(AKS_TOKEN)
    );

    // Same content again: unchanged. Different server under the same names: refused, then overwritten.
    let (code, stdout, _) = rig.run(&args).await;
    assert_eq!(
        (code, json(&stdout)["outcome"].clone()),
        (0, "unchanged".into())
    );
    rig.arm.world(|w| {
        w.clusters[0].user_kubeconfig =
            entra_user_kubeconfig("c1", "rg1", "https://moved.example:443", &api.ca_pem)
    });
    let before = std::fs::read(&file).unwrap();
    let (code, _, stderr) = rig.run(&args).await;
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("--overwrite-existing") && stderr.contains(file_arg),
        "{stderr}"
    );
    assert_eq!(std::fs::read(&file).unwrap(), before);
    let mut overwrite = args.to_vec();
    overwrite.push("--overwrite-existing");
    let (code, stdout, stderr) = rig.run(&overwrite).await;
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(json(&stdout)["outcome"], "replaced");
    let written = std::fs::read_to_string(&file).unwrap();
    assert!(written.contains("moved.example") && written.contains("other-users-token"));
}

#[tokio::test]
async fn token_prints_an_exec_credential_in_the_requested_api_version() {
    let rig = rig().await;
    let mut cmd = rig.command(&["cluster", "token"]);
    cmd.env("KUBERNETES_EXEC_INFO", r#"{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1","spec":{"interactive":false}}"#);
    let output = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // The ExecCredential kubectl reads, not a report: no schema of ours.
    let credential: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(credential["apiVersion"], "client.authentication.k8s.io/v1");
    assert_eq!(credential["kind"], "ExecCredential");
    assert_eq!(credential["status"]["token"], AKS_TOKEN);
    let expiry = credential["status"]["expirationTimestamp"]
        .as_str()
        .unwrap();
    assert!(humantime::parse_rfc3339(expiry).unwrap() > std::time::SystemTime::now());

    let mut cmd = rig.command(&["cluster", "token"]);
    cmd.env(
        "KUBERNETES_EXEC_INFO",
        r#"{"apiVersion":"client.authentication.k8s.io/v1alpha1"}"#,
    );
    let output = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(output.stdout.is_empty());
}

#[tokio::test]
async fn attach_acr_assigns_acr_pull_to_the_kubelet_identity_once() {
    let rig = rig().await;
    rig.arm.add_cluster(SUB, "rg1", "c1", false, "");
    let registry = rig.arm.add_registry(SUB, "rg1", "reg1", false);
    let args = [
        "cluster",
        "attach-acr",
        "-y",
        "--cluster",
        "c1",
        "--subscription",
        SUB,
        "--registry",
        "reg1.azurecr.io",
        "--output",
        "json",
    ];
    let (code, stdout, stderr) = rig.run(&args).await;
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(json(&stdout)["assignment"], "created");
    assert_eq!(
        rig.arm.assignments_of("kubelet-c1"),
        vec![(registry.clone(), acr_pull(SUB))]
    );
    assert!(
        rig.arm.assignments_of("cluster-identity-c1").is_empty(),
        "not the cluster identity"
    );

    let (code, stdout, _) = rig.run(&args).await;
    assert_eq!(
        (code, json(&stdout)["assignment"].clone()),
        (0, "existing".into())
    );
    let puts: usize = rig.arm.world(|w| {
        w.requests
            .iter()
            .filter(|(k, _)| k.starts_with("PUT "))
            .map(|(_, n)| n)
            .sum()
    });
    assert_eq!(puts, 1, "listed first, nothing re-created");
    assert_eq!(rig.state()["last_registry"], "reg1.azurecr.io");
}

#[tokio::test]
async fn attach_acr_counts_role_assignment_exists_as_success() {
    let rig = rig().await;
    rig.arm.add_cluster(SUB, "rg1", "c1", false, "");
    rig.arm.add_registry(SUB, "rg1", "reg1", false);
    let args = [
        "cluster",
        "attach-acr",
        "-y",
        "--subscription",
        SUB,
        "--output",
        "json",
    ];
    assert_eq!(rig.run(&args).await.0, 0);
    rig.arm.world(|w| w.stale_role_lists = true);
    let (code, stdout, stderr) = rig.run(&args).await;
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        json(&stdout)["assignment"],
        "existing",
        "409 RoleAssignmentExists"
    );
    assert_eq!(rig.arm.assignments_of("kubelet-c1").len(), 1);
}

#[tokio::test]
async fn attach_acr_waits_out_replication_delay_with_new_names() {
    let rig = rig().await;
    rig.arm.add_cluster(SUB, "rg1", "c1", false, "");
    rig.arm.add_registry(SUB, "rg1", "reg1", false);
    rig.arm.world(|w| w.principal_delay = 3);
    let (code, stdout, stderr) = rig
        .run(&[
            "cluster",
            "attach-acr",
            "-y",
            "--cluster",
            "c1",
            "--subscription",
            SUB,
            "--output",
            "json",
        ])
        .await;
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(json(&stdout)["assignment"], "created");
    let puts: Vec<String> = rig.arm.world(|w| {
        w.requests
            .keys()
            .filter(|k| k.starts_with("PUT "))
            .cloned()
            .collect()
    });
    assert_eq!(puts.len(), 4, "a new GUID per try: {puts:?}");
}

#[tokio::test]
async fn attach_acr_without_permission_names_the_roles_and_abac_registries_are_explained() {
    let rig = rig().await;
    rig.arm.add_cluster(SUB, "rg1", "c1", false, "");
    rig.arm.add_registry(SUB, "rg1", "reg1", false);
    rig.arm.add_registry(SUB, "rg1", "abac", true);
    rig.arm.world(|w| w.deny_role_writes = true);
    let base = [
        "cluster",
        "attach-acr",
        "-y",
        "--cluster",
        "c1",
        "--subscription",
        SUB,
        "--registry",
    ];
    let (code, _, stderr) = rig.run(&[&base[..], &["reg1"]].concat()).await;
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("AuthorizationFailed")
            && stderr.contains("Microsoft.Authorization/roleAssignments/write"),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "Owner, User Access Administrator or Role Based Access Control Administrator"
        ),
        "{stderr}"
    );

    let (code, _, stderr) = rig.run(&[&base[..], &["abac"]].concat()).await;
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("AbacRepositoryPermissions")
            && stderr.contains("ignore AcrPull")
            && stderr.contains("Container Registry Repository Reader"),
        "{stderr}"
    );
    assert!(rig.arm.assignments_of("kubelet-c1").is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_first_push_without_a_reference_picks_the_chosen_subscriptions_registry() {
    let Some(registry) = support::registry::Registry::open() else {
        return;
    };
    let rig = rig().await;
    let host = registry.host();
    rig.arm.world(|w| {
        w.registries.push(serde_json::json!({
            "id": format!("/subscriptions/{SUB}/resourceGroups/rg1/providers/Microsoft.ContainerRegistry/registries/local"),
            "name": "local",
            "location": "westeurope",
            "properties": {"loginServer": host},
        }))
    });
    std::fs::write(
        rig.state_path(),
        serde_json::json!({"version": 1, "last_cluster": {"subscription": SUB, "resourceGroup": "rg1", "name": "c1"}}).to_string(),
    )
    .unwrap();
    let app = support::apps::example_copy(rig.home.path());
    let app = app.to_str().unwrap();
    let (code, stdout, stderr) = rig
        .run(&["-f", app, "push", "-y", "--output", "json"])
        .await;
    assert_eq!(code, 0, "{stderr}");
    let pushed = format!("{host}/hello-aks");
    assert!(stderr.contains(&format!("pushing to {pushed}")), "{stderr}");
    assert!(
        json(&stdout)["reference"]
            .as_str()
            .unwrap()
            .starts_with(&pushed),
        "{stdout}"
    );
    assert_eq!(rig.state()["last_registry"], host.as_str());
}
