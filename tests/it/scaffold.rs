//! `spin-aks scaffold` end to end: every renderer's output (snapshots), re-run safety (three-way
//! merge), bad input, and independence from any cluster.

use crate::support;

use std::path::Path;

use crate::support::scaffold::*;

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

// ---------- snapshots of every renderer ----------

#[test]
fn example_app_as_plain_yaml() {
    let app = example_app();
    scaffold_ok(&app, &["--type", "kube"]);
    insta::assert_snapshot!(render_tree(&app.dir.join("deploy")));
}

#[test]
fn example_app_as_kustomize_tree() {
    let app = example_app();
    scaffold_ok(
        &app,
        &[
            "--type",
            "kustomize",
            "--image",
            "myacr.azurecr.io/hello-aks:0.1.0",
        ],
    );
    insta::assert_snapshot!(render_tree(&app.dir.join("deploy")));
}

#[test]
fn example_app_as_helm_chart() {
    let app = example_app();
    scaffold_ok(
        &app,
        &[
            "--type",
            "helm",
            "--image",
            "myacr.azurecr.io/hello-aks:0.1.0",
        ],
    );
    insta::assert_snapshot!(render_tree(&app.dir.join("deploy")));
}

#[test]
fn example_app_as_deployment_on_the_runtime_class() {
    let app = example_app();
    scaffold_ok(
        &app,
        &[
            "--workload",
            "deployment",
            "--runtime-class",
            "wasmtime-spin",
        ],
    );
    insta::assert_snapshot!(render_tree(&app.dir.join("deploy")));
}

#[test]
fn example_app_dockerfile_copies_every_referenced_path() {
    let app = example_app();
    scaffold_ok(
        &app,
        &[
            "--dockerfile",
            "--image",
            "myacr.azurecr.io/hello-aks:0.1.0",
        ],
    );
    let dockerfile = std::fs::read_to_string(app.dir.join("Dockerfile")).unwrap();
    let dockerignore = std::fs::read_to_string(app.dir.join(".dockerignore")).unwrap();
    insta::assert_snapshot!(format!(
        "=== Dockerfile ===\n{dockerfile}=== .dockerignore ===\n{dockerignore}"
    ));
}

#[test]
fn shop_app_as_deployment_with_stores_autoscaling_and_probes() {
    let app = shop_app();
    let mut args = vec![
        "--workload",
        "deployment",
        "--namespace",
        "shop",
        "--image",
        "myacr.azurecr.io/shop:2.1.0",
        "--autoscale",
        "--cpu-limit",
        "500m",
        "--memory-limit",
        "128Mi",
        "--max-replicas",
        "6",
        "--health-path",
        "/api/health",
        "--image-pull-secret",
        "acr-pull",
    ];
    args.extend_from_slice(SHOP_STORES);
    let output = scaffold_ok(&app, &args);
    let warnings = stderr(&output);
    assert!(warnings.contains(
        "`Shop_Backend` is not a valid Kubernetes name; the objects are named `shop-backend`"
    ));
    assert!(
        warnings.contains("kubectl create secret generic shop-backend-variables"),
        "{warnings}"
    );
    assert!(warnings.contains("redis trigger address"), "{warnings}");
    insta::assert_snapshot!(render_tree(&app.dir.join("deploy")));
}

#[test]
fn shop_app_as_spinapp_reading_secrets_from_key_vault() {
    let app = shop_app();
    let mut args = vec![
        "--type",
        "kustomize",
        "--image",
        "myacr.azurecr.io/shop:2.1.0",
        "--namespace",
        "shop",
        "--key-vault",
        "https://shop-vault.vault.azure.net/",
        "--service-account",
        "shop-identity",
        "--cpu-limit",
        "1",
        "--memory-request",
        "64Mi",
        "--overlay",
        "staging",
    ];
    args.extend_from_slice(SHOP_STORES);
    scaffold_ok(&app, &args);
    let tree = render_tree(&app.dir.join("deploy"));
    assert!(tree.contains("azure.workload.identity/use: \"true\""));
    assert!(tree.contains("objectName: db-password"), "`_` maps to `-`");
    assert!(
        !tree.contains("name: shop-backend-variables"),
        "with Key Vault no variable comes from a Secret users fill by hand"
    );
    insta::assert_snapshot!(tree);
}

