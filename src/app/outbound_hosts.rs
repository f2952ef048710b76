//! `allowed_outbound_hosts` as Spin reads them: each entry parsed by Spin's rules (scheme, host
//! or CIDR, port), and the deprecated `allowed_http_hosts` converted as Spin converts them.

use std::net::IpAddr;

/// Why Spin's parser refuses `entry`, or `Ok` when it accepts it. Mirrors
/// `AllowedHostConfig::parse` (spin v3.6.3 crates/outbound-networking-config/src/allowed_hosts.rs:116).
pub fn parse(entry: &str) -> Result<(), String> {
    let url = entry.trim();
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(match url {
            "*" | ":" | "" | "?" => format!("`{url}` is not a host; write `<scheme>://<host>[:<port>]` (`*://*:*` allows everything)"),
            _ => format!("`{url}` has no scheme; write e.g. `https://{url}` or `*://{url}:*`"),
        });
    };
    if rest.starts_with('[') && rest.trim_end_matches('/').ends_with(']') {
        return Err(format!(
            "`{url}`: an IPv6 host needs a port here, e.g. `{scheme}://{}:*`",
            rest.trim_end_matches('/')
        ));
    }
    let (host, rest) = rest.rsplit_once(':').unwrap_or((rest, ""));
    let port = match rest.split_once('/') {
        Some((_, path)) if !path.is_empty() => {
            return Err(format!("`{url}`: an allowed host has no path"))
        }
        Some((port, _)) => port,
        None => rest,
    };
    port_spec(port, scheme).map_err(|m| match port {
        "" => format!("`{url}`: no port, {m}"),
        _ => format!("`{url}`: port `{port}`: {m}"),
    })?;
    scheme_spec(scheme).map_err(|m| format!("`{url}`: scheme `{scheme}`: {m}"))?;
    host_spec(host).map_err(|m| format!("`{url}`: host `{host}`: {m}"))
}

/// `PortConfig::parse` (allowed_hosts.rs:338): empty means the scheme's well-known port.
fn port_spec(port: &str, scheme: &str) -> Result<(), String> {
    if port.is_empty() {
        return well_known_port(scheme).map(|_| ()).ok_or_else(|| {
            format!("and `{scheme}` has no well-known port; add one, e.g. `:1234`, or `:*`")
        });
    }
    if port == "*" {
        return Ok(());
    }
    if port.starts_with('{') {
        return Err("port lists are not supported".into());
    }
    let number = |p: &str| p.parse::<u16>().is_ok();
    let valid = match port.split_once("..") {
        Some((start, end)) => number(start) && number(end),
        None => number(port),
    };
    valid
        .then_some(())
        .ok_or_else(|| "not a port number (0-65535), a range `a..b` or `*`".into())
}

