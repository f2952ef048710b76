//! The prompts a person sees on a terminal, driven through a pseudo-terminal against the real
//! binary: select lists where Enter repeats the last choice, questions that re-ask until the answer
//! is valid, and a hidden value that never reaches the screen.

use std::path::Path;
use std::process::Command;

use crate::support::arm::write_scoped_az;
use crate::support::arm_cli::Rig;
use crate::support::keyvault::{FakeKeyVault, VAULT_SCOPE};
use crate::support::pty::{Terminal, DOWN, ENTER};
use crate::support::registry::Registry;
use crate::support::scaffold::{example_app, read_tree, shop_app};

const SUB: &str = "11111111-0000-0000-0000-000000000001";

/// The binary with a private home and state file, as on a colour terminal.
fn spin_aks(home: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_spin-aks"));
    cmd.args(args)
        .env("HOME", home)
        .env("SPIN_AKS_STATE_FILE", home.join("state"))
        .env("SPIN_AKS_CACHE_DIR", home.join("cache"))
        .env("DOCKER_CONFIG", home.join("docker"))
        .env("KUBECONFIG", home.join("no-kubeconfig"))
        .env("TERM", "xterm-256color")
        .env_remove("SPIN_AKS_LOG")
        .env_remove("AZURE_SUBSCRIPTION_ID")
        .env_remove("SOURCE_DATE_EPOCH")
        .current_dir(home);
    cmd
}

/// Runs `cmd` on a terminal, answering each prompt (text to wait for, keys to type) in order.
async fn on_terminal(cmd: Command, answers: &[(&str, &str)]) -> (i32, String) {
    let answers: Vec<(String, String)> = answers
        .iter()
        .map(|(prompt, keys)| (prompt.to_string(), keys.to_string()))
        .collect();
    tokio::task::spawn_blocking(move || {
        let mut terminal = Terminal::spawn(cmd);
        for (prompt, keys) in &answers {
            terminal.wait_for(prompt);
            terminal.type_keys(keys);
        }
        terminal.finish()
    })
    .await
    .unwrap()
}

fn state(home: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(home.join("state")).unwrap()).unwrap()
}

#[tokio::test]
async fn cluster_use_offers_select_lists_and_enter_repeats_the_last_choice() {
    let rig = Rig::start(SUB).await;
    rig.arm.add_cluster(SUB, "rg1", "c1", false, "");
    rig.arm.add_cluster(SUB, "rg2", "c2", false, "");
    rig.arm.add_registry(SUB, "rg1", "reg1", false);
    rig.arm.add_registry(SUB, "rg2", "reg2", false);

    let second = format!("{DOWN}{ENTER}");
    let answers = [
        ("Choose the AKS cluster", second.as_str()),
        ("Choose the container registry", second.as_str()),
    ];
    let (code, screen) = on_terminal(rig.command(&["cluster", "use"]), &answers).await;
    assert_eq!(code, 0, "{screen}");
    assert!(
        screen.contains("c1 (resource group rg1") && screen.contains("c2 (resource group rg2"),
        "both clusters listed: {screen}"
    );
    assert!(screen.contains("reg1 (reg1.azurecr.io)"), "{screen}");
    let remembered = rig.state();
    assert_eq!(remembered["last_cluster"]["name"], "c2");
    assert_eq!(remembered["last_registry"], "reg2.azurecr.io");

    let answers = [
        ("Choose the AKS cluster", ENTER),
        ("Choose the container registry", ENTER),
    ];
    let (code, screen) = on_terminal(rig.command(&["cluster", "use"]), &answers).await;
    assert_eq!(code, 0, "{screen}");
    let again = rig.state();
    assert_eq!(
        again["last_cluster"], remembered["last_cluster"],
        "{screen}"
    );
    assert_eq!(again["last_registry"], "reg2.azurecr.io");
}

#[tokio::test]
async fn scaffold_asks_type_workload_and_image_and_asks_again_for_a_bad_image() {
    let app = example_app();
    let home = tempfile::tempdir().unwrap();
    let out = home.path().join("deploy");
    let mut cmd = spin_aks(home.path(), &["scaffold", "-f"]);
    cmd.arg(&app.dir).arg("-o").arg(&out);
    let kustomize = format!("{DOWN}{ENTER}");
    let answers = [
        ("Output type", kustomize.as_str()),
        ("Workload", ENTER),
        ("Image", "Not An Image!\r"),
        ("must be lowercase", "registry.example/team/hello:2.0.0\r"),
    ];
    let (code, screen) = on_terminal(cmd, &answers).await;
    assert_eq!(code, 0, "{screen}");
    let overlay = out.join("overlays/production/kustomization.yaml");
    assert!(overlay.is_file(), "kustomize chosen:\n{screen}");
    let base = std::fs::read_to_string(out.join("base/hello-aks.yaml")).unwrap();
    assert!(base.contains("kind: SpinApp"), "{base}");
    let files = read_tree(&out);
    assert!(
        files
            .values()
            .any(|bytes| String::from_utf8_lossy(bytes).contains("registry.example/team/hello")),
        "the typed image is used:\n{screen}"
    );
}

#[tokio::test]
async fn push_without_a_reference_asks_for_one_and_remembers_it() {
    let Some(registry) = Registry::open() else {
        return;
    };
    let app = example_app();
    let home = tempfile::tempdir().unwrap();
    let reference = format!("127.0.0.1:{}/hello-aks:1.0.0", registry.port());
    let mut cmd = spin_aks(home.path(), &["push", "-f"]);
    cmd.arg(&app.dir);
    let typed = format!("{reference}\r");
    let answers = [
        ("Push to which reference", "not a reference!\r"),
        ("it names no registry", typed.as_str()),
    ];
    let (code, screen) = on_terminal(cmd, &answers).await;
    assert_eq!(code, 0, "{screen}");
    let state = state(home.path());
    let record = state["apps"].as_object().unwrap().values().next().unwrap();
    assert_eq!(record["last_image"], reference.as_str(), "{state}");
    let pinned = record["last_pinned"].as_str().unwrap();
    assert!(
        pinned.starts_with(&format!("127.0.0.1:{}/hello-aks@sha256:", registry.port())),
        "{pinned}"
    );
}

#[tokio::test]
async fn secrets_set_reads_a_hidden_value_that_never_reaches_the_screen() {
    const TOKEN: &str = "kv-token-pty-1";
    const VALUE: &str = "typed-secret-Zq81";
    let vault = FakeKeyVault::start(TOKEN).await;
    let app = shop_app();
    let home = tempfile::tempdir().unwrap();
    write_scoped_az(home.path(), &[(VAULT_SCOPE, TOKEN)]);
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut cmd = spin_aks(home.path(), &["secrets", "set", "db_password", "-f"]);
    cmd.arg(&app.dir)
        .args(["--key-vault", &vault.url])
        .env("PATH", home.path())
        .env("SPIN_AKS_ARM_DELAY_SCALE", "0")
        .env(
            "AZURE_POD_IDENTITY_AUTHORITY_HOST",
            format!("http://{closed}"),
        );
    let typed = format!("{VALUE}\r");
    let answers = [("Value of db_password (hidden)", typed.as_str())];
    let (code, screen) = on_terminal(cmd, &answers).await;
    assert_eq!(code, 0, "{screen}");
    assert_eq!(vault.value("db-password").as_deref(), Some(VALUE));
    assert!(!screen.contains(VALUE), "the value was echoed: {screen}");
}