#[test]
fn shop_app_as_helm_chart_with_resources_and_stores() {
    let app = shop_app();
    let mut args = vec![
        "--type",
        "helm",
        "--image",
        "myacr.azurecr.io/shop:2.1.0",
        "--replicas",
        "3",
        "--cpu-limit",
        "250m",
    ];
    args.extend_from_slice(SHOP_STORES);
    scaffold_ok(&app, &args);
    insta::assert_snapshot!(render_tree(&app.dir.join("deploy")));
}

#[test]
fn unconfigured_store_labels_are_warned_about_with_the_flag_to_add() {
    let app = shop_app();
    let output = scaffold_ok(&app, &[]);
    let warnings = stderr(&output);
    assert!(
        warnings.contains(
            "uses the key-value store `cache`, which nothing configures; add --kv-store cache="
        ),
        "{warnings}"
    );
    assert!(
        warnings.contains(
            "uses the SQLite database `orders`, which nothing configures; add --sqlite orders="
        ),
        "{warnings}"
    );
    assert!(
        warnings.contains(
            "store `default`, which nothing configures (Spin keeps it in a file inside each pod"
        ),
        "an unconfigured default store is per pod: {warnings}"
    );
}

#[test]
fn secret_values_never_appear_in_generated_files() {
    let app = shop_app();
    scaffold_ok(&app, &["--type", "helm"]);
    let tree = render_tree(&app.dir.join("deploy"));
    // api_key has a default but is secret: referenced, never written.
    assert!(!tree.contains("dev-key"), "{tree}");
    assert!(tree.contains("key: api_key"));
}

// ---------- re-run safety ----------

#[test]
fn rerun_with_the_same_inputs_rewrites_nothing() {
    let app = example_app();
    let args = [
        "--type",
        "helm",
        "--dockerfile",
        "--image",
        "myacr.azurecr.io/hello-aks:1",
    ];
    scaffold_ok(&app, &args);
    let deploy = app.dir.join("deploy");
    let before = read_tree(&deploy);
    let mtimes = |dir: &Path| -> Vec<std::time::SystemTime> {
        walkdir::WalkDir::new(dir)
            .sort_by_file_name()
            .into_iter()
            .map(|e| e.unwrap().metadata().unwrap().modified().unwrap())
            .collect()
    };
    let times = mtimes(&deploy);
    let docker_before = std::fs::read(app.dir.join("Dockerfile")).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    scaffold_ok(&app, &args);
    assert_eq!(read_tree(&deploy), before);
    assert_eq!(
        mtimes(&deploy),
        times,
        "an unchanged re-run must not rewrite files"
    );
    assert_eq!(
        std::fs::read(app.dir.join("Dockerfile")).unwrap(),
        docker_before
    );
}

#[test]
fn user_edit_is_kept_while_the_image_updates() {
    let app = example_app();
    scaffold_ok(&app, &["--image", "myacr.azurecr.io/hello-aks:1"]);
    let file = app.dir.join("deploy/hello-aks.yaml");
    let edited = std::fs::read_to_string(&file).unwrap().replace(
        "  replicas: 2\n",
        "  replicas: 5\n  podAnnotations:\n    team: web\n",
    );
    std::fs::write(&file, edited).unwrap();

    scaffold_ok(&app, &["--image", "myacr.azurecr.io/hello-aks:2"]);
    let merged = objects(&std::fs::read_to_string(&file).unwrap());
    let spec = &merged[0]["spec"];
    assert_eq!(spec["image"], "myacr.azurecr.io/hello-aks:2");
    assert_eq!(spec["replicas"], 5);
    assert_eq!(spec["podAnnotations"]["team"], "web");
    assert!(std::fs::read_to_string(&file)
        .unwrap()
        .starts_with("# Generated by spin-aks scaffold"));
}

