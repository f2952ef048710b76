//! Tests the objects built for an app: names, where variables come from in either workload kind,
//! Key Vault's two modes, and a store URL that stays out of the files.

use serde_json::json;

use super::*;
use crate::app::{Component, Trigger, Variable};
use crate::oci::reference::ImageRef;
use crate::workload::key_vault::{IdentityOptions, KeyVaultOptions};

fn options(kind: WorkloadKind) -> WorkloadOptions {
    WorkloadOptions {
        kind,
        image: ImageRef::parse("myacr.azurecr.io/app:1").unwrap(),
        namespace: None,
        key_vault: None,
        identity: None,
        settings: WorkloadSettings::for_tests(),
    }
}

fn app() -> App {
    let variable = |default: Option<&str>, required, secret| Variable {
        default: default.map(str::to_string),
        required,
        secret,
        description: None,
    };
    App {
        dir: "/app".into(),
        manifest_path: "/app/spin.toml".into(),
        manifest: toml::Table::new(),
        name: "My App".to_string(),
        version: Some("1.0.0".to_string()),
        description: None,
        authors: Vec::new(),
        trigger_settings: BTreeMap::new(),
        variables: BTreeMap::from([
            ("plain".to_string(), variable(Some("x"), false, false)),
            ("token".to_string(), variable(None, true, true)),
            (
                "key".to_string(),
                variable(Some("s3cr3t-default"), false, true),
            ),
        ]),
        triggers: vec![Trigger {
            id: "t".into(),
            trigger_type: "redis".into(),
            component: Some("worker".into()),
            settings: serde_json::Map::from_iter([(
                "address".to_string(),
                json!("redis://u:pw@host:6379"),
            )]),
        }],
        components: vec![Component {
            id: "worker".into(),
            ..Component::default()
        }],
    }
}

#[test]
fn dns_name_lowercases_replaces_and_trims() {
    assert_eq!(dns_name("My App"), "my-app");
    assert_eq!(dns_name("__Shop__Backend--"), "shop-backend");
    assert_eq!(dns_name("***"), "spin-app");
    assert_eq!(dns_name(&"a".repeat(80)).len(), 63);
}

#[test]
fn secret_and_required_variables_come_from_a_secret_never_as_values() {
    let workload = build(&app(), &options(WorkloadKind::Spinapp));
    let spinapp = workload.objects[0].to_value();
    assert_eq!(spinapp["metadata"]["name"], "my-app");
    let vars = &spinapp["spec"]["variables"];
    assert_eq!(
        vars[0],
        json!({"name": "key", "valueFrom": {"secretKeyRef": {"name": "my-app-variables", "key": "key", "optional": true}}})
    );
    assert_eq!(vars[1], json!({"name": "plain", "value": "x"}));
    assert_eq!(vars[2]["valueFrom"]["secretKeyRef"]["key"], "token");
    assert_eq!(vars[3]["name"], "redis_address");
    assert!(
        !spinapp.to_string().contains("s3cr3t"),
        "a secret default is never written"
    );
    let warnings = workload.warnings.join("\n");
    assert!(warnings.contains("`My App` is not a valid Kubernetes name"));
    assert!(
        warnings.contains("redis://***@host:6379"),
        "credentials are redacted: {warnings}"
    );
    assert!(!warnings.contains("pw"));
}

