//! `status` through run command: kubectl reads the SpinApp, Deployment, public Service and
//! Ingress in the cluster, and the status is made from them as a direct read makes it.

use crate::cluster::expose::public_service;
use crate::cluster::status::Observed;
use crate::workload::validate::DnsLabel;

/// The line before each object's JSON in the command's logs: `spin-aks-object <what>`.
const OBJECT_MARK: &str = "spin-aks-object";

/// The shell lines printing each object of app `name` in `namespace` as JSON after its mark
/// (nothing when it does not exist; the SpinApp only by name, and not when SpinKube is missing).
pub fn steps(namespace: &DnsLabel, name: &DnsLabel) -> Vec<String> {
    let get = |what: &str, resource: &str, object: &str, output: &str, fallback: &str| {
        format!(
            "echo '{OBJECT_MARK} {what}'\nkubectl get {resource} {object} -n {namespace} --ignore-not-found -o {output}{fallback}"
        )
    };
    vec![
        get(
            "spinapp",
            "spinapps.core.spinkube.dev",
            name.as_str(),
            "name",
            " 2>/dev/null || true",
        ),
        get("deployment", "deployment", name.as_str(), "json", ""),
        get(
            "service",
            "service",
            &public_service(name.as_str()),
            "json",
            "",
        ),
        get("ingress", "ingress", name.as_str(), "json", ""),
    ]
}

/// The objects the command printed.
pub fn observed(logs: &str) -> anyhow::Result<Observed> {
    let mut sections: Vec<(&str, String)> = Vec::new();
    for line in logs.lines() {
        match line.strip_prefix(OBJECT_MARK) {
            Some(what) => sections.push((what.trim(), String::new())),
            None => {
                if let Some((_, text)) = sections.last_mut() {
                    text.push_str(line);
                    text.push('\n');
                }
            }
        }
    }
    let section = |what: &str| {
        sections
            .iter()
            .find(|(w, _)| *w == what)
            .map(|(_, text)| text.trim())
            .filter(|text| !text.is_empty())
    };
    Ok(Observed {
        spinapp: section("spinapp").is_some(),
        deployment: parse(section("deployment"), "Deployment")?,
        service: parse(section("service"), "Service")?,
        ingress: parse(section("ingress"), "Ingress")?,
    })
}

fn parse<T: serde::de::DeserializeOwned>(
    text: Option<&str>,
    kind: &str,
) -> anyhow::Result<Option<T>> {
    text.map(|text| {
        serde_json::from_str(text).map_err(|e| {
            anyhow::anyhow!("kubectl in the cluster printed a {kind} spin-aks cannot read: {e}")
        })
    })
    .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::status::{compose, Place};

    #[test]
    fn empty_sections_are_absent_objects_and_nothing_deployed_is_an_error() {
        let place = Place {
            cluster: "aks1",
            namespace: "shop",
            name: "app",
        };
        let nothing = "spin-aks-object spinapp\nspin-aks-object deployment\nspin-aks-object service\nspin-aks-object ingress\n";
        let err = compose(&place, observed(nothing).unwrap()).unwrap_err();
        assert!(
            err.to_string()
                .contains("app is not deployed in namespace shop of `aks1`"),
            "{err}"
        );

        let spinapp_only = nothing.replace("spinapp\n", "spinapp\nspinapp.core.spinkube.dev/app\n");
        let status = compose(&place, observed(&spinapp_only).unwrap()).unwrap();
        assert_eq!(
            (status.kind.as_str(), status.ready, status.image),
            ("SpinApp", 0, None)
        );

        let garbled = nothing.replace("deployment\n", "deployment\n{not json\n");
        assert!(observed(&garbled).is_err());
    }
}
