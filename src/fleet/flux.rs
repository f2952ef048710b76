//! The two Flux objects that make a cluster follow the deploy artifact: an OCIRepository pulling
//! `<repository>:<env>` (verifying its Notation signature with `--verify`) and a Kustomization
//! applying it.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine;
use rustls::pki_types::CertificateDer;
use serde_json::{json, Value};

use crate::attest::notation::TrustPolicy;
use crate::oci::flux_artifact::CONTENT_MEDIA_TYPE;
use crate::registry::host;

pub const SOURCE_API: &str = "source.toolkit.fluxcd.io/v1";
pub const KUSTOMIZE_API: &str = "kustomize.toolkit.fluxcd.io/v1";

/// How a cluster follows the artifact.
#[derive(Clone, Debug)]
pub struct Follow<'a> {
    /// The app's name: both objects are named after it, in its namespace.
    pub name: &'a str,
    pub namespace: &'a str,
    /// `registry/repository` of the deploy artifact.
    pub repository: &'a str,
    pub env: &'a str,
    pub interval: Duration,
    pub timeout: Duration,
    /// Plain HTTP to the registry (always for a loopback one).
    pub insecure: bool,
    /// The OCIRepository verifies the artifact's Notation signature with the trust Secret.
    pub verify: bool,
}

/// The OCIRepository: the env tag, Flux's content layer extracted; ACR pulled with the
/// cluster's workload identity (`provider: azure`).
pub fn source(follow: &Follow) -> Value {
    let registry = follow.repository.split('/').next().unwrap_or_default();
    let mut spec = json!({
        "interval": seconds(follow.interval),
        "url": format!("oci://{}", follow.repository),
        "ref": {"tag": follow.env},
        "layerSelector": {"mediaType": CONTENT_MEDIA_TYPE, "operation": "extract"},
    });
    if follow.insecure || crate::tls::is_loopback(registry) {
        spec["insecure"] = json!(true);
    }
    if host::is_acr(registry) {
        spec["provider"] = json!("azure");
    }
    if follow.verify {
        // source-controller v1.9.5 docs/spec/v1/ocirepositories.md §Verification, §Notation.
        let secret = trust_secret_name(follow.name);
        spec["verify"] = json!({"provider": "notation", "secretRef": {"name": secret}});
    }
    json!({
        "apiVersion": SOURCE_API,
        "kind": "OCIRepository",
        "metadata": {"name": follow.name, "namespace": follow.namespace},
        "spec": spec,
    })
}

/// The Kustomization: server-side applies the artifact into the namespace and prunes what a new
/// artifact drops, with no health checks (`wait` off): whether the workload rolled out is judged
/// from the Deployment itself (`status`). kustomize-controller reconciles one Kustomization at a
/// time and polls health checks every 5 s (v1.9.5 internal/controller/kustomization_controller.go:
/// 1061-1062), so a check still waiting on a rollout held every newer revision back until its next
/// poll, up to 5 s; and for a SpinApp it was racy besides: its first poll often saw the operator's
/// Deployment before the new spec reached it, and passed on the old rollout.
pub fn kustomization(follow: &Follow) -> Value {
    json!({
        "apiVersion": KUSTOMIZE_API,
        "kind": "Kustomization",
        "metadata": {"name": follow.name, "namespace": follow.namespace},
        "spec": {
            "interval": seconds(follow.interval),
            "retryInterval": seconds(follow.interval.min(Duration::from_secs(30))),
            "sourceRef": {"kind": "OCIRepository", "name": follow.name},
            "path": "./",
            "prune": true,
            "targetNamespace": follow.namespace,
            "timeout": seconds(follow.timeout),
        },
    })
}

/// The Secret in the app's namespace holding what the OCIRepository verifies with.
pub fn trust_secret_name(app: &str) -> String {
    format!("{app}-notation-trust")
}

/// The name of the one trust policy and of its trust store in the trust Secret.
const TRUST_NAME: &str = "spin-aks";

