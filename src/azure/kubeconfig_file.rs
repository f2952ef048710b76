//! Merging one AKS context into a kubeconfig file as `az aks get-credentials` does: other entries
//! untouched, a different same-named entry refused unless overwriting, atomic write with mode 0600.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde_json::{json, Value};

use super::aks::kubelogin_server_id;
use crate::bad_input;

/// The three named entries of one context.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub cluster: Value,
    pub user: Value,
    pub context: Value,
}

/// What a merge did to the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Added,
    Replaced,
    Unchanged,
}

const SECTIONS: [&str; 3] = ["clusters", "users", "contexts"];

/// `KUBECONFIG`'s first file, else `~/.kube/config`.
pub fn default_path() -> anyhow::Result<PathBuf> {
    if let Some(list) = std::env::var_os("KUBECONFIG") {
        if let Some(first) = std::env::split_paths(&list).find(|p| !p.as_os_str().is_empty()) {
            return Ok(first);
        }
    }
    let home = dirs::home_dir().context("cannot find the home directory; pass --file")?;
    Ok(home.join(".kube").join("config"))
}

/// The current context of the kubeconfig ARM returned, its Entra user (kubelogin) replaced by an
/// exec of `plugin cluster token --server-id <id>`.
pub fn entry_from_arm(yaml: &str, plugin: &Path) -> anyhow::Result<Entry> {
    let doc: Value =
        serde_saphyr::from_str(yaml).context("the kubeconfig ARM returned is not YAML")?;
    let context_name = doc["current-context"].as_str().unwrap_or_default();
    let context = named(&doc, "contexts", context_name)
        .or_else(|| doc["contexts"].get(0).cloned())
        .context("the kubeconfig ARM returned has no context")?;
    let by_ref = |section: &str, key: &str| {
        let name = context["context"][key].as_str().unwrap_or_default();
        named(&doc, section, name)
            .with_context(|| format!("the kubeconfig ARM returned has no {key} {name:?}"))
    };
    let cluster = by_ref("clusters", "cluster")?;
    let mut user = by_ref("users", "user")?;
    if let Some(server_id) = kubelogin_user(&user["user"]) {
        user["user"] = json!({"exec": {
            "apiVersion": "client.authentication.k8s.io/v1beta1",
            "command": plugin.to_string_lossy(),
            "args": ["cluster", "token", "--server-id", server_id],
            "interactiveMode": "Never",
            "provideClusterInfo": false,
        }});
    }
    Ok(Entry {
        cluster,
        user,
        context,
    })
}

fn kubelogin_user(user: &Value) -> Option<String> {
    let exec = user.get("exec")?;
    let args: Vec<String> = exec["args"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    kubelogin_server_id(exec["command"].as_str()?, &args)
}

fn named(doc: &Value, section: &str, name: &str) -> Option<Value> {
    let items = doc[section].as_array()?;
    items.iter().find(|item| item["name"] == name).cloned()
}

/// Merges `entry` into the kubeconfig at `path` (created when missing) and makes it current.
/// A same-named entry with other content is bad input unless `overwrite`; then nothing is written.
pub fn merge_into(path: &Path, entry: &Entry, overwrite: bool) -> anyhow::Result<Outcome> {
    let mut doc = read(path)?;
    let items = [&entry.cluster, &entry.user, &entry.context];
    let (mut same, mut replaced) = (0, false);
    for (section, item) in SECTIONS.into_iter().zip(items) {
        let name = item["name"].as_str().unwrap_or_default();
        match named(&doc, section, name) {
            Some(existing) if existing == *item => same += 1,
            Some(_) if !overwrite => {
                return Err(bad_input!(
                    "{}: {section} already has a different entry named {name:?}; pass \
                     --overwrite-existing to replace it",
                    path.display()
                ))
            }
            Some(_) => replaced = true,
            None => {}
        }
    }
    let outcome = match (replaced, same) {
        (true, _) => Outcome::Replaced,
        (false, 3) => Outcome::Unchanged,
        _ => Outcome::Added,
    };
    let context = entry.context["name"].clone();
    if outcome == Outcome::Unchanged && doc["current-context"] == context {
        return Ok(outcome);
    }
    for (section, item) in SECTIONS.into_iter().zip(items) {
        let list = doc[section]
            .as_array_mut()
            .expect("read() makes every section a list");
        list.retain(|existing| existing["name"] != item["name"]);
        list.push(item.clone());
    }
    doc["current-context"] = context;
    write(path, &doc)?;
    Ok(outcome)
}

fn read(path: &Path) -> anyhow::Result<Value> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let mut doc: Value = if text.trim().is_empty() {
        json!({"apiVersion": "v1", "kind": "Config", "preferences": {}})
    } else {
        serde_saphyr::from_str(&text)
            .map_err(|e| bad_input!("{} is not a valid kubeconfig: {e}", path.display()))?
    };
    if !doc.is_object() {
        return Err(bad_input!("{} is not a kubeconfig mapping", path.display()));
    }
    for section in SECTIONS {
        if doc[section].is_null() {
            doc[section] = json!([]);
        }
        if !doc[section].is_array() {
            return Err(bad_input!("{}: `{section}` is not a list", path.display()));
        }
    }
    Ok(doc)
}

