//! What we authenticate with: a [`Credential`] whose secrets are wrapped in [`Secret`], which
//! never prints its value (Debug and Display redact), so no log line or error can leak it.

pub use crate::secret::Secret;

/// How to authenticate to one registry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Credential {
    Anonymous,
    /// Username and password (or a personal access token used as one).
    Basic {
        username: String,
        password: Secret,
    },
    /// An OAuth2 refresh token (Docker's `identitytoken`, an ACR refresh token): exchanged at
    /// the token realm with `grant_type=refresh_token`, or sent as a basic-auth password.
    IdentityToken {
        username: String,
        token: Secret,
    },
}

/// A credential and where it came from, so auth errors can say what to fix.
#[derive(Clone, Debug)]
pub struct SourcedCredential {
    pub credential: Credential,
    /// e.g. "the Docker config /home/me/.docker/config.json", "docker-credential-pass".
    pub source: String,
    /// The registry's auth challenge when it is known without asking (ACR's token service, for
    /// an ACR refresh token): the first request then carries a token instead of drawing a 401.
    pub challenge: Option<Challenge>,
}

impl SourcedCredential {
    pub fn anonymous() -> Self {
        SourcedCredential {
            credential: Credential::Anonymous,
            source: "no credentials (anonymous)".to_string(),
            challenge: None,
        }
    }
}

/// A parsed `WWW-Authenticate` challenge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
        /// The scope the registry asked for, if it named one.
        scope: Option<String>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted_in_debug_and_display() {
        let credential = Credential::Basic {
            username: "me".into(),
            password: Secret::new("hunter2"),
        };
        let shown = format!("{credential:?} {}", Secret::new("hunter2"));
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("me"));
    }
}
