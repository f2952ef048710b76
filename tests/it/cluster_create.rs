//! `cluster create` and `cluster delete` through the binary against the fake ARM. Its cluster
//! creation stands up a bare rig with the real Flux controllers as the new cluster, so the whole
//! path create → install → check → up → delete runs; ARM's refusals come as ARM words them.

use serde_json::{json, Value};

use crate::cluster_aks::{run_blocking, Aks, SUB};
use crate::support::json_stdout;

const CLUSTERS: &str = "/providers/Microsoft.ContainerService/managedClusters";

fn cluster_path(group: &str, name: &str) -> String {
    format!("/subscriptions/{SUB}/resourceGroups/{group}{CLUSTERS}/{name}")
}

/// PUTs and DELETEs: requests that create, change or remove something.
fn changes(arm: &crate::support::arm::FakeArm) -> usize {
    arm.world(|w| {
        (w.requests.iter())
            .filter(|(key, _)| key.starts_with("PUT ") || key.starts_with("DELETE "))
            .map(|(_, n)| n)
            .sum()
    })
}

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn create_stands_up_a_ready_cluster_then_install_check_up_and_delete_run_on_it() {
    let Some(registry) = crate::support::registry::Registry::open() else {
        return;
    };
    let aks = Aks::empty().await;
    let rig = aks.rigs_on_create(&["--bare", "--flux"]);
    // The rig's chart registry and module proxy are known once it runs: the install reads them
    // from its rig.env, so the first create stops before the install and a second one installs.
    let create = |extra: &[&str]| {
        let mut cmd = aks.azure(&["cluster", "create", "-y", "--cluster", "spin1"]);
        cmd.args(["--resource-group", "rg-new", "--location", "West Europe"])
            .args(extra)
            .env("SPIN_AKS_ARM_DELAY_SCALE", "0.05");
        run_blocking(cmd)
    };
    let first = create(&["--no-install"]).await;
    if !first.status.success() {
        let why = stderr(&first);
        if why.contains("the kube rig did not start") {
            crate::support::skip(&why);
            return;
        }
        panic!("{why}");
    }
    let report = json_stdout(&first);
    let created = &report["created"];
    assert_eq!(created["plan"]["resource_group_created"], true, "{report}");
    assert_eq!(created["plan"]["cluster"]["action"], "create", "{report}");
    assert_eq!(
        created["plan"]["registry"],
        json!({"action": "create", "name": "spin1acr"})
    );
    assert_eq!(created["registry_login_server"], "spin1acr.azurecr.io");
    assert_eq!(created["acr_pull"], "created");
    let assignments = aks.arm.assignments_of("kubelet-spin1");
    assert_eq!(assignments.len(), 1, "{assignments:?}");
    let resource = aks.arm.world(|w| w.clusters[0].resource.clone());
    let properties = &resource["properties"];
    assert_eq!(resource["location"], "westeurope");
    assert_eq!(resource["tags"]["created-by"], "spin-aks");
    for (pointer, value) in [
        ("/oidcIssuerProfile/enabled", json!(true)),
        ("/securityProfile/workloadIdentity/enabled", json!(true)),
        ("/ingressProfile/webAppRouting/enabled", json!(true)),
        ("/agentPoolProfiles/0/osSKU", json!("AzureLinux")),
        ("/agentPoolProfiles/0/nodeLabels", json!({"spin": "true"})),
        ("/agentPoolProfiles/0/count", json!(2)),
    ] {
        assert_eq!(properties.pointer(pointer), Some(&value), "{pointer}");
    }
    let new = rig.lock().unwrap().take();
    let new = new.expect("the creation stood up a rig");
    let labelled = new.kubectl_ok(&["get", "nodes", "-l", "spin=true", "-o", "name"]);
    assert!(
        !labelled.trim().is_empty(),
        "the pool's label reached the nodes"
    );
    let charts = new.env("CHART_REGISTRY").unwrap();
    let proxy = new.env("MODULE_PROXY").unwrap();

    // Again, with the install: the cluster and registry are unchanged, only SpinKube is new.
    let puts = || aks.arm.count("PUT", &cluster_path("rg-new", "spin1"));
    assert_eq!(puts(), 1);
    let source = [
        "--chart-registry",
        &charts,
        "--module-proxy",
        &proxy,
        "--timeout",
        "5m",
    ];
    let second = create(&source).await;
    assert!(second.status.success(), "{}", stderr(&second));
    let report = json_stdout(&second);
    assert_eq!(
        report["created"]["plan"]["cluster"]["action"], "unchanged",
        "{report}"
    );
    assert_eq!(report["created"]["plan"]["resource_group_created"], false);
    assert_eq!(report["created"]["plan"]["registry"]["action"], "existing");
    assert_eq!(puts(), 1, "an unchanged cluster is not written");
    assert_eq!(report["install"]["aks"]["flux_extension_installed"], true);
    assert_eq!(
        report["install"]["aks"]["labelled_pools"],
        json!([]),
        "the pool was created labelled"
    );
    let stages: Vec<&str> = (report["install"]["stages"].as_array().unwrap().iter())
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        stages,
        [
            "cert-manager",
            "runtime-class-manager",
            "spin-operator",
            "shim"
        ]
    );

    // The cluster is remembered: later commands need no cluster flags.
    let ns = "shop";
    new.kubectl_ok(&["create", "namespace", ns]);
    let check = run_blocking(aks.azure(&["cluster", "check", "-n", ns])).await;
    let checks = json_stdout(&check);
    let failed: Vec<&Value> = (checks["checks"].as_array().unwrap().iter())
        .filter(|c| c["ok"] == false)
        .collect();
    assert!(failed.is_empty(), "{failed:?}");
    let reference = format!("{}/hello-created", registry.host());
    let up = run_blocking(aks.azure(&[
        "up",
        "-y",
        &reference,
        "-n",
        ns,
        "--secret",
        "api_token=x",
        "--timeout",
        "90s",
    ]))
    .await;
    assert!(up.status.success(), "{}", stderr(&up));
    let up = json_stdout(&up);
    assert_eq!(up["rollout"]["ready"], up["rollout"]["desired"], "{up}");
    let image = new.kubectl_ok(&[
        "get",
        "spinapp",
        "-n",
        ns,
        "-o",
        "jsonpath={.items[0].spec.image}",
    ]);
    assert!(
        image.starts_with(&reference) && image.contains("@sha256:"),
        "{image}"
    );

    let deleted = run_blocking(aks.azure(&[
        "cluster",
        "delete",
        "-y",
        "--resource-group",
        "rg-new",
        "--cluster",
        "spin1",
    ]))
    .await;
    assert!(deleted.status.success(), "{}", stderr(&deleted));
    assert_eq!(json_stdout(&deleted)["deleted"], true);
    assert!(aks.arm.world(|w| w.clusters.is_empty()));
    let state = std::fs::read_to_string(aks.home().join("state")).unwrap();
    assert!(
        !state.contains("\"spin1\""),
        "the deleted cluster is forgotten: {state}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn arm_refusals_of_a_creation_name_the_fix() {
    // (status, code, ARM's message, exit code, what the error must say)
    let cases = [
        (400, "QuotaExceeded", "Operation could not be completed as it results in exceeding approved standardDSv5Family Cores quota. Additional details - Deployment Model: Resource Manager, Location: westeurope, Current Limit: 2, Current Usage: 0, Additional Required: 4, (Minimum) New Limit Required: 4.", 1, "--node-count 1"),
        (400, "SkuNotAvailable", "The requested VM size for resource 'Following SKUs have failed for Capacity Restrictions: Standard_D2s_v5' is currently not available in location 'westeurope'. Please try another size or deploy to a different location or zones. See https://aka.ms/azureskunotavailable for details.", 2, "--node-vm-size Standard_D2s_v5 is not offered"),
        (400, "LocationNotAvailableForResourceType", "The provided location 'westeurope' is not available for resource type 'Microsoft.ContainerService/managedClusters'. List of available regions for the resource type is 'eastus,eastus2,northeurope'.", 2, "--location westeurope"),
        (403, "AuthorizationFailed", "The client 'dev@contoso.com' with object id '0a0a0a0a-1111-2222-3333-444444444444' does not have authorization to perform action 'Microsoft.ContainerService/managedClusters/write' over scope '/subscriptions/33333333-0000-0000-0000-000000000003/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/c1' or the scope is invalid.", 1, "Azure Kubernetes Service Contributor Role"),
        (409, "MissingSubscriptionRegistration", "The subscription is not registered to use namespace 'Microsoft.ContainerService'. See https://aka.ms/rps-not-found for how to register subscriptions.", 1, "Resource providers"),
    ];
    for (status, code, message, exit, fix) in cases {
        let aks = Aks::empty().await;
        aks.arm.world(|w| {
            w.provisioning.refuse_creation = Some((status, code.into(), message.into()));
        });
        let mut cmd = aks.azure(&["cluster", "create", "-y", "--cluster", "c1"]);
        cmd.args([
            "--resource-group",
            "rg",
            "--location",
            "westeurope",
            "--no-install",
        ]);
        let output = run_blocking(cmd).await;
        let text = stderr(&output);
        assert_eq!(output.status.code(), Some(exit), "{code}: {text}");
        assert!(text.contains(fix), "{code}: {text}");
        assert!(
            text.contains(code) && text.contains(&message[..40]),
            "{code} keeps ARM's words: {text}"
        );
        assert!(aks.arm.world(|w| w.clusters.is_empty()));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn nothing_is_written_without_a_confirmation_a_free_name_or_valid_flags() {
    let aks = Aks::empty().await;
    aks.arm
        .world(|w| w.provisioning.taken_registry_names.push("takenacr".into()));
    let base = [
        "cluster",
        "create",
        "--cluster",
        "c1",
        "--resource-group",
        "rg",
    ];
    let west = ["--location", "westeurope"];
    // (flags beside --cluster and --resource-group, what the error says): each exit 2, nothing written
    let cases: [(&[&str], &str); 7] = [
        (&west, "pass -y to confirm"),
        (
            &["-y", "--location", "westeurope", "--registry", "takenacr"],
            "the registry name takenacr is taken",
        ),
        (
            &["-y", "--location", "westeurope", "--registry", "my-acr"],
            "--registry \"my-acr\"",
        ),
        (
            &[
                "-y",
                "--location",
                "westeurope",
                "--node-vm-size",
                "Standard D2",
            ],
            "--node-vm-size \"Standard D2\"",
        ),
        (
            &[
                "-y",
                "--location",
                "westeurope",
                "--kubernetes-version",
                "latest",
            ],
            "--kubernetes-version \"latest\"",
        ),
        (
            &["-y", "--location", "west_europe"],
            "--location \"west_europe\"",
        ),
        (
            &["-y", "--location", "westeurope", "--kubeconfig", "/tmp/k"],
            "--kubeconfig",
        ),
    ];
    for (extra, says) in cases {
        let mut cmd = aks.azure(&base);
        cmd.args(extra);
        let output = run_blocking(cmd).await;
        let text = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{extra:?}: {text}");
        assert!(text.contains(says), "{extra:?}: {text}");
        assert_eq!(changes(&aks.arm), 0, "{extra:?} wrote to ARM");
    }
    let dry = run_blocking({
        let mut cmd = aks.azure(&base);
        cmd.args(west).arg("--dry-run");
        cmd
    })
    .await;
    assert!(dry.status.success(), "{}", stderr(&dry));
    let plan = json_stdout(&dry);
    assert_eq!(plan["plan"]["cluster"]["action"], "create", "{plan}");
    assert_eq!(
        plan["plan"]["registry"],
        json!({"action": "create", "name": "c1acr"})
    );
    assert_eq!(changes(&aks.arm), 0, "a dry run wrote to ARM");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_existing_cluster_gets_only_what_it_lacks_after_a_running_operation_ends() {
    let aks = Aks::empty().await;
    aks.arm.add_cluster(SUB, "rg", "old", false, "");
    aks.arm.add_registry(SUB, "rg", "shopacr", false);
    // It lacks the app routing add-on, runs 3 nodes, and another operation holds it twice.
    aks.arm.cluster("old", |c| {
        c["properties"]["agentPoolProfiles"][0]["count"] = json!(3);
    });
    aks.arm.world(|w| w.provisioning.busy_writes = 2);
    let mut cmd = aks.azure(&["cluster", "create", "-y", "--cluster", "old"]);
    cmd.args(["--resource-group", "rg", "--no-install"]);
    let output = run_blocking(cmd).await;
    let text = stderr(&output);
    assert!(output.status.success(), "{text}");
    assert!(
        text.contains("another operation is running on old"),
        "{text}"
    );
    let report = json_stdout(&output);
    assert_eq!(
        report["created"]["plan"]["cluster"],
        json!({"action": "update", "enable": ["app routing add-on"]})
    );
    assert_eq!(
        report["created"]["plan"]["registry"]["login_server"],
        "shopacr.azurecr.io"
    );
    let kept = report["created"]["plan"]["kept"].to_string();
    assert!(kept.contains("3 node(s), not 2"), "{kept}");
    assert_eq!(aks.arm.count("PUT", &cluster_path("rg", "old")), 3);
    let properties = aks
        .arm
        .world(|w| w.clusters[0].resource["properties"].clone());
    assert_eq!(
        properties["ingressProfile"]["webAppRouting"]["enabled"],
        true
    );
    assert_eq!(
        properties["agentPoolProfiles"][0]["count"], 3,
        "the pool is kept"
    );
    assert_eq!(
        properties["fqdn"],
        "old-dns-abc123.hcp.westeurope.azmk8s.io"
    );

    // Now complete: a re-run writes nothing to the cluster.
    let again = run_blocking({
        let mut cmd = aks.azure(&["cluster", "create", "-y", "--cluster", "old"]);
        cmd.args(["--resource-group", "rg", "--no-install"]);
        cmd
    })
    .await;
    assert!(again.status.success(), "{}", stderr(&again));
    assert_eq!(
        json_stdout(&again)["created"]["plan"]["cluster"]["action"],
        "unchanged"
    );
    assert_eq!(aks.arm.count("PUT", &cluster_path("rg", "old")), 3);

    // `cluster delete` deletes only what spin-aks created.
    let refused = run_blocking(aks.azure(&[
        "cluster",
        "delete",
        "-y",
        "--resource-group",
        "rg",
        "--cluster",
        "old",
    ]))
    .await;
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    assert!(stderr(&refused).contains("was not created by spin-aks"));
    assert_eq!(aks.arm.count("DELETE", &cluster_path("rg", "old")), 0);
}
