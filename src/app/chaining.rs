//! Spin's local service chaining rule: which `allowed_outbound_hosts` entries let a component call
//! another one by `*.spin.internal`, so that its locked form must require the host feature.

use super::model::Component;

/// Spin's domain suffix for calling a component of the same app.
const SUFFIX: &str = ".spin.internal";

/// Whether `component` calls other components by `*.spin.internal` (Spin's
/// `requires_service_chaining`, crates/loader/src/local.rs:898@v3.6.3).
pub fn requires_service_chaining(component: &Component) -> bool {
    component
        .allowed_outbound_hosts
        .iter()
        .any(|h| is_chaining_host(h))
}

/// Spin parses the entry as an allowed host (scheme, port, then host) and asks whether the host is
/// a literal domain ending in `.spin.internal` or exactly `*.spin.internal`; an entry that does not
/// parse (a template, a path, an unknown scheme without a port) never counts.
pub fn is_chaining_host(entry: &str) -> bool {
    let entry = entry.trim();
    let Some((scheme, rest)) = entry.split_once("://") else {
        return false;
    };
    let (host, rest) = rest.rsplit_once(':').unwrap_or((rest, ""));
    let port = match rest.split_once('/') {
        Some((port, "")) => port,
        Some(_) => return false,
        None => rest,
    };
    port_parses(port, scheme) && scheme_parses(scheme) && chaining_host(host.trim())
}

/// crates/outbound-networking-config/src/allowed_hosts.rs:338 (PortConfig::parse)@v3.6.3.
fn port_parses(port: &str, scheme: &str) -> bool {
    let number = |p: &str| p.parse::<u16>().is_ok();
    match port {
        "" => matches!(
            scheme,
            "postgres" | "mysql" | "redis" | "mqtt" | "http" | "https"
        ),
        "*" => true,
        _ if port.starts_with('{') => false,
        _ => match port.split_once("..") {
            Some((start, end)) => number(start) && number(end),
            None => number(port),
        },
    }
}

/// allowed_hosts.rs:205 (SchemeConfig::parse)@v3.6.3.
fn scheme_parses(scheme: &str) -> bool {
    scheme == "*" || (!scheme.starts_with('{') && scheme.chars().all(char::is_alphabetic))
}

/// allowed_hosts.rs:247 (HostConfig::parse) and :320 (is_for_service_chaining)@v3.6.3: `*.` +
/// `spin.internal` exactly, or a literal domain (lowercased, as the URL parser gives it) ending in
/// `.spin.internal`.
fn chaining_host(host: &str) -> bool {
    if host.starts_with('{') {
        return false;
    }
    let host = host.trim_end_matches('/');
    if host.contains('/') {
        return false;
    }
    if let Some(domain) = host.strip_prefix("*.") {
        return domain == &SUFFIX[1..];
    }
    const FORBIDDEN: &[char] = &[
        '*', ' ', '#', '%', ':', '<', '>', '?', '@', '[', '\\', ']', '^', '|',
    ];
    !host.contains(FORBIDDEN) && host.to_lowercase().ends_with(SUFFIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chaining_hosts_follow_spins_parser() {
        // Expected verdicts written from allowed_hosts.rs:116-149, 247-283, 320-326 and
        // crates/loader/src/local.rs:896-908 (all @v3.6.3; unchanged @v4.0.2).
        let cases = [
            ("http://api.spin.internal", true),
            ("https://api.spin.internal:8443", true),
            ("http://a.b.spin.internal", true),
            ("http://API.Spin.Internal", true), // the URL parser lowercases domains
            ("http://*.spin.internal", true),
            ("*://*.spin.internal:*", true),
            ("http://api.spin.internal/", true), // one trailing slash is allowed
            ("http://*.a.spin.internal", false), // AnySubdomain(".a.spin.internal") ≠ the suffix
            ("http://spin.internal", false),
            ("http://api.spin.internal.", false),
            ("*://*:*", false),
            ("http://*", false),
            ("http://self", false),
            ("http://{{ svc }}.spin.internal", false), // templates never parse as hosts
            ("http://api.spin.internal:{{ port }}", false),
            ("http://api.spin.internal/path", false),
            ("foo://api.spin.internal", false), // no port and no well-known one
            ("foo://api.spin.internal:80", true),
            ("api.spin.internal", false), // no scheme
            ("ht-tp://api.spin.internal:80", false),
            ("http://api.spin.internal:1..99", true),
        ];
        for (entry, expected) in cases {
            assert_eq!(is_chaining_host(entry), expected, "{entry}");
        }
    }
}