#[test]
fn helm_values_and_template_edits_survive_an_image_update() {
    let app = example_app();
    scaffold_ok(
        &app,
        &["--type", "helm", "--image", "myacr.azurecr.io/hello-aks:1"],
    );
    let deploy = app.dir.join("deploy");
    let values = deploy.join("values.yaml");
    let text = std::fs::read_to_string(&values)
        .unwrap()
        .replace("replicaCount: 2", "replicaCount: 4");
    std::fs::write(&values, text).unwrap();
    let template = deploy.join("templates/spinapp.yaml");
    let text = std::fs::read_to_string(&template).unwrap().replace(
        "  name: hello-aks\n",
        "  name: hello-aks\n  annotations:\n    owner: web-team\n",
    );
    std::fs::write(&template, text).unwrap();

    scaffold_ok(
        &app,
        &["--type", "helm", "--image", "myacr.azurecr.io/hello-aks:2"],
    );
    let values = objects(&std::fs::read_to_string(&values).unwrap());
    assert_eq!(values[0]["image"]["tag"], "2");
    assert_eq!(values[0]["replicaCount"], 4);
    assert!(std::fs::read_to_string(&template)
        .unwrap()
        .contains("    owner: web-team\n"));
}

#[test]
fn new_variable_in_spin_toml_is_added_and_user_edits_stay() {
    let app = example_app();
    scaffold_ok(&app, &[]);
    let file = app.dir.join("deploy/hello-aks.yaml");
    let edited = std::fs::read_to_string(&file)
        .unwrap()
        .replace("value: Hello", "value: Bonjour");
    std::fs::write(&file, edited).unwrap();
    let manifest = app.dir.join("spin.toml");
    let text = std::fs::read_to_string(&manifest).unwrap().replace(
        "[variables]\n",
        "[variables]\ntheme = { default = \"dark\" }\n",
    );
    std::fs::write(&manifest, text).unwrap();

    scaffold_ok(&app, &[]);
    let merged = objects(&std::fs::read_to_string(&file).unwrap());
    let variables = merged[0]["spec"]["variables"].as_array().unwrap();
    let value = |name: &str| {
        variables
            .iter()
            .find(|v| v["name"] == name)
            .map(|v| v["value"].clone())
    };
    assert_eq!(value("greeting"), Some("Bonjour".into()));
    assert_eq!(value("theme"), Some("dark".into()));
}

#[test]
fn conflicting_edit_exits_1_lists_the_field_and_writes_nothing() {
    let app = example_app();
    scaffold_ok(
        &app,
        &[
            "--type",
            "kustomize",
            "--dockerfile",
            "--image",
            "myacr.azurecr.io/hello-aks:1",
        ],
    );
    let deploy = app.dir.join("deploy");
    let file = deploy.join("base/hello-aks.yaml");
    let edited = std::fs::read_to_string(&file).unwrap().replace(
        "image: myacr.azurecr.io/hello-aks:1",
        "image: mine.azurecr.io/hello:dev",
    );
    std::fs::write(&file, edited).unwrap();
    let before = read_tree(&deploy);
    let docker_before = std::fs::read(app.dir.join("Dockerfile")).unwrap();

    let output = scaffold(
        &app,
        &[
            "--type",
            "kustomize",
            "--dockerfile",
            "--image",
            "myacr.azurecr.io/hello-aks:2",
        ],
    );
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let message = stderr(&output);
    assert!(
        message.contains("base/hello-aks.yaml: SpinApp/hello-aks: spec.image"),
        "{message}"
    );
    assert!(message.contains("--force"), "{message}");
    assert_eq!(
        read_tree(&deploy),
        before,
        "a conflict must leave every file as it was"
    );
    assert_eq!(
        std::fs::read(app.dir.join("Dockerfile")).unwrap(),
        docker_before
    );
}

