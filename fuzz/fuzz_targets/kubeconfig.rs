//! The kubeconfig readers: any bytes as the kubeconfig ARM returns (`entry_from_arm`), as an
//! existing kubeconfig file merged into (`merge_into`), as kube's `Kubeconfig`, and as
//! `KUBERNETES_EXEC_INFO` (the ExecCredential request) give a value or an error, never a panic.
#![no_main]

use std::path::Path;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use spin_aks::azure::{aks, kubeconfig_file};

/// A valid ARM kubeconfig with an Entra (kubelogin) user, merged into each fuzzed file.
const ARM_KUBECONFIG: &str = "apiVersion: v1\nkind: Config\ncurrent-context: aks1\nclusters:\n- name: aks1\n  cluster: {server: 'https://aks1.hcp.example:443'}\ncontexts:\n- name: aks1\n  context: {cluster: aks1, user: clusterUser_rg_aks1}\nusers:\n- name: clusterUser_rg_aks1\n  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1beta1\n      command: kubelogin\n      args: [get-token, --server-id, 6dae42f8-4368-4678-94ff-3960e28e3630]\n";

static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let dir = DIR.get_or_init(|| tempfile::tempdir().expect("temp dir"));
    let plugin = Path::new("/usr/local/bin/spin-aks");
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = kubeconfig_file::entry_from_arm(text, plugin);
        let _ = kube::config::Kubeconfig::from_yaml(text);
        let _ = aks::requested_exec_api_version(Some(text));
    }
    let file = dir.path().join("config");
    std::fs::write(&file, data).expect("write the kubeconfig");
    let entry = kubeconfig_file::entry_from_arm(ARM_KUBECONFIG, plugin).expect("a valid entry");
    let _ = kubeconfig_file::merge_into(&file, &entry, true);
});
