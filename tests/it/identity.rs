//! `spin-aks identity setup` through the real binary against the fake ARM: everything created once
//! and then only found, refusals before any write (cluster without OIDC issuer or workload
//! identity), missing rights named, a concurrent credential write waited out, the 20-credential limit.

use crate::support;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::support::arm_cli::{json, Rig};
use serde_json::json;

pub(crate) const SUB: &str = "44444444-0000-0000-0000-000000000004";
const KEY_VAULT_SECRETS_USER: &str = "4633458b-17de-408a-b874-0445c86b69e6";
const COSMOS_DATA_CONTRIBUTOR: &str = "00000000-0000-0000-0000-000000000002";
const VAULT_URL: &str = "https://shop-kv.vault.azure.net/";

/// A fake ARM with the cluster c1 (resource group rg1) that `cluster use` chose, and an app
/// named `Shop` (DNS name `shop`). Returns the rig and the app's spin.toml.
pub(crate) async fn rig() -> (Rig, PathBuf) {
    let rig = Rig::start(SUB).await;
    rig.arm.add_cluster(SUB, "rg1", "c1", false, "");
    let state = json!({"version": 1, "apps": {}, "last_cluster": {"subscription": SUB, "resourceGroup": "rg1", "name": "c1"}});
    std::fs::write(rig.state_path(), state.to_string()).unwrap();
    let app = rig.home.path().join("shop");
    std::fs::create_dir(&app).unwrap();
    std::fs::write(app.join("web.wasm"), b"\0asm\x01\0\0\0").unwrap();
    std::fs::write(
        app.join("spin.toml"),
        "spin_manifest_version = 2\n[application]\nname = \"Shop\"\n[[trigger.http]]\nroute = \"/...\"\ncomponent = \"web\"\n[component.web]\nsource = \"web.wasm\"\n",
    )
    .unwrap();
    let manifest = std::fs::canonicalize(app.join("spin.toml")).unwrap();
    (rig, manifest)
}

/// `identity setup -y -f <app>` and `extra`.
fn setup<'a>(app: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    [&["identity", "setup", "-y", "-f", app][..], extra].concat()
}

fn identity_id(name: &str) -> String {
    format!("/subscriptions/{SUB}/resourceGroups/rg1/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}")
}

fn issuer(rig: &Rig) -> String {
    rig.arm.world(|w| {
        w.clusters[0].resource["properties"]["oidcIssuerProfile"]["issuerURL"]
            .as_str()
            .unwrap()
            .to_string()
    })
}

#[tokio::test]
async fn setup_creates_identity_credential_and_roles_once_then_only_finds_them() {
    let (rig, manifest) = rig().await;
    let app = manifest.to_str().unwrap();
    rig.arm.add_key_vault(SUB, "rg-data", "a-kv");
    let vault_id = rig.arm.add_key_vault(SUB, "rg-data", "shop-kv");
    rig.arm.add_key_vault(SUB, "rg-data", "z-kv");
    let account_id = rig.arm.add_cosmos_account(SUB, "rg-data", "shop-db");
    rig.arm.world(|w| {
        w.page_size = 1; // every list is paged
        w.principal_delay = 2; // the new identity is not replicated yet
    });

    let args = [
        "--key-vault",
        VAULT_URL,
        "--cosmos",
        "shop-db",
        "--output",
        "json",
    ];
    let (code, stdout, stderr) = rig.run(&setup(app, &args)).await;
    assert_eq!(code, 0, "{stderr}");
    let report = json(&stdout);
    let identity = rig
        .arm
        .identity("shop-identity")
        .expect("the identity was created");
    assert_eq!(
        identity["location"], "westeurope",
        "in the cluster's location"
    );
    let id = identity["id"].as_str().unwrap();
    assert_eq!(
        id,
        identity_id("shop-identity"),
        "in the cluster's resource group"
    );
    let client_id = identity["properties"]["clientId"].as_str().unwrap();
    let principal = identity["properties"]["principalId"].as_str().unwrap();
    assert_eq!(report["identity"]["clientId"], client_id);
    assert_eq!(report["identity"]["principalId"], principal);
    assert_eq!(report["identity"]["resourceId"], id);
    assert_eq!(report["federatedCredential"]["action"], "created");
    assert_eq!(
        report["serviceAccount"],
        json!({"namespace": "default", "name": "shop"})
    );
    assert!(
        stderr.contains(&format!(
            "created identity shop-identity (client id {client_id})"
        )) && stderr.contains("created federated credential c1-default-shop")
            && stderr.contains("assigned Key Vault Secrets User on vault shop-kv")
            && stderr.contains(
                "assigned Cosmos DB Built-in Data Contributor on Cosmos DB account shop-db"
            ),
        "{stderr}"
    );

    let credentials = rig.arm.credentials_of(id);
    assert_eq!(credentials.len(), 1);
    assert_eq!(
        credentials[0]["properties"],
        json!({"issuer": issuer(&rig), "subject": "system:serviceaccount:default:shop", "audiences": ["api://AzureADTokenExchange"]})
    );
    assert_eq!(
        rig.arm.assignments_of(principal),
        vec![(
            vault_id.clone(),
            format!("/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/{KEY_VAULT_SECRETS_USER}")
        )],
        "Key Vault Secrets User on the vault, after the replication delay"
    );
    assert_eq!(rig.arm.world(|w| w.principal_delay), 0);
    let sql = rig.arm.world(|w| w.sql_role_assignments.clone());
    assert_eq!(sql.len(), 1, "the asynchronous assignment was waited for");
    assert_eq!(
        sql[0]["properties"],
        json!({"roleDefinitionId": format!("{account_id}/sqlRoleDefinitions/{COSMOS_DATA_CONTRIBUTOR}"), "scope": account_id, "principalId": principal})
    );
    assert_eq!(
        report["roles"],
        json!([
            {"role": "Key Vault Secrets User", "scope": vault_id, "action": "created"},
            {"role": "Cosmos DB Built-in Data Contributor", "scope": account_id, "action": "created"},
        ])
    );

    let state = rig.state();
    let remembered = &state["apps"][manifest.to_str().unwrap()];
    assert_eq!(
        remembered["identity"],
        json!({"resourceId": id, "clientId": client_id, "principalId": principal, "tenantId": support::arm::TENANT, "namespace": "default", "serviceAccount": "shop"})
    );
    assert_eq!(remembered["key_vault"], VAULT_URL);

    // Again, the vault now remembered: everything is found, nothing is written.
    let writes = rig.arm.writes();
    let (code, stdout, stderr) = rig.run(&setup(app, &["--cosmos", "shop-db"])).await;
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(rig.arm.writes(), writes, "a second run writes nothing");
    assert!(
        stderr.contains(&format!(
            "found identity shop-identity (client id {client_id})"
        )) && stderr.contains("found federated credential c1-default-shop")
            && stderr.contains("found Key Vault Secrets User on vault shop-kv")
            && stderr
                .contains("found Cosmos DB Built-in Data Contributor on Cosmos DB account shop-db"),
        "{stderr}"
    );
    assert!(
        stdout.contains(&format!(
            "(client id {client_id}) trusts system:serviceaccount:default:shop"
        )) && stdout.contains("scaffold, apply and up now give the app that ServiceAccount"),
        "{stdout}"
    );
}

