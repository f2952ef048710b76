//! Scaffold test helpers: app copies in temp dirs, running `scaffold`, and reading output trees.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;

use super::apps::{copy_app, example_dir};

/// A copy of an app under a temp dir (scaffold writes into the app dir by default).
pub struct AppDir {
    temp: tempfile::TempDir,
    pub dir: PathBuf,
}

fn app_from(source: &Path) -> AppDir {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("app");
    copy_app(source, &dir, std::time::SystemTime::now());
    AppDir { temp, dir }
}

/// An empty app directory: no spin.toml yet.
pub fn empty_app() -> AppDir {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("app");
    std::fs::create_dir_all(&dir).unwrap();
    AppDir { temp, dir }
}

/// The repository's example app (`examples/hello-aks`).
pub fn example_app() -> AppDir {
    app_from(&example_dir())
}

/// An app with secret and required variables, key-value stores, databases, a redis trigger and
/// three components (`tests/fixtures/shop`).
pub fn shop_app() -> AppDir {
    app_from(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/shop"))
}

/// The flags that give the shop app every runtime need a backend (the Cosmos DB store is reached
/// with a workload identity, given directly here).
pub const SHOP_STORES: &[&str] = &[
    "--identity-client-id",
    "11111111-2222-3333-4444-555555555555",
    "--tenant-id",
    "72f988bf-86f1-41af-91ab-2d7cd011db47",
    "--kv-store",
    "cache=redis:redis://cache:6379",
    "--kv-store",
    "sessions=cosmos:shopaccount/spin/sessions",
    "--sqlite",
    "orders=libsql:https://orders.example.turso.io",
];

/// Key Vault flags with the workload identity given directly (no `identity setup` in these tests).
pub const KEY_VAULT: &[&str] = &[
    "--key-vault",
    "https://shop-kv.vault.azure.net/",
    "--identity-client-id",
    "11111111-2222-3333-4444-555555555555",
    "--tenant-id",
    "72f988bf-86f1-41af-91ab-2d7cd011db47",
];

/// Runs `spin-aks scaffold -y <args>` for the app, with a private state file and no kubeconfig.
pub fn scaffold(app: &AppDir, args: &[&str]) -> Output {
    super::spin_aks(app.temp.path())
        .current_dir(&app.dir)
        .env("KUBECONFIG", "/nonexistent/kubeconfig")
        .args(["scaffold", "-y", "-f"])
        .arg(&app.dir)
        .args(args)
        .output()
        .unwrap()
}

/// Like [`scaffold`], asserting success.
pub fn scaffold_ok(app: &AppDir, args: &[&str]) -> Output {
    let output = scaffold(app, args);
    assert!(
        output.status.success(),
        "scaffold {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Every file under `dir` (relative path → bytes), the stored generations included.
pub fn read_tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    if !dir.exists() {
        return files;
    }
    for entry in walkdir::WalkDir::new(dir).sort_by_file_name() {
        let entry = entry.unwrap();
        if entry.file_type().is_file() {
            let rel = entry
                .path()
                .strip_prefix(dir)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            files.insert(rel, std::fs::read(entry.path()).unwrap());
        }
    }
    files
}

/// The generated files under `dir` (not the stored generations) as one text for snapshots.
pub fn render_tree(dir: &Path) -> String {
    let mut text = String::new();
    for (path, bytes) in read_tree(dir) {
        if path.starts_with(".spin-aks-scaffold/") {
            continue;
        }
        text.push_str(&format!(
            "=== {path} ===\n{}",
            String::from_utf8(bytes).unwrap()
        ));
        if !text.ends_with('\n') {
            text.push('\n');
        }
    }
    text
}

/// Parses a YAML stream into its objects, sorted by kind and name, for comparing renderings.
pub fn objects(yaml: &str) -> Vec<serde_json::Value> {
    let mut docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(yaml).unwrap();
    docs.retain(|d| !d.is_null());
    docs.sort_by_key(|d| format!("{}/{}", d["kind"], d["metadata"]["name"]));
    docs
}