#[test]
fn deployment_maps_variables_to_spin_variable_env_and_runs_on_the_runtime_class() {
    let workload = build(&app(), &options(WorkloadKind::Deployment));
    let kinds: Vec<String> = workload
        .objects
        .iter()
        .map(|o| o.to_value()["kind"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(kinds, ["Deployment", "Service"]);
    let deployment = workload.objects[0].to_value();
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["runtimeClassName"], "wasmtime-spin-v2");
    assert_eq!(pod["containers"][0]["command"], json!(["/"]));
    assert_eq!(pod["containers"][0]["ports"][0]["containerPort"], 80);
    assert_eq!(
        pod["containers"][0]["env"][1],
        json!({"name": "SPIN_VARIABLE_PLAIN", "value": "x"})
    );
}

fn with_key_vault(mut options: WorkloadOptions, mode: KeyVaultMode) -> WorkloadOptions {
    options.key_vault = Some(KeyVaultOptions {
        vault: crate::azure::vault::Vault::parse("https://shop-kv.vault.azure.net/").unwrap(),
        mode,
    });
    options.identity = Some(IdentityOptions {
        client_id: "11111111-2222-3333-4444-555555555555".into(),
        tenant_id: "72f988bf-86f1-41af-91ab-2d7cd011db47".into(),
        service_account: "my-app".into(),
    });
    options
}

fn kinds(workload: &Workload) -> Vec<String> {
    workload
        .objects
        .iter()
        .map(|o| o.to_value()["kind"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn key_vault_csi_maps_secret_variables_to_dashed_vault_names_and_syncs_them() {
    for kind in [WorkloadKind::Spinapp, WorkloadKind::Deployment] {
        let opts = with_key_vault(options(kind), KeyVaultMode::Csi);
        let workload = build(&app(), &opts);
        let objects: Vec<_> = workload.objects.iter().map(Object::to_value).collect();
        let account = &objects[0];
        assert_eq!(account["kind"], "ServiceAccount");
        assert_eq!(
            account["metadata"]["annotations"]["azure.workload.identity/client-id"],
            "11111111-2222-3333-4444-555555555555"
        );
        let class = &objects[1];
        assert_eq!(class["kind"], "SecretProviderClass");
        assert_eq!(class["metadata"]["name"], "my-app-key-vault");
        let params = &class["spec"]["parameters"];
        assert_eq!(params["keyvaultName"], "shop-kv");
        let listed = params["objects"].as_str().unwrap();
        assert!(
            listed.contains(
                "objectName: redis-address\n    objectType: secret\n    objectAlias: redis_address"
            ),
            "{listed}"
        );
        let synced: Vec<&str> = class["spec"]["secretObjects"][0]["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["key"].as_str().unwrap())
            .collect();
        assert_eq!(synced, ["key", "token", "redis_address"]);
        assert!(
            !objects.iter().any(|o| o["kind"] == "Secret"),
            "no Secret objects: the driver syncs it"
        );
        let text = serde_json::to_string(&objects).unwrap();
        assert!(text.contains("secrets-store.csi.k8s.io"));
        assert!(text.contains("\"azure.workload.identity/use\":\"true\""));
        assert!(
            !text.contains("s3cr3t"),
            "a secret default is never written"
        );
    }
}

#[test]
fn key_vault_provider_mode_configures_spin_and_sets_no_secret_variables() {
    let opts = with_key_vault(options(WorkloadKind::Spinapp), KeyVaultMode::Provider);
    let workload = build(&app(), &opts);
    assert_eq!(kinds(&workload), ["Secret", "ServiceAccount", "SpinApp"]);
    let secret = workload.objects[0].to_value();
    assert!(secret["stringData"]["runtime-config.toml"]
        .as_str()
        .unwrap()
        .contains("azure_key_vault"));
    let spec = &workload.objects[2].to_value()["spec"];
    assert_eq!(
        spec["runtimeConfig"]["loadFromSecret"],
        "my-app-runtime-config"
    );
    assert_eq!(spec["serviceAccountName"], "my-app");
    assert_eq!(spec["variables"], json!([{"name": "plain", "value": "x"}]));
    assert!(workload
        .warnings
        .iter()
        .any(|w| w.contains("all of key, plain, token must exist")));
}

#[test]
fn a_redis_store_url_goes_only_into_a_secret_kept_out_of_the_files() {
    let mut opts = options(WorkloadKind::Deployment);
    opts.settings.kv_stores = vec![crate::workload::runtime_config::parse_kv_store(
        "default=redis:redis://:pw@cache:6379",
    )
    .unwrap()];
    let workload = build(&app(), &opts);
    let files = serde_json::to_string(
        &workload
            .objects
            .iter()
            .map(Object::to_value)
            .collect::<Vec<_>>(),
    )
    .unwrap();
    assert!(!files.contains("pw@cache"), "{files}");
    assert!(
        files.contains("my-app-runtime-config"),
        "the pod still mounts it"
    );
    let secret = workload.secrets[0].to_value();
    assert!(secret["stringData"]["runtime-config.toml"]
        .as_str()
        .unwrap()
        .contains("redis://:pw@cache:6379"));
}