#[tokio::test]
async fn a_cluster_without_oidc_issuer_and_workload_identity_is_refused_before_any_write() {
    let (rig, manifest) = rig().await;
    rig.arm.cluster("c1", |c| {
        c["properties"]["oidcIssuerProfile"] = json!({"enabled": false});
        c["properties"]["securityProfile"] = json!({});
    });
    let (code, _, stderr) = rig.run(&setup(manifest.to_str().unwrap(), &[])).await;
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("properties.oidcIssuerProfile.enabled")
            && stderr.contains("properties.securityProfile.workloadIdentity.enabled")
            && stderr.contains(
                "az aks update -g rg1 -n c1 --enable-oidc-issuer --enable-workload-identity"
            ),
        "{stderr}"
    );
    assert_eq!(rig.arm.writes(), 0);
    assert!(rig.state()["apps"].as_object().unwrap().is_empty());
}

#[tokio::test]
async fn missing_rights_name_the_role_that_grants_them() {
    let (rig, manifest) = rig().await;
    let app = manifest.to_str().unwrap();
    rig.arm.add_key_vault(SUB, "rg-data", "shop-kv");
    rig.arm.world(|w| w.deny_identity_writes = true);
    let args = setup(app, &["--key-vault", VAULT_URL]);
    let (code, _, stderr) = rig.run(&args).await;
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("cannot create the managed identity shop-identity in resource group rg1")
            && stderr.contains("Managed Identity Contributor"),
        "{stderr}"
    );
    assert!(rig.arm.identity("shop-identity").is_none());

    rig.arm.world(|w| {
        w.deny_identity_writes = false;
        w.deny_role_writes = true;
    });
    let (code, _, stderr) = rig.run(&args).await;
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("cannot give the identity Key Vault Secrets User on vault shop-kv")
            && stderr.contains("User Access Administrator"),
        "{stderr}"
    );
    assert!(
        rig.state()["apps"].as_object().unwrap().is_empty(),
        "a half-done setup is not remembered"
    );
}

#[tokio::test]
async fn a_credential_write_waits_for_another_write_on_the_same_identity_to_finish() {
    let (rig, manifest) = rig().await;
    // Another client is writing a federated credential on this identity.
    let key = identity_id("shop-identity").to_ascii_lowercase();
    rig.arm
        .world(|w| w.credential_writes_in_flight.insert(key.clone(), 1));
    let mut cmd = rig.command(&setup(manifest.to_str().unwrap(), &[]));
    cmd.env("SPIN_AKS_ARM_DELAY_SCALE", "0.1"); // retries 0.1 s, 0.2 s, 0.4 s… apart
    let setup = tokio::task::spawn_blocking(move || cmd.output().unwrap());

    let deadline = Instant::now() + Duration::from_secs(60);
    while rig.arm.world(|w| w.credential_conflicts) == 0 {
        assert!(
            Instant::now() < deadline,
            "the credential write never overlapped"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    rig.arm
        .world(|w| w.credential_writes_in_flight.insert(key.clone(), 0));

    let output = setup.await.unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("created federated credential c1-default-shop"),
        "{stderr}"
    );
    assert_eq!(
        rig.arm.credentials_of(&identity_id("shop-identity")).len(),
        1
    );
}

#[tokio::test]
async fn the_twenty_first_credential_on_one_identity_is_refused_with_what_to_do() {
    let (rig, manifest) = rig().await;
    let app = manifest.to_str().unwrap();
    for i in 0..20 {
        let namespace = format!("team{i}");
        let (code, _, stderr) = rig
            .run(&setup(app, &["--name", "shared", "-n", &namespace]))
            .await;
        assert_eq!(code, 0, "{stderr}");
    }
    let writes = rig.arm.writes();
    let (code, _, stderr) = rig
        .run(&setup(app, &["--name", "shared", "-n", "team20"]))
        .await;
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("already has 20 federated credentials")
            && stderr.contains("delete one it no longer needs")
            && stderr.contains("--name"),
        "{stderr}"
    );
    assert_eq!(rig.arm.writes(), writes, "refused before writing");
    assert_eq!(rig.arm.credentials_of(&identity_id("shared")).len(), 20);
}
