//! Names the workload's objects and what they carry: a DNS-1123 name made from the app's, the
//! labels, the runtime class, the port, the runtime-config key and each Spin variable's env name.

/// The runtime class containerd-shim-spin registers.
pub const DEFAULT_RUNTIME_CLASS: &str = "wasmtime-spin-v2";
pub const MANAGED_BY: &str = "spin-aks";
pub(super) const NAME_LABEL: &str = "app.kubernetes.io/name";
pub(super) const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
pub(super) const WORKLOAD_IDENTITY_LABEL: &str = "azure.workload.identity/use";
pub(super) const RUNTIME_CONFIG_KEY: &str = "runtime-config.toml";
pub(super) const HTTP_PORT: i32 = 80;

/// Turns an app name into a DNS-1123 label: lowercase, `-` for anything else, at most 63 characters.
pub fn dns_name(app_name: &str) -> String {
    let mut name = String::new();
    for c in app_name.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            name.push(c);
        } else if !name.ends_with('-') {
            name.push('-');
        }
    }
    let mut name: String = name.trim_matches('-').chars().take(63).collect();
    while name.ends_with('-') {
        name.pop();
    }
    if name.is_empty() {
        "spin-app".to_string()
    } else {
        name
    }
}

/// The environment variable the shim maps to Spin variable `name`.
pub fn env_name(variable: &str) -> String {
    format!("SPIN_VARIABLE_{}", variable.to_ascii_uppercase())
}