/// The Secret `spec.verify.secretRef` names, as source-controller v1.9.5 reads it
/// (internal/controller/ocirepository_controller.go, `verifySignature`, case "notation"): the
/// trust policy under `trustpolicy.json`, every key ending in `.pem` or `.crt` a certificate of
/// the trust store. Its trust store decodes only the first PEM block of each key
/// (internal/oci/notation/notation.go, `GetCertificates`), so each certificate has a key of its own.
pub fn trust_secret(follow: &Follow, policy: &TrustPolicy) -> Value {
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    let document = trust_policy_document(follow.repository, policy.subject.as_deref());
    let mut data = BTreeMap::new();
    data.insert(
        "trustpolicy.json".to_string(),
        b64(&serde_json::to_vec_pretty(&document).unwrap_or_default()),
    );
    for (i, certificate) in policy.roots.iter().enumerate() {
        data.insert(format!("trusted-{i}.pem"), b64(pem(certificate).as_bytes()));
    }
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": trust_secret_name(follow.name), "namespace": follow.namespace},
        "type": "Opaque",
        "data": data,
    })
}

/// A Notation trust policy document (notaryproject/specifications trust-store-trust-policy.md
/// §Trust Policy, version 1.0, as notation-go v1.3.2's `trustpolicy.Document` parses it): the
/// artifact's repository only, strict verification, the Secret's certificates as the one `ca`
/// trust store, and the signer `subject` must be (else any identity that store certifies).
pub fn trust_policy_document(repository: &str, subject: Option<&str>) -> Value {
    let identity = subject.map_or_else(|| "*".to_string(), |dn| format!("x509.subject: {dn}"));
    json!({
        "version": "1.0",
        "trustPolicies": [{
            "name": TRUST_NAME,
            "registryScopes": [repository],
            "signatureVerification": {"level": "strict"},
            "trustStores": [format!("ca:{TRUST_NAME}")],
            "trustedIdentities": [identity],
        }],
    })
}

