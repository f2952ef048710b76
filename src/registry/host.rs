//! Registry host facts that decide transport and auth: Docker Hub's API host and Azure Container
//! Registry login servers. Whether a host is loopback (plain HTTP allowed) is `crate::tls`'s.

use crate::tls::host_without_port;

/// The host to send API requests to for `registry` (Docker Hub's API lives on another name than
/// its alias).
pub fn api_host(registry: &str) -> &str {
    match registry {
        "docker.io" | "index.docker.io" => "registry-1.docker.io",
        other => other,
    }
}

/// True for Azure Container Registry login servers in the public, China and US Government clouds.
pub fn is_acr(registry: &str) -> bool {
    let host = host_without_port(registry).to_ascii_lowercase();
    [".azurecr.io", ".azurecr.cn", ".azurecr.us"]
        .iter()
        .any(|suffix| host.ends_with(suffix))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::is_loopback;

    #[test]
    fn docker_hub_has_its_own_api_host() {
        assert_eq!(api_host("docker.io"), "registry-1.docker.io");
        assert_eq!(api_host("index.docker.io"), "registry-1.docker.io");
        assert_eq!(api_host("r.example:5000"), "r.example:5000");
    }

    #[test]
    fn loopback_and_acr_hosts_are_recognised() {
        for host in [
            "localhost",
            "localhost:5000",
            "127.0.0.1:80",
            "127.1.2.3",
            "[::1]:5000",
        ] {
            assert!(is_loopback(host), "{host}");
        }
        for host in ["example.com", "10.0.0.1:5000", "localhost.example.com"] {
            assert!(!is_loopback(host), "{host}");
        }
        assert!(is_acr("myacr.azurecr.io"));
        assert!(is_acr("myacr.azurecr.cn"));
        assert!(is_acr("myacr.AzureCR.us"));
        assert!(!is_acr("azurecr.io.example.com"));
    }
}
