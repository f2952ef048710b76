//! A Helm chart directory is installed with the user's own `helm` (`upgrade --install`, the image set
//! by digest through the chart's `image.*` values); its manifest tells apply what to wait for.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::bad_input;
use crate::cluster::connect::Connection;
use crate::oci::reference::ImageRef;

/// Installs or upgrades release `release` from `chart` and returns the objects it deployed.
pub fn install(
    conn: &Connection,
    chart: &Path,
    release: &str,
    namespace: &str,
    image: &ImageRef,
    dry_run: bool,
) -> anyhow::Result<Vec<Value>> {
    if conn.in_memory {
        return Err(bad_input!(
            "--dir is a Helm chart, and helm reads credentials from a kubeconfig file; run `spin-aks cluster get-credentials` and apply with --context, or scaffold --type kube or kustomize"
        ));
    }
    let mut args: Vec<String> = vec![
        "upgrade".into(),
        "--install".into(),
        release.into(),
        chart.display().to_string(),
        "--create-namespace".into(),
        "--set-string".into(),
        format!("image.repository={}", image.name()),
        "--set-string".into(),
        format!("image.tag={}", image.tag().unwrap_or_default()),
        "--set-string".into(),
        format!(
            "image.digest={}",
            image.digest().map(ToString::to_string).unwrap_or_default()
        ),
    ];
    if dry_run {
        args.push("--dry-run=server".into());
    }
    helm(conn, namespace, &args)?;
    let manifest = helm(
        conn,
        namespace,
        &["get".into(), "manifest".into(), release.into()],
    )?;
    if dry_run {
        return Ok(Vec::new());
    }
    serde_saphyr::from_multiple::<Value>(&manifest)
        .map(|docs| docs.into_iter().filter(|d| !d.is_null()).collect())
        .map_err(|e| anyhow::anyhow!("cannot read the manifest helm deployed: {e}"))
}

/// Runs helm against the connection's cluster; stdout on success, stderr in the error.
fn helm(conn: &Connection, namespace: &str, args: &[String]) -> anyhow::Result<String> {
    let mut command = Command::new("helm");
    command
        .args(args)
        .args(["--namespace", namespace, "--kube-context", &conn.context]);
    if let Some(file) = &conn.kubeconfig_file {
        command.arg("--kubeconfig").arg(file);
    }
    let output = command.output().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => bad_input!(
            "--dir is a Helm chart, and installing it needs `helm` on PATH (not found); install helm, or scaffold --type kube or kustomize, which spin-aks applies itself"
        ),
        _ => anyhow::anyhow!("cannot run helm: {e}"),
    })?;
    if !output.status.success() {
        anyhow::bail!(
            "helm {} failed: {}",
            args.first().map(String::as_str).unwrap_or_default(),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}
