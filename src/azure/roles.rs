//! Making sure a principal holds a built-in role at a scope: list first, create under a new GUID,
//! `RoleAssignmentExists` counted as success, `PrincipalNotFound` (replication delay) retried as az does.

use std::time::Duration;

use super::arm::{Arm, ArmError};

/// AcrPull (docs/cluster.md).
pub const ACR_PULL: &str = "7f951dda-4ed3-4680-a7ca-43fe172d538d";

/// Tries of a role assignment while Entra has not replicated the principal yet (az: 10).
const PRINCIPAL_TRIES: u32 = 10;

/// What [`ensure_role`] found or did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Assignment {
    /// The principal already held the role there (directly or inherited).
    Existing,
    Created,
}

/// Whether `principal_id` holds the built-in `role` at `scope` (directly or inherited).
pub async fn holds(arm: &Arm, scope: &str, role: &str, principal_id: &str) -> anyhow::Result<bool> {
    let held = arm.role_assignments(scope, principal_id).await?;
    let suffix = format!("/roleDefinitions/{role}").to_ascii_lowercase();
    Ok(held.iter().any(|a| {
        a.properties.principal_id == principal_id
            && a.properties
                .role_definition_id
                .to_ascii_lowercase()
                .ends_with(&suffix)
    }))
}

/// Ensures `principal_id` (a service principal) holds the built-in `role` at `scope`.
pub async fn ensure_role(
    arm: &Arm,
    scope: &str,
    role: &str,
    principal_id: &str,
) -> anyhow::Result<Assignment> {
    if holds(arm, scope, role, principal_id).await? {
        return Ok(Assignment::Existing);
    }
    let mut try_number = 0;
    loop {
        try_number += 1;
        let name = uuid::Uuid::new_v4().to_string();
        let error = match arm
            .create_role_assignment(scope, role, principal_id, &name)
            .await
        {
            Ok(_) => return Ok(Assignment::Created),
            Err(error) => error,
        };
        let code = error.downcast_ref::<ArmError>().map(|e| e.code.as_str());
        match code {
            Some("RoleAssignmentExists") => return Ok(Assignment::Existing),
            Some("PrincipalNotFound") if try_number < PRINCIPAL_TRIES => {
                let wait = Duration::from_secs(2 + 2 * u64::from(try_number));
                tracing::debug!(try_number, ?wait, "principal not replicated yet, retrying");
                arm.pause(wait).await;
            }
            _ => return Err(error),
        }
    }
}
