//! TLS trust for every HTTP client spin-aks makes: the system's roots (plus `--ca-file`'s), read
//! on the first certificate there is to verify, so plain-HTTP and cached runs never pay for them.

use std::fmt;
use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

/// A client configuration that verifies servers against the system's roots and `extra_roots`,
/// offering HTTP/2 and HTTP/1.1 (for `reqwest::ClientBuilder::tls_backend_preconfigured`).
pub fn client_config(extra_roots: Vec<CertificateDer<'static>>) -> rustls::ClientConfig {
    let provider = provider();
    let verifier = LazyVerifier {
        provider: provider.clone(),
        extra_roots,
        own: OnceLock::new(),
    };
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("the default provider supports the default protocol versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    config
}

/// A `reqwest` client builder that trusts what [`client_config`] trusts.
pub fn client_builder(extra_roots: Vec<CertificateDer<'static>>) -> reqwest::ClientBuilder {
    reqwest::Client::builder().tls_backend_preconfigured(client_config(extra_roots))
}

/// The certificates of a file given with `flag` (`--ca-file`, `--trust-cert`): PEM `CERTIFICATE`
/// blocks, or one DER certificate, each a valid X.509 certificate. A file that holds none is
/// refused as bad input naming the flag and the file, and `what` the file should hold.
pub fn certificate_file(
    path: &Path,
    flag: &str,
    what: &str,
) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let bytes = std::fs::read(path)
        .map_err(|e| crate::bad_input!("cannot read the {flag} {}: {e}", path.display()))?;
    let refuse = |problem: &str| {
        crate::bad_input!(
            "the {flag} {} {problem}; pass {what} as PEM (`-----BEGIN CERTIFICATE-----` blocks) or one DER certificate",
            path.display()
        )
    };
    let pem = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| refuse("holds a CERTIFICATE block that is not valid base64"))?;
    let from_pem = !pem.is_empty();
    let certs = if from_pem {
        pem
    } else {
        vec![CertificateDer::from(bytes)]
    };
    let mut store = rustls::RootCertStore::empty();
    for cert in &certs {
        if store.add(cert.clone()).is_err() {
            return Err(refuse(if from_pem {
                "holds a CERTIFICATE block that is not a valid X.509 certificate"
            } else {
                "holds no certificate"
            }));
        }
    }
    Ok(certs)
}

fn provider() -> Arc<CryptoProvider> {
    CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
}

/// The platform verifier, built on first use: once per process for the system's roots alone
/// (shared by every client), once per client when it trusts more.
struct LazyVerifier {
    provider: Arc<CryptoProvider>,
    extra_roots: Vec<CertificateDer<'static>>,
    own: OnceLock<Result<Arc<rustls_platform_verifier::Verifier>, rustls::Error>>,
}

impl LazyVerifier {
    fn verifier(&self) -> Result<Arc<rustls_platform_verifier::Verifier>, rustls::Error> {
        static SYSTEM: OnceLock<Result<Arc<rustls_platform_verifier::Verifier>, rustls::Error>> =
            OnceLock::new();
        let build = || {
            rustls_platform_verifier::Verifier::new_with_extra_roots(
                self.extra_roots.iter().cloned(),
                self.provider.clone(),
            )
            .map(Arc::new)
        };
        let cell = if self.extra_roots.is_empty() {
            &SYSTEM
        } else {
            &self.own
        };
        cell.get_or_init(build).clone()
    }
}

impl fmt::Debug for LazyVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LazyVerifier")
            .field("extra_roots", &self.extra_roots.len())
            .finish()
    }
}

impl ServerCertVerifier for LazyVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.verifier()?.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        )
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// True for `localhost`, `127.0.0.0/8` and `::1` (with or without a port): such registries may
/// be reached over plain HTTP without `--plain-http`, as Docker and crane allow.
pub fn is_loopback(registry: &str) -> bool {
    let host = host_without_port(registry);
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

pub fn host_without_port(registry: &str) -> &str {
    if let Some(rest) = registry.strip_prefix('[') {
        // `[::1]:5000` → `::1`
        return rest.split(']').next().unwrap_or(rest);
    }
    match registry.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => registry,
    }
}