/// One certificate as a PEM block (RFC 7468 §5: base64 in lines of 64 characters).
fn pem(certificate: &CertificateDer) -> String {
    let text = base64::engine::general_purpose::STANDARD.encode(certificate.as_ref());
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in text.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

/// The key of the one kustomization of an AKS Flux configuration; the extension names the
/// in-cluster Kustomization `<configuration>-<key>`.
pub const AKS_KUSTOMIZATION: &str = "objects";

/// The Kustomization that applies the app on a cluster: ours, or the one the AKS extension makes.
pub fn kustomization_name(name: &str, aks: bool) -> String {
    if aks {
        format!("{name}-{AKS_KUSTOMIZATION}")
    } else {
        name.to_string()
    }
}

/// The same as ARM's `fluxConfigurations` properties (the AKS Flux extension): a namespaced
/// configuration with an OCIRepository source (ACR through the cluster's workload identity) and
/// one kustomization that does not wait for what it applied (see [`kustomization`]; ARM's `wait`
/// is true unless set).
pub fn configuration(follow: &Follow) -> Value {
    let registry = follow.repository.split('/').next().unwrap_or_default();
    let mut source = json!({
        "url": format!("oci://{}", follow.repository),
        "repositoryRef": {"tag": follow.env},
        "syncIntervalInSeconds": follow.interval.as_secs().max(1),
        "timeoutInSeconds": 600,
        "layerSelector": {"mediaType": CONTENT_MEDIA_TYPE, "operation": "extract"},
        "useWorkloadIdentity": host::is_acr(registry),
    });
    if follow.insecure || crate::tls::is_loopback(registry) {
        source["insecure"] = json!(true);
    }
    json!({
        "scope": "namespace",
        "namespace": follow.namespace,
        "sourceKind": "OCIRepository",
        "suspend": false,
        "ociRepository": source,
        "kustomizations": {AKS_KUSTOMIZATION: {
            "path": "./",
            "prune": true,
            "wait": false,
            "syncIntervalInSeconds": follow.interval.as_secs().max(1),
            "retryIntervalInSeconds": follow.interval.as_secs().clamp(1, 30),
            "timeoutInSeconds": follow.timeout.as_secs().max(1),
        }},
    })
}

/// A Go duration Flux parses: whole seconds.
fn seconds(duration: Duration) -> String {
    format!("{}s", duration.as_secs().max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn follow(repository: &str) -> Follow<'_> {
        Follow {
            name: "hello",
            namespace: "shop",
            repository,
            env: "prod",
            interval: Duration::from_secs(60),
            timeout: Duration::from_secs(300),
            insecure: false,
            verify: false,
        }
    }

    #[test]
    fn loopback_registries_are_insecure_and_acr_pulls_with_workload_identity() {
        let local = source(&follow("127.0.0.1:5000/hello-deploy"));
        assert_eq!(local["spec"]["insecure"], true);
        assert_eq!(local["spec"]["url"], "oci://127.0.0.1:5000/hello-deploy");
        assert_eq!(local["spec"]["ref"]["tag"], "prod");
        let acr = source(&follow("myacr.azurecr.io/hello-deploy"));
        assert_eq!(acr["spec"]["provider"], "azure");
        assert!(acr["spec"].get("insecure").is_none());
    }

    #[test]
    fn the_kustomization_applies_without_health_checks_that_would_hold_newer_revisions() {
        let k = kustomization(&follow("r.example/hello-deploy"));
        assert!(k["spec"].get("healthChecks").is_none(), "{k}");
        assert!(k["spec"].get("wait").is_none(), "{k}");
        assert_eq!(k["spec"]["targetNamespace"], "shop");
        assert_eq!(
            configuration(&follow("r.example/hello-deploy"))["kustomizations"][AKS_KUSTOMIZATION]
                ["wait"],
            false
        );
    }

    #[test]
    fn a_verifying_source_names_the_trust_secret_holding_the_policy_and_each_certificate() {
        use crate::attest::notation::test_pki::{self, KeyKind, Leaf};
        use rustls::pki_types::pem::PemObject;
        let mut follow = follow("127.0.0.1:5000/hello-deploy");
        assert!(source(&follow)["spec"].get("verify").is_none());
        follow.verify = true;
        let verify = &source(&follow)["spec"]["verify"];
        assert_eq!(verify["provider"], "notation");
        assert_eq!(verify["secretRef"]["name"], "hello-notation-trust");

        let pki = test_pki::make("fleet test root", &Leaf::new(KeyKind::P256));
        let roots: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(pki.chain_pem.as_bytes())
                .collect::<Result<_, _>>()
                .unwrap();
        let dn = "C=US,ST=WA,O=spin-aks tests,CN=spin-aks test signer";
        for (subject, identity) in [
            (None, "*".to_string()),
            (Some(dn), format!("x509.subject: {dn}")),
        ] {
            let policy = TrustPolicy {
                roots: roots.clone(),
                subject: subject.map(str::to_string),
            };
            let secret = trust_secret(&follow, &policy);
            assert_eq!(secret["metadata"]["name"], "hello-notation-trust");
            assert_eq!(secret["metadata"]["namespace"], "shop");
            let data = secret["data"].as_object().unwrap();
            let decode = |key: &str| {
                base64::engine::general_purpose::STANDARD
                    .decode(data[key].as_str().unwrap())
                    .unwrap()
            };
            let keys: Vec<&str> = data.keys().map(String::as_str).collect();
            assert_eq!(keys, ["trusted-0.pem", "trusted-1.pem", "trustpolicy.json"]);
            // Each key holds one certificate, the one given, as PEM.
            for (i, root) in roots.iter().enumerate() {
                let pem = decode(&format!("trusted-{i}.pem"));
                let parsed: Vec<CertificateDer> = CertificateDer::pem_slice_iter(&pem)
                    .collect::<Result<_, _>>()
                    .unwrap();
                assert_eq!(parsed, std::slice::from_ref(root));
            }
            let document: Value = serde_json::from_slice(&decode("trustpolicy.json")).unwrap();
            assert_eq!(document["version"], "1.0");
            let statement = &document["trustPolicies"][0];
            assert_eq!(
                statement["registryScopes"],
                json!(["127.0.0.1:5000/hello-deploy"])
            );
            assert_eq!(statement["signatureVerification"]["level"], "strict");
            assert_eq!(statement["trustStores"], json!(["ca:spin-aks"]));
            assert_eq!(statement["trustedIdentities"], json!([identity]));
        }
    }
}
