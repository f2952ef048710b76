//! AKS run command as a transport: files zipped into the request's `context`, the command run by
//! AKS inside the cluster, its exit code and logs returned (docs/cluster.md).

use std::io::Write;

use anyhow::Context;
use base64::Engine;
use serde_json::json;

use super::aks::{server_scope, AKS_SERVER_APP};
use super::arm::Arm;
use crate::azure::ClusterRef;

/// What the remote command did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommandResult {
    pub exit_code: i32,
    pub logs: String,
}

impl CommandResult {
    /// The logs when the command exited 0, else an error that shows them.
    pub fn success(self, what: &str) -> anyhow::Result<String> {
        if self.exit_code == 0 {
            return Ok(self.logs);
        }
        anyhow::bail!(
            "{what} failed in the cluster (exit code {}):\n{}",
            self.exit_code,
            self.logs.trim_end()
        )
    }
}

/// Runs `command` in `cluster` through ARM with `files` (name → bytes) in its working directory.
/// Entra clusters get a `clusterToken` for the AKS server app from the credential chain.
pub async fn run(
    arm: &Arm,
    cluster: &ClusterRef,
    command: &str,
    files: &[(String, Vec<u8>)],
) -> anyhow::Result<CommandResult> {
    let managed = arm.cluster(cluster).await?;
    if managed.run_command_disabled() {
        anyhow::bail!(
            "run command is disabled on the AKS cluster {} (apiServerAccessProfile.disableRunCommand \
             is true), so spin-aks cannot reach its private API server that way. Ask an \
             administrator to enable run command on the cluster, or run spin-aks from a network \
             that reaches the API server ({}).",
            cluster.name,
            managed.properties.private_fqdn.as_deref().unwrap_or("its private FQDN")
        );
    }
    let mut request = json!({
        "command": command,
        "context": base64::engine::general_purpose::STANDARD.encode(zip_context(files)?),
    });
    if managed.is_entra() {
        let token = arm
            .credential()
            .token(&server_scope(AKS_SERVER_APP))
            .await?;
        request["clusterToken"] = token.token.expose().into();
    }
    let result = arm.run_command(cluster, &request).await?.properties;
    let logs = result.logs.unwrap_or_default();
    let state = result.provisioning_state.unwrap_or_default();
    let finished = state.eq_ignore_ascii_case("succeeded");
    // A failed run without a command exit code never ran the command (e.g. its pod did not schedule).
    let ran = !state.eq_ignore_ascii_case("failed") || result.exit_code.unwrap_or(0) != 0;
    match result.exit_code {
        Some(exit_code) if ran => Ok(CommandResult { exit_code, logs }),
        None if finished => Ok(CommandResult { exit_code: 0, logs }),
        _ => anyhow::bail!(
            "AKS run command on {} ended {}: {}{}",
            cluster.name,
            if state.is_empty() {
                "without a result"
            } else {
                &state
            },
            result.reason.as_deref().unwrap_or("no reason given"),
            if logs.is_empty() {
                String::new()
            } else {
                format!("\n{}", logs.trim_end())
            }
        ),
    }
}

/// A deterministic zip of `files`: sorted by name, stored, every timestamp 1980-01-01, mode 0644.
pub fn zip_context(files: &[(String, Vec<u8>)]) -> anyhow::Result<Vec<u8>> {
    let mut sorted: Vec<&(String, Vec<u8>)> = files.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .last_modified_time(zip::DateTime::default())
        .unix_permissions(0o644);
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, bytes) in sorted {
        writer
            .start_file(name.as_str(), options)
            .with_context(|| format!("cannot add {name} to the run command context"))?;
        writer.write_all(bytes)?;
    }
    Ok(writer.finish()?.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_zip_is_deterministic_and_sorted() {
        let a = vec![
            ("b.yaml".to_string(), b"kind: B\n".to_vec()),
            ("a.yaml".to_string(), b"kind: A\n".to_vec()),
        ];
        let b: Vec<_> = a.iter().rev().cloned().collect();
        let zipped = zip_context(&a).unwrap();
        assert_eq!(zipped, zip_context(&b).unwrap());
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zipped)).unwrap();
        assert_eq!(archive.by_index(0).unwrap().name().unwrap(), "a.yaml");
        assert_eq!(archive.by_index(1).unwrap().name().unwrap(), "b.yaml");
    }

    #[test]
    fn non_zero_exit_shows_the_logs() {
        let result = CommandResult {
            exit_code: 1,
            logs: "error: no objects passed to apply\n".into(),
        };
        let err = result.success("kubectl apply").unwrap_err().to_string();
        assert!(
            err.contains("exit code 1") && err.contains("no objects passed"),
            "{err}"
        );
    }
}
