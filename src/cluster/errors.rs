//! Kubernetes API failures as one sentence naming the context and server: unreachable, credentials
//! refused, or forbidden (the verb, resource and namespace denied). All are exit 1.

use super::connect::Connection;

/// What we were doing when a request failed, for the message.
#[derive(Clone, Copy, Debug)]
pub struct ApiCall<'a> {
    pub verb: &'a str,
    pub resource: &'a str,
    pub namespace: Option<&'a str>,
}

impl<'a> ApiCall<'a> {
    pub fn new(verb: &'a str, resource: &'a str, namespace: Option<&'a str>) -> Self {
        ApiCall {
            verb,
            resource,
            namespace,
        }
    }
}

/// The user-facing error for `err`, raised while doing `action` through `conn`.
pub fn explain(err: kube::Error, conn: &Connection, action: ApiCall<'_>) -> anyhow::Error {
    let where_ = format!("context `{}` ({})", conn.context, conn.server);
    let scope = match action.namespace {
        Some(ns) => format!(" in namespace `{ns}`"),
        None => String::new(),
    };
    let message = match &err {
        kube::Error::Api(status) if status.code == 401 => format!(
            "the cluster refused the credentials of {where_}: {}; refresh them (log in again, or `spin-aks cluster get-credentials` for AKS)",
            status.message
        ),
        kube::Error::Api(status) if status.code == 403 => format!(
            "forbidden: {where_} may not {} {}{scope}: {}; ask for a role that grants it",
            action.verb, action.resource, status.message
        ),
        kube::Error::Api(status) => format!(
            "{} {}{scope} failed on {where_}: {} ({})",
            action.verb, action.resource, status.message, status.reason
        ),
        kube::Error::Auth(e) => format!("cannot get credentials for {where_}: {e}"),
        other if is_connection_error(other) => format!(
            "cannot reach the cluster of {where_} to {} {}{scope}: {}; {}. Once it answers, run \
             the same command again: what was applied stays, and it continues from there",
            action.verb,
            action.resource,
            root_cause(other),
            conn.unreachable_hint.as_deref().unwrap_or(
                "check the network and the server address, or choose another --context"
            )
        ),
        other => format!(
            "{} {}{scope} failed on {where_}: {}",
            action.verb,
            action.resource,
            root_cause(other)
        ),
    };
    anyhow::Error::new(err).context(message)
}

/// True for the status code `code`.
pub fn is_status(err: &kube::Error, code: u16) -> bool {
    matches!(err, kube::Error::Api(status) if status.code == code)
}

fn is_connection_error(err: &kube::Error) -> bool {
    matches!(
        err,
        kube::Error::HyperError(_) | kube::Error::Service(_) | kube::Error::RustlsTls(_)
    )
}

/// The innermost cause's text: "Connection refused (os error 111)" rather than a wrapper's.
fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = err;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}