fn write(path: &Path, doc: &Value) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let text = crate::yaml::to_yaml(doc);
    // The temporary file is created 0600 and the rename keeps it.
    crate::oci::layout::write_atomically(
        path,
        text.as_bytes(),
        crate::oci::layout::FileAccess::Private,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARM_KUBECONFIG: &str = r#"apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: Q0E=
    server: https://c1-dns.hcp.westeurope.azmk8s.io:443
  name: c1
contexts:
- context:
    cluster: c1
    user: clusterUser_rg1_c1
  name: c1
current-context: c1
kind: Config
users:
- name: clusterUser_rg1_c1
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1beta1
      args: [get-token, --environment, AzurePublicCloud, --server-id, 6dae42f8-4368-4678-94ff-3960e28e3630, --client-id, 80faf920-1908-4b52-b5ef-a8e7bedfc67a, --tenant-id, t, --login, devicecode]
      command: kubelogin
      env: null
"#;

    #[test]
    fn entra_user_becomes_our_exec_plugin() {
        let entry = entry_from_arm(ARM_KUBECONFIG, Path::new("/opt/spin-aks")).unwrap();
        assert_eq!(entry.context["name"], "c1");
        assert_eq!(
            entry.cluster["cluster"]["server"],
            "https://c1-dns.hcp.westeurope.azmk8s.io:443"
        );
        let exec = &entry.user["user"]["exec"];
        assert_eq!(exec["command"], "/opt/spin-aks");
        assert_eq!(
            exec["args"],
            json!([
                "cluster",
                "token",
                "--server-id",
                "6dae42f8-4368-4678-94ff-3960e28e3630"
            ])
        );
    }

    #[test]
    fn merge_keeps_others_refuses_different_and_overwrites_on_request() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config");
        std::fs::write(
            &path,
            "apiVersion: v1\nkind: Config\nclusters:\n- name: other\n  cluster: {server: 'https://o', extra-field: kept}\nusers: []\ncontexts: []\ncurrent-context: other\n",
        )
        .unwrap();
        let entry = entry_from_arm(ARM_KUBECONFIG, Path::new("/opt/spin-aks")).unwrap();
        assert_eq!(merge_into(&path, &entry, false).unwrap(), Outcome::Added);
        assert_eq!(
            merge_into(&path, &entry, false).unwrap(),
            Outcome::Unchanged
        );
        let doc = read(&path).unwrap();
        assert_eq!(doc["clusters"][0]["cluster"]["extra-field"], "kept");
        assert_eq!(doc["current-context"], "c1");

        let mut changed = entry.clone();
        changed.cluster["cluster"]["server"] = json!("https://elsewhere");
        let before = std::fs::read(&path).unwrap();
        let err = merge_into(&path, &changed, false).unwrap_err();
        assert_eq!(crate::error::exit_code(&err), 2);
        assert_eq!(
            std::fs::read(&path).unwrap(),
            before,
            "nothing half-written"
        );
        assert_eq!(
            merge_into(&path, &changed, true).unwrap(),
            Outcome::Replaced
        );
        assert_eq!(
            read(&path).unwrap()["clusters"].as_array().unwrap().len(),
            2
        );
    }
}
