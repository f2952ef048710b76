//! Reads `NO_PROXY` as curl and Go do, for the API server's address: kube takes `HTTPS_PROXY` from
//! the environment for any cluster, even one `NO_PROXY` names (kube-client 5, file_loader.rs:140).

use std::net::IpAddr;

/// Whether `host` (a name or an IP address, no port) is exempt from the proxy by the
/// comma-separated `no_proxy` list: `*`, a name (and its subdomains; a leading `.` is the same),
/// an IP address, or an IP range in CIDR notation; an entry may carry `:port`.
pub fn exempt(host: &str, port: u16, no_proxy: &str) -> bool {
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase();
    no_proxy
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .any(|entry| matches(&host, port, entry))
}

fn matches(host: &str, port: u16, entry: &str) -> bool {
    if entry == "*" {
        return true;
    }
    if let Some((range, bits)) = entry.split_once('/') {
        return in_range(host, range, bits);
    }
    let (name, wanted_port) = split_port(entry);
    if wanted_port.is_some_and(|p| p != port) {
        return false;
    }
    let name = name.trim_start_matches('[').trim_end_matches(']');
    let name = name
        .trim_start_matches("*.")
        .trim_start_matches('.')
        .to_ascii_lowercase();
    if let (Ok(a), Ok(b)) = (host.parse::<IpAddr>(), name.parse::<IpAddr>()) {
        return a == b;
    }
    host == name || host.ends_with(&format!(".{name}"))
}

/// `name:port` → (`name`, port); an IPv6 address without brackets has no port.
fn split_port(entry: &str) -> (&str, Option<u16>) {
    if entry.parse::<IpAddr>().is_ok() {
        return (entry, None);
    }
    match entry.rsplit_once(':') {
        Some((name, port)) => match port.parse() {
            Ok(port) => (name, Some(port)),
            Err(_) => (entry, None),
        },
        None => (entry, None),
    }
}

fn in_range(host: &str, range: &str, bits: &str) -> bool {
    let (Ok(host), Ok(range), Ok(bits)) = (
        host.parse::<IpAddr>(),
        range.parse::<IpAddr>(),
        bits.parse::<u32>(),
    ) else {
        return false;
    };
    let prefix = |a: u128, b: u128, width: u32| {
        bits <= width && (bits == 0 || (a ^ b) >> (width - bits) == 0)
    };
    match (host, range) {
        (IpAddr::V4(a), IpAddr::V4(b)) => prefix(u32::from(a).into(), u32::from(b).into(), 32),
        (IpAddr::V6(a), IpAddr::V6(b)) => prefix(u128::from(a), u128::from(b), 128),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::exempt;

    #[test]
    fn no_proxy_entries_match_as_curl_reads_them() {
        for (host, port, list, wanted) in [
            ("127.0.0.1", 6443, "127.0.0.1,localhost", true),
            ("localhost", 6443, "127.0.0.1,localhost", true),
            ("api.example.com", 443, "example.com", true),
            ("api.example.com", 443, ".example.com", true),
            ("api.example.com", 443, "*.example.com", true),
            ("badexample.com", 443, "example.com", false),
            ("api.example.com", 443, "example.com:8443", false),
            ("api.example.com", 8443, "example.com:8443", true),
            ("10.1.2.3", 443, "10.0.0.0/8", true),
            ("11.1.2.3", 443, "10.0.0.0/8", false),
            ("::1", 443, "::1", true),
            ("[fd00::5]", 443, "fd00::/8", true),
            ("anything", 1, "*", true),
            ("anything", 1, "", false),
        ] {
            assert_eq!(
                exempt(host, port, list),
                wanted,
                "{host}:{port} in `{list}`"
            );
        }
    }
}