#[test]
fn force_takes_the_new_values_on_conflict_and_keeps_other_edits() {
    let app = example_app();
    scaffold_ok(&app, &["--image", "myacr.azurecr.io/hello-aks:1"]);
    let file = app.dir.join("deploy/hello-aks.yaml");
    let edited = std::fs::read_to_string(&file)
        .unwrap()
        .replace(
            "image: myacr.azurecr.io/hello-aks:1",
            "image: mine.azurecr.io/hello:dev",
        )
        .replace("replicas: 2", "replicas: 7");
    std::fs::write(&file, edited).unwrap();

    assert_eq!(
        scaffold(&app, &["--image", "myacr.azurecr.io/hello-aks:2"])
            .status
            .code(),
        Some(1)
    );
    let output = scaffold_ok(
        &app,
        &["--image", "myacr.azurecr.io/hello-aks:2", "--force"],
    );
    assert!(stderr(&output).contains("--force replaced your edit"));
    let spec = objects(&std::fs::read_to_string(&file).unwrap())[0]["spec"].clone();
    assert_eq!(spec["image"], "myacr.azurecr.io/hello-aks:2");
    assert_eq!(spec["replicas"], 7);
    // Resolved: the next run with the same inputs changes nothing.
    let before = read_tree(&app.dir.join("deploy"));
    scaffold_ok(&app, &["--image", "myacr.azurecr.io/hello-aks:2"]);
    assert_eq!(read_tree(&app.dir.join("deploy")), before);
}

#[test]
fn files_the_tool_never_wrote_are_never_touched() {
    let app = example_app();
    let deploy = app.dir.join("deploy");
    std::fs::create_dir_all(&deploy).unwrap();
    std::fs::write(deploy.join("hello-aks.yaml"), "kind: Mine\n").unwrap();
    for extra in [&[][..], &["--force"][..]] {
        let output = scaffold(&app, extra);
        assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
        assert!(stderr(&output).contains("was not written by spin-aks"));
        assert_eq!(
            std::fs::read_to_string(deploy.join("hello-aks.yaml")).unwrap(),
            "kind: Mine\n"
        );
    }
    assert!(!deploy.join(".spin-aks-scaffold").exists());
}

// ---------- bad input: exit 2, nothing written ----------

fn assert_bad_input(app: &AppDir, args: &[&str], mentions: &str) {
    let output = scaffold(app, args);
    assert_eq!(
        output.status.code(),
        Some(2),
        "{args:?}: {}",
        stderr(&output)
    );
    assert!(
        stderr(&output).contains(mentions),
        "{args:?} should mention {mentions:?}: {}",
        stderr(&output)
    );
    assert!(!app.dir.join("deploy").exists(), "{args:?} wrote files");
    assert!(!app.dir.join("Dockerfile").exists());
}

