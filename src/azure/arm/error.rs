//! ARM's error body (`{"error":{"code","message"}}`) as a typed error shown as `code: message`;
//! `AuthorizationFailed` also names the missing action and a built-in role that grants it.

use reqwest::header::HeaderMap;
use std::fmt;

use crate::azure::rest::{ErrorBody, Repeat, ServiceError};

/// A refusal from ARM. Callers match on [`ArmError::code`] (`RoleAssignmentExists`, `PrincipalNotFound`…).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArmError {
    pub status: u16,
    pub code: String,
    pub message: String,
    /// What was asked: `GET https://…` (no query string).
    pub request: String,
}

impl ArmError {
    /// The error in an ARM response body, or a generic one naming the status.
    pub fn from_body(status: u16, body: &str, request: String) -> ArmError {
        let ErrorBody { code, message, .. } = ErrorBody::parse(status, body);
        ArmError {
            status,
            code,
            message,
            request,
        }
    }

    /// Whether this is a long-running operation that ended `Failed` or `Canceled` (its status
    /// was read with 200), rather than a refused request.
    pub fn operation_failed(&self) -> bool {
        self.status == 200
    }

    /// The action an `AuthorizationFailed` message names (`… perform action 'X' over scope …`).
    pub fn denied_action(&self) -> Option<&str> {
        let rest = self.message.split("perform action '").nth(1)?;
        rest.split('\'').next()
    }
}

impl fmt::Display for ArmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)?;
        if self.code == "AuthorizationFailed" {
            if let Some(action) = self.denied_action() {
                write!(
                    f,
                    " (the signed-in identity needs `{action}`, which the {} role grants)",
                    role_for_action(action)
                )?;
            }
        }
        write!(f, " [{}]", self.request)
    }
}

impl std::error::Error for ArmError {}

/// What a step whose operation failed in Azure adds: nothing done is lost or done twice.
pub const RERUN_CONTINUES: &str = "run the same command again: it continues from what exists";

/// `err` when it is an operation that ended `Failed` in Azure (its error not explained
/// further): the step that failed, ARM's words, and that a re-run continues. Others unchanged.
pub fn failed_step(err: anyhow::Error, step: &str) -> anyhow::Error {
    let Some(refusal) = err.downcast_ref::<ArmError>() else {
        return err;
    };
    if !refusal.operation_failed() || err.to_string() != refusal.to_string() {
        return err;
    }
    let said = format!("{step} failed: ARM answered {refusal}\n  {RERUN_CONTINUES}");
    err.context(said)
}

/// The built-in role(s) a user would be given for `action`.
pub fn role_for_action(action: &str) -> &'static str {
    let action = action.to_ascii_lowercase();
    if action.starts_with("microsoft.authorization/roleassignments/") {
        "Owner, User Access Administrator or Role Based Access Control Administrator"
    } else if action.ends_with("/listclusterusercredential/action") {
        "Azure Kubernetes Service Cluster User Role"
    } else if action.contains("/runcommand/")
        || action.contains("/commandresults/")
        || action == "microsoft.containerservice/managedclusters/agentpools/write"
        || action == "microsoft.containerservice/managedclusters/write"
        || action == "microsoft.containerservice/managedclusters/delete"
    {
        "Azure Kubernetes Service Contributor Role (or Contributor)"
    } else if action.ends_with("/read") {
        "Reader"
    } else if action.starts_with("microsoft.managedidentity/") {
        "Managed Identity Contributor"
    } else if action.starts_with("microsoft.documentdb/") {
        "DocumentDB Account Contributor"
    } else {
        "Contributor"
    }
}

impl ServiceError for ArmError {
    const SERVICE: &'static str = "ARM";

    fn from_reply(status: u16, _headers: &HeaderMap, body: &str, request: String) -> Self {
        ArmError::from_body(status, body, request)
    }

    fn retryable(&self, repeat: Repeat) -> bool {
        match self.status {
            429 => true,
            500..=599 => repeat == Repeat::Safe,
            // Another operation on the same resource (for federated credentials: another write on
            // the same identity, which Entra serializes) is still running: try again later.
            409 => {
                repeat == Repeat::Safe
                    && matches!(
                        self.code.as_str(),
                        "RetryableErrorDueToAnotherOperation"
                            | "ConcurrentFederatedIdentityCredentialsWritesForSingleManagedIdentity"
                    )
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorization_failed_names_action_and_role() {
        let body = r#"{"error":{"code":"AuthorizationFailed","message":"The client 'a@b.c' with object id '1' does not have authorization to perform action 'Microsoft.Authorization/roleAssignments/write' over scope '/subscriptions/s' or the scope is invalid."}}"#;
        let err = ArmError::from_body(403, body, "PUT https://arm/x".into());
        let text = err.to_string();
        assert!(
            text.starts_with("AuthorizationFailed: The client"),
            "{text}"
        );
        assert!(text.contains("`Microsoft.Authorization/roleAssignments/write`"));
        assert!(text.contains(
            "Owner, User Access Administrator or Role Based Access Control Administrator"
        ));
    }

    #[test]
    fn identity_and_cosmos_writes_name_their_contributor_roles() {
        assert_eq!(
            role_for_action("Microsoft.ManagedIdentity/userAssignedIdentities/write"),
            "Managed Identity Contributor"
        );
        assert_eq!(
            role_for_action("Microsoft.DocumentDB/databaseAccounts/sqlRoleAssignments/write"),
            "DocumentDB Account Contributor"
        );
        assert_eq!(
            role_for_action("Microsoft.ManagedIdentity/userAssignedIdentities/read"),
            "Reader"
        );
    }

    #[test]
    fn bodies_without_the_envelope_keep_the_status() {
        let err = ArmError::from_body(502, "<html>bad gateway</html>", "GET x".into());
        assert_eq!(err.code, "HTTP502");
        assert_eq!(err.message, "<html>bad gateway</html>");
    }

    fn error(status: u16, code: &str) -> ArmError {
        ArmError {
            status,
            code: code.into(),
            message: String::new(),
            request: String::new(),
        }
    }

    #[test]
    fn only_throttling_repeats_an_action_with_effects() {
        let retryable = |e: ArmError, repeat| e.retryable(repeat);
        assert!(retryable(error(429, "TooManyRequests"), Repeat::Once));
        assert!(!retryable(error(503, "ServiceUnavailable"), Repeat::Once));
        assert!(retryable(error(503, "ServiceUnavailable"), Repeat::Safe));
        assert!(retryable(
            error(409, "RetryableErrorDueToAnotherOperation"),
            Repeat::Safe
        ));
        assert!(retryable(
            error(
                409,
                "ConcurrentFederatedIdentityCredentialsWritesForSingleManagedIdentity"
            ),
            Repeat::Safe
        ));
        assert!(!retryable(error(409, "RoleAssignmentExists"), Repeat::Safe));
        assert!(!retryable(error(403, "AuthorizationFailed"), Repeat::Safe));
    }
}
