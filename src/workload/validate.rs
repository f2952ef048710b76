//! Syntax checks for scaffold's Kubernetes-facing flags: DNS names, quantities, vault URLs, probe paths.
//! `cli.rs` uses them as value parsers, so a bad value is a usage error (exit 2) naming the flag and value.

/// A DNS-1123 label (a namespace, an app's name), checked once: safe as a URL path segment
/// and as a shell word, so the commands run in a cluster (AKS run command) take only these.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DnsLabel(String);

impl DnsLabel {
    pub fn parse(value: &str) -> Result<Self, String> {
        parse_dns_label(value).map(DnsLabel)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for DnsLabel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Validates a DNS-1123 label (namespace, runtime class, overlay name).
pub fn parse_dns_label(value: &str) -> Result<String, String> {
    let valid = !value.is_empty()
        && value.len() <= 63
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !value.starts_with('-')
        && !value.ends_with('-');
    if valid {
        Ok(value.to_string())
    } else {
        Err(format!("`{value}` must be a DNS-1123 label: at most 63 lowercase letters, digits and `-`, starting and ending alphanumeric"))
    }
}

/// Validates a DNS-1123 subdomain (Secret and ServiceAccount names).
pub fn parse_dns_subdomain(value: &str) -> Result<String, String> {
    let valid = !value.is_empty()
        && value.len() <= 253
        && value.split('.').all(|part| parse_dns_label(part).is_ok());
    if valid {
        Ok(value.to_string())
    } else {
        Err(format!("`{value}` must be a DNS-1123 name: lowercase letters, digits, `-` and `.`, at most 253 characters"))
    }
}

/// Validates a Kubernetes quantity such as `500m`, `0.5`, `128Mi` or `1e3`.
pub fn parse_quantity(value: &str) -> Result<String, String> {
    let number_end = value
        .char_indices()
        .find(|(i, c)| !(c.is_ascii_digit() || *c == '.' || (*i == 0 && (*c == '+' || *c == '-'))))
        .map_or(value.len(), |(i, _)| i);
    let (number, suffix) = value.split_at(number_end);
    let digits = number.trim_start_matches(['+', '-']);
    let number_ok = digits.bytes().any(|b| b.is_ascii_digit()) && digits.matches('.').count() <= 1;
    let suffix_ok = [
        "", "m", "k", "M", "G", "T", "P", "E", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei",
    ]
    .contains(&suffix)
        || suffix.strip_prefix(['e', 'E']).is_some_and(|exp| {
            !exp.is_empty()
                && exp
                    .trim_start_matches(['+', '-'])
                    .bytes()
                    .all(|b| b.is_ascii_digit())
        });
    if number_ok && suffix_ok {
        Ok(value.to_string())
    } else {
        Err(format!("`{value}` is not a Kubernetes quantity; use e.g. `500m` or `1` for CPU, `128Mi` or `1Gi` for memory"))
    }
}

/// Validates a GUID (Entra client and tenant ids), e.g. `72f988bf-86f1-41af-91ab-2d7cd011db47`.
pub fn parse_guid(value: &str) -> Result<String, String> {
    let groups: Vec<&str> = value.split('-').collect();
    let lengths = groups.iter().map(|g| g.len()).collect::<Vec<_>>();
    let hex = value.chars().all(|c| c.is_ascii_hexdigit() || c == '-');
    if hex && lengths == [8, 4, 4, 4, 12] {
        Ok(value.to_ascii_lowercase())
    } else {
        Err(format!(
            "`{value}` is not a GUID; use the form 72f988bf-86f1-41af-91ab-2d7cd011db47"
        ))
    }
}

/// Validates a probe path.
pub fn parse_http_path(value: &str) -> Result<String, String> {
    if value.starts_with('/') && !value.contains(char::is_whitespace) {
        Ok(value.to_string())
    } else {
        Err(format!("`{value}` is not an HTTP path; use e.g. /health"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_accept_kubernetes_forms_only() {
        for ok in ["500m", "1", "0.5", "128Mi", "1Gi", "1e3", "2k"] {
            assert!(parse_quantity(ok).is_ok(), "{ok}");
        }
        for bad in ["", "lots", "1.2.3", "5mb", "Mi", "1e"] {
            assert!(parse_quantity(bad).is_err(), "{bad}");
        }
    }
}