#[test]
fn bad_flags_exit_2_naming_the_flag_and_value() {
    let app = example_app();
    assert_bad_input(&app, &["--type", "terraform"], "terraform");
    assert_bad_input(&app, &["--workload", "job"], "job");
    assert_bad_input(
        &app,
        &["--image", "MyAcr.azurecr.io/Hello:1", "--dockerfile"],
        "--image",
    );
    assert_bad_input(&app, &["--image", "hello@sha256:1234"], "64");
    assert_bad_input(&app, &["--kv-store", "cache"], "invalid --kv-store");
    assert_bad_input(
        &app,
        &["--kv-store", "cache=memcached:x"],
        "redis:<url> or cosmos:",
    );
    assert_bad_input(&app, &["--sqlite", "db=postgres://x"], "libsql:<url>");
    assert_bad_input(&app, &["--cpu-limit", "lots"], "quantity");
    assert_bad_input(&app, &["--namespace", "My_NS"], "DNS-1123");
    assert_bad_input(
        &app,
        &["--key-vault", "https://v.vault.azure.net/"],
        "`https://v.vault.azure.net/` is not a Key Vault URL",
    );
    assert_bad_input(
        &app,
        &["--key-vault", "https://shop-kv.vault.azure.net/"],
        "spin-aks identity setup --key-vault https://shop-kv.vault.azure.net/",
    );
    let mut provider = KEY_VAULT.to_vec();
    provider.extend(["--key-vault-mode", "provider"]);
    assert_bad_input(
        &app,
        &provider,
        "can never resolve; use the default --key-vault-mode csi",
    );
    assert_bad_input(
        &app,
        &["--kv-store", "default=cosmos:shopaccount/spin/kv"],
        "spin-aks identity setup --cosmos shopaccount",
    );
    let mut bad_guid = KEY_VAULT.to_vec();
    bad_guid[3] = "not-a-guid";
    assert_bad_input(&app, &bad_guid, "`not-a-guid` is not a GUID");
    assert_bad_input(&app, &["--autoscale"], "--cpu-limit");
}