/// allowed_hosts.rs:407.
fn well_known_port(scheme: &str) -> Option<u16> {
    match scheme {
        "postgres" => Some(5432),
        "mysql" => Some(3306),
        "redis" => Some(6379),
        "mqtt" => Some(1883),
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

/// `SchemeConfig::parse` (allowed_hosts.rs:205): `*`, or letters only.
fn scheme_spec(scheme: &str) -> Result<(), String> {
    if scheme == "*" {
        Ok(())
    } else if scheme.starts_with('{') {
        Err("scheme lists are not supported".into())
    } else if scheme.chars().any(|c| !c.is_alphabetic()) {
        Err("only letters are allowed (or `*`)".into())
    } else {
        Ok(())
    }
}

/// `HostConfig::parse` (allowed_hosts.rs:247): `*`, `self`, a CIDR block, `*.<domain>`, or a
/// host the URL standard's host parser accepts.
fn host_spec(host: &str) -> Result<(), String> {
    let host = host.trim();
    if matches!(host, "*" | "self" | "self.alt") || is_cidr(host) {
        return Ok(());
    }
    if host.starts_with('{') {
        return Err("host lists are not supported".into());
    }
    let host = host.trim_end_matches('/');
    if host.contains('/') {
        return Err("an allowed host has no path".into());
    }
    if let Some(domain) = host.strip_prefix("*.") {
        if domain.contains('*') {
            return Err("`*` is allowed only as the whole first label (`*.example.com`)".into());
        }
        // Spin 3.6 takes any suffix here; Spin's main branch (94a8fc8a allowed_hosts.rs:289-293)
        // requires a domain, and a suffix that is not one matches nothing anyway.
        return match url::Host::parse(domain) {
            Ok(url::Host::Domain(_)) => Ok(()),
            _ => Err("`*.` must be followed by a domain, e.g. `*.example.com`".into()),
        };
    }
    if host.contains('*') {
        return Err(
            "`*` is allowed only as the whole host or the whole first label (`*.example.com`)"
                .into(),
        );
    }
    url::Host::parse(host)
        .map(|_| ())
        .map_err(|e| format!("not a valid host name or IP address ({e})"))
}

/// `IpNetwork::from_str_truncate` as Spin calls it: `<ip>/<prefix length>`, host bits allowed.
fn is_cidr(host: &str) -> bool {
    let Some((ip, prefix)) = host.split_once('/') else {
        return false;
    };
    let (Ok(ip), Ok(prefix)) = (ip.parse::<IpAddr>(), prefix.parse::<u8>()) else {
        return false;
    };
    prefix <= if ip.is_ipv4() { 32 } else { 128 }
}

/// The v1 (and deprecated v2) `allowed_http_hosts` as `allowed_outbound_hosts` entries, exactly as
/// `convert_allowed_http_to_allowed_hosts` (spin v3.6.3 crates/manifest/src/compat.rs:102) writes
/// them; `allow_database_access` adds the grants v1 components had before the field existed.
pub fn from_http_hosts(
    hosts: &[String],
    allow_database_access: bool,
) -> Result<Vec<String>, String> {
    let mut outbound: Vec<String> = Vec::new();
    if allow_database_access {
        outbound.extend(["redis://*:*", "mysql://*:*", "postgres://*:*"].map(String::from));
    }
    if hosts.iter().any(|h| h == "insecure:allow-all") {
        outbound.extend(["http://*:*", "https://*:*", "http://self"].map(String::from));
        return Ok(outbound);
    }
    let mut errors = Vec::new();
    for host in hosts {
        match http_host(host) {
            Ok((domain, _)) if domain == "self" => outbound.push("http://self".into()),
            Ok((domain, port)) => {
                let port = port.map(|p| format!(":{p}")).unwrap_or_default();
                outbound.push(format!("http://{domain}{port}"));
                outbound.push(format!("https://{domain}{port}"));
            }
            Err(e) => errors.push(e),
        }
    }
    match errors.is_empty() {
        true => Ok(outbound),
        false => Err(errors.join("; ")),
    }
}

/// One `allowed_http_hosts` entry: host and explicit non-default port (spin v3.6.3
/// crates/manifest/src/compat/allowed_http_hosts.rs:60).
fn http_host(text: &str) -> Result<(String, Option<u16>), String> {
    let url = if text.contains("//") {
        let url = url::Url::parse(text)
            .map_err(|e| format!("`{text}` is not a valid HTTP host URL: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!("`{text}` is not an http(s) host"));
        }
        url
    } else {
        url::Url::parse(&format!("http://{text}"))
            .map_err(|_| format!("`{text}` is not a valid host or host:port"))?
    };
    let host = url
        .host_str()
        .ok_or_else(|| format!("`{text}` has no host name"))?;
    if url.path().len() > 1 {
        return Err(format!(
            "`{text}` has a path; give a host and optional port only"
        ));
    }
    Ok((host.to_string(), url.port()))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Cases modelled on spin v3.6.3 crates/outbound-networking-config/src/allowed_hosts.rs:722-1023.
    #[test]
    fn entries_are_judged_as_spins_parser_judges_them() {
        let accepted = [
            "http://example.org",
            "http://example.org/",
            "https://example.org:5555",
            "http://example.org:4000..4100",
            "*://example.org:7000",
            "http://self",
            "http://localhost:3001",
            "http://*.example.org",
            "http://10.1.2.3:3002",
            "http://[::1]:8001",
            "*://10.0.0.0/24:80",
            "*://10.0.0.9/24:9000",
            "*://fe00::/8:80",
            "http://10.0.0.0/8",
            "*://*:*",
            "mysql://db.internal",
            "mqtt://broker",
            "://h:1",
            "http://ex%41mple.org",
        ];
        for entry in accepted {
            assert_eq!(parse(entry), Ok(()), "{entry}");
        }
        let refused = [
            "example.org",
            "example.org:80",
            "*",
            "http://[::1]",
            "*://10.0.0.0/24",
            "http://example.org/a",
            "http://example.org:6666/a/b",
            "http://*.example.org/a",
            "*://example.org",
            "tcp://h",
            "http://a*.example.org",
            "http://*.*.example.org",
            "http://ex*ample.org",
            "http://[::1:80",
            "http://ex%zzample.org",
            "http://ex%25ample.org",
            "http://h:80:90",
            "http://ex\\ample.org",
            "redis+unix://h:1",
            "http://h:99999",
            "{http,https}://h",
            "http://*.",
            "http://*.10.0.0.1",
        ];
        for entry in refused {
            assert!(parse(entry).is_err(), "{entry}");
        }
    }

    // Expected values written from spin v3.6.3 crates/manifest/src/compat.rs:102-136.
    #[test]
    fn http_hosts_convert_as_spin_converts_them() {
        let convert = |hosts: &[&str], db: bool| {
            from_http_hosts(&hosts.iter().map(|h| h.to_string()).collect::<Vec<_>>(), db)
        };
        assert_eq!(
            convert(
                &[
                    "Example.org",
                    "self",
                    "http://api.test:8080/",
                    "https://x.test:443"
                ],
                false
            )
            .unwrap(),
            [
                "http://example.org",
                "https://example.org",
                "http://self",
                "http://api.test:8080",
                "https://api.test:8080",
                "http://x.test",
                "https://x.test",
            ]
        );
        assert_eq!(
            convert(&["a.test", "insecure:allow-all"], true).unwrap(),
            [
                "redis://*:*",
                "mysql://*:*",
                "postgres://*:*",
                "http://*:*",
                "https://*:*",
                "http://self"
            ]
        );
        assert_eq!(
            convert(&[], true).unwrap(),
            ["redis://*:*", "mysql://*:*", "postgres://*:*"]
        );
        for bad in ["ftp://a.test", "http://a.test/path", "a.test:notaport"] {
            assert!(convert(&[bad], false).is_err(), "{bad}");
        }
    }
}