#[test]
fn unreadable_spin_toml_exits_2() {
    let app = empty_app();
    let output = scaffold(&app, &[]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(!app.dir.join("deploy").exists());
    std::fs::write(
        app.dir.join("spin.toml"),
        "spin_manifest_version = 2\n[application\n",
    )
    .unwrap();
    let output = scaffold(&app, &[]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(stderr(&output).contains("spin.toml"));
    assert!(!app.dir.join("deploy").exists());
}

#[test]
fn output_path_that_is_a_file_exits_2() {
    let app = example_app();
    let file = app.dir.join("not-a-dir");
    std::fs::write(&file, "x").unwrap();
    let output = scaffold(&app, &["-o", file.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("is a file, not a directory"));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "x");
}

/// Without `--image`, scaffold takes the app's last push (tagged with the app's version when it
/// was pushed untagged, as push does); a remembered value this build cannot use is reported once,
/// naming the state file, the field and the value, and the built-in `<app>:<version>` is used.
#[test]
fn the_remembered_image_is_the_default_and_an_unusable_one_is_reported() {
    for (remembered, image, warned) in [
        ("r.example/team/hello", "r.example/team/hello:0.1.0", false),
        (
            "r.example/team/hello:dev",
            "r.example/team/hello:dev",
            false,
        ),
        ("Not A/Reference", "hello-aks:0.1.0", true),
    ] {
        let app = example_app();
        let state_file = app.dir.parent().unwrap().join("state");
        let key = app.dir.canonicalize().unwrap().join("spin.toml");
        let state = serde_json::json!({
            "version": 1,
            "apps": { key.to_str().unwrap(): { "last_image": remembered } },
        });
        std::fs::write(&state_file, state.to_string()).unwrap();
        let output = scaffold_ok(&app, &["--type", "kube"]);
        let yaml = std::fs::read_to_string(app.dir.join("deploy/hello-aks.yaml")).unwrap();
        assert!(
            yaml.contains(&format!("image: {image}\n")),
            "{remembered}: {yaml}"
        );
        let stderr = stderr(&output);
        let warning = format!("the state file {}", state_file.display());
        assert_eq!(stderr.contains(&warning), warned, "{remembered}: {stderr}");
        if warned {
            assert!(stderr.contains("`last_image`"), "{stderr}");
            assert!(stderr.contains(&format!("`{remembered}`")), "{stderr}");
        }
    }
}

// ---------- output contract and isolation ----------

#[test]
fn json_output_is_one_object_with_type_out_and_files() {
    let app = example_app();
    let out = app.dir.join("k8s");
    let output = scaffold_ok(
        &app,
        &[
            "--type",
            "kustomize",
            "-o",
            out.to_str().unwrap(),
            "--output",
            "json",
        ],
    );
    let report = crate::support::json_stdout(&output);
    assert_eq!(report["type"], "kustomize");
    assert_eq!(report["out"], out.to_str().unwrap());
    let files: Vec<&str> = report["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    assert!(
        files
            .iter()
            .any(|f| f.ends_with("overlays/production/kustomization.yaml")),
        "{files:?}"
    );
    assert!(files.iter().all(|f| Path::new(f).is_file()));
}

#[test]
fn scaffold_needs_no_cluster_and_no_network() {
    let app = example_app();
    let binary = assert_cmd::cargo::cargo_bin("spin-aks");
    // A private network namespace has no route anywhere; fall back to dead proxies where not allowed.
    let isolated = std::process::Command::new("unshare")
        .args(["-rn", "true"])
        .status()
        .is_ok_and(|s| s.success());
    let mut command = if isolated {
        let mut c = std::process::Command::new("unshare");
        c.args(["-rn"]).arg(&binary);
        c
    } else {
        std::process::Command::new(&binary)
    };
    let output = command
        .env("KUBECONFIG", "/nonexistent/kubeconfig")
        .env("HOME", app.dir.join("no-home"))
        .env("HTTPS_PROXY", "http://127.0.0.1:9")
        .env("HTTP_PROXY", "http://127.0.0.1:9")
        .args(["scaffold", "-y", "--type", "helm", "-f"])
        .arg(&app.dir)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "isolated={isolated}: {}",
        stderr(&output)
    );
    assert!(app.dir.join("deploy/Chart.yaml").is_file());
}

#[test]
fn dockerfile_user_lines_stay_when_a_component_is_added() {
    let app = example_app();
    scaffold_ok(&app, &["--dockerfile"]);
    let dockerfile = app.dir.join("Dockerfile");
    let text = std::fs::read_to_string(&dockerfile).unwrap().replace(
        "FROM scratch\n",
        "FROM scratch\nLABEL org.opencontainers.image.source=https://example.com/hello\n",
    );
    std::fs::write(&dockerfile, text).unwrap();
    let manifest = app.dir.join("spin.toml");
    let mut text = std::fs::read_to_string(&manifest).unwrap();
    text.push_str("\n[component.extra]\nsource = \"wasm/extra.wasm\"\n\n[[trigger.http]]\nroute = \"/extra\"\ncomponent = \"extra\"\n");
    std::fs::write(&manifest, text).unwrap();

    scaffold_ok(&app, &["--dockerfile"]);
    let merged = std::fs::read_to_string(&dockerfile).unwrap();
    assert!(
        merged.contains(
            "FROM scratch\nLABEL org.opencontainers.image.source=https://example.com/hello\n"
        ),
        "{merged}"
    );
    assert!(
        merged.contains("COPY wasm/extra.wasm /wasm/extra.wasm\n"),
        "{merged}"
    );
    assert!(std::fs::read_to_string(app.dir.join(".dockerignore"))
        .unwrap()
        .contains("!wasm/extra.wasm\n"));
}

#[test]
fn without_a_terminal_scaffold_takes_defaults_and_never_prompts() {
    let app = example_app();
    let output = support::spin_aks(&app.dir.join("home"))
        .args(["scaffold", "--output", "json", "-f"])
        .arg(&app.dir)
        .timeout(std::time::Duration::from_secs(60))
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let report = crate::support::json_stdout(&output);
    assert_eq!(report["type"], "kube");
    assert_eq!(report["workload"], "spinapp");
    let yaml = std::fs::read_to_string(app.dir.join("deploy/hello-aks.yaml")).unwrap();
    assert!(
        yaml.contains("image: hello-aks:0.1.0\n"),
        "the default image is <app>:<version>: {yaml}"
    );
}

#[test]
fn store_credentials_never_reach_the_files() {
    let app = shop_app();
    let args = [
        "--sqlite",
        "orders=libsql:https://orders.example.turso.io",
        "--kv-store",
        "cache=redis:redis://:hunter2@cache:6379",
    ];
    let output = scaffold_ok(&app, &args);
    let tree = render_tree(&app.dir.join("deploy"));
    assert!(
        !tree.contains("hunter2") && !tree.contains("kind: Secret"),
        "{tree}"
    );
    assert!(
        tree.contains("loadFromSecret: shop-backend-runtime-config"),
        "{tree}"
    );
    let warnings = stderr(&output);
    assert!(
        warnings.contains("SPIN_AKS_LIBSQL_TOKEN_ORDERS"),
        "{warnings}"
    );
    assert!(
        warnings.contains("Secret shop-backend-runtime-config is not written to a file"),
        "{warnings}"
    );
    assert!(!warnings.contains("hunter2"));
}

#[test]
fn user_comments_and_layout_survive_a_merge() {
    let app = example_app();
    scaffold_ok(&app, &["--image", "myacr.azurecr.io/hello-aks:1"]);
    let file = app.dir.join("deploy/hello-aks.yaml");
    let edited = std::fs::read_to_string(&file).unwrap().replace(
        "  replicas: 2\n",
        "  # two is not enough at peak\n  replicas: 3\n",
    );
    std::fs::write(&file, &edited).unwrap();

    scaffold_ok(&app, &["--image", "myacr.azurecr.io/hello-aks:2"]);
    let merged = std::fs::read_to_string(&file).unwrap();
    assert_eq!(
        merged,
        edited.replace("hello-aks:1", "hello-aks:2"),
        "only the image line changes"
    );
}

#[test]
fn shop_app_dockerfile_has_one_copy_per_component_and_mount() {
    let app = shop_app();
    let output = scaffold_ok(
        &app,
        &["--dockerfile", "--image", "myacr.azurecr.io/shop:2.1.0"],
    );
    assert!(
        stderr(&output).contains("components web use them"),
        "{}",
        stderr(&output)
    );
    let dockerfile = std::fs::read_to_string(app.dir.join("Dockerfile")).unwrap();
    let dockerignore = std::fs::read_to_string(app.dir.join(".dockerignore")).unwrap();
    insta::assert_snapshot!(format!(
        "=== Dockerfile ===\n{dockerfile}=== .dockerignore ===\n{dockerignore}"
    ));
}

// ---------- Key Vault: every variable resolves ----------

/// The variables of spin.toml that Spin would fail to resolve in a pod running `objects`, when
/// the vault holds exactly `vault` (secret names). Spin asks a configured `azure_key_vault`
/// provider first (a missing secret is an error), then the environment the workload sets (from a
/// literal, or from a Secret key the CSI driver syncs from the vault), then the default.
fn unresolved(app: &AppDir, objects: &[serde_json::Value], vault: &[String]) -> Vec<String> {
    let manifest: toml::Table = std::fs::read_to_string(app.dir.join("spin.toml"))
        .unwrap()
        .parse()
        .unwrap();
    let variables = manifest["variables"].as_table().unwrap();
    let workload = objects.iter().find(|o| o["kind"] == "SpinApp").unwrap();
    let runtime_config = objects
        .iter()
        .find(|o| o["kind"] == "Secret")
        .map(|s| {
            s["stringData"]["runtime-config.toml"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .unwrap_or_default();
    let provider = runtime_config.contains("azure_key_vault");
    // Key of the synced Secret → the vault secret it comes from.
    let mut synced = std::collections::BTreeMap::new();
    for class in objects
        .iter()
        .filter(|o| o["kind"] == "SecretProviderClass")
    {
        let listed = class["spec"]["parameters"]["objects"].as_str().unwrap();
        let entries: serde_json::Value = serde_saphyr::from_str(listed).unwrap();
        for entry in entries["array"].as_array().unwrap() {
            let entry: serde_json::Value = serde_saphyr::from_str(entry.as_str().unwrap()).unwrap();
            let secret = &class["spec"]["secretObjects"][0];
            let key = secret["data"]
                .as_array()
                .unwrap()
                .iter()
                .find(|d| d["objectName"] == entry["objectAlias"])
                .unwrap()["key"]
                .as_str()
                .unwrap()
                .to_string();
            let from = entry["objectName"].as_str().unwrap().to_string();
            synced.insert(
                (secret["secretName"].as_str().unwrap().to_string(), key),
                from,
            );
        }
    }
    let env = workload["spec"]["variables"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    variables
        .iter()
        .filter(|(name, declared)| {
            if provider {
                return !vault.contains(name);
            }
            let from_env = env.iter().find(|v| v["name"] == name.as_str()).map(|v| {
                let secret_ref = &v["valueFrom"]["secretKeyRef"];
                match secret_ref["name"].as_str() {
                    None => v["value"].is_string(),
                    Some(secret) => synced
                        .get(&(
                            secret.to_string(),
                            secret_ref["key"].as_str().unwrap().to_string(),
                        ))
                        .is_some_and(|from| vault.contains(from)),
                }
            });
            !from_env.unwrap_or_else(|| declared.get("default").is_some())
        })
        .map(|(name, _)| name.clone())
        .collect()
}

/// Scaffolds `app` as plain YAML with Key Vault flags and returns its objects.
fn key_vault_objects(app: &AppDir, extra: &[&str]) -> Vec<serde_json::Value> {
    let mut args = vec![
        "--type",
        "kube",
        "--workload",
        "spinapp",
        "--image",
        "r.example/app:1",
    ];
    args.extend_from_slice(KEY_VAULT);
    args.extend_from_slice(extra);
    scaffold_ok(app, &args);
    let tree = read_tree(&app.dir.join("deploy"));
    let yaml = tree
        .iter()
        .filter(|(name, _)| !name.starts_with(".spin-aks-scaffold/") && name.ends_with(".yaml"))
        .map(|(_, bytes)| String::from_utf8(bytes.clone()).unwrap())
        .collect::<Vec<_>>()
        .join("\n---\n");
    objects(&yaml)
}

#[test]
fn with_key_vault_csi_every_variable_of_the_example_apps_resolves() {
    for app in [example_app(), shop_app()] {
        let objects = key_vault_objects(&app, &[]);
        let vault_names: Vec<String> = objects
            .iter()
            .filter(|o| o["kind"] == "SecretProviderClass")
            .flat_map(|c| {
                let listed = c["spec"]["parameters"]["objects"].as_str().unwrap();
                listed
                    .lines()
                    .filter_map(|l| l.trim().strip_prefix("objectName: "))
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
            .collect();
        assert!(
            vault_names.iter().all(|n| !n.contains('_')),
            "vault names cannot hold `_`: {vault_names:?}"
        );
        assert_eq!(
            unresolved(&app, &objects, &vault_names),
            Vec::<String>::new()
        );
        // Take one secret out of the vault: exactly its variable stops resolving.
        let (dropped, rest) = vault_names.split_first().unwrap();
        let missing = unresolved(&app, &objects, rest);
        assert_eq!(missing, [dropped.replace('-', "_")], "{dropped}");
    }
}

#[test]
fn with_key_vault_provider_every_variable_resolves_once_each_is_in_the_vault() {
    let app = example_app();
    let manifest = app.dir.join("spin.toml");
    let text = std::fs::read_to_string(&manifest)
        .unwrap()
        .replace("api_token", "apitoken");
    std::fs::write(&manifest, text).unwrap();
    let objects = key_vault_objects(&app, &["--key-vault-mode", "provider"]);
    let all = vec!["apitoken".to_string(), "greeting".to_string()];
    assert_eq!(unresolved(&app, &objects, &all), Vec::<String>::new());
    assert_eq!(
        unresolved(&app, &objects, &all[..1]),
        ["greeting"],
        "the provider is asked before the default, so even `greeting` must be in the vault"
    );
}
