//! Hiding the secrets a URL can carry before it is shown: the `user:password@` before the host
//! and the values of its query string (tokens, signatures). Every message about a URL goes through here.

/// The URL with its userinfo (`user:password@` before the host) replaced by `***`; a URL
/// without one is returned as it is. Only the authority is looked at: an `@` in the path is left.
pub fn redact_userinfo(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_string();
    };
    let authority_start = scheme_end + 3;
    let authority_end = url[authority_start..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| authority_start + i);
    match url[authority_start..authority_end].rfind('@') {
        Some(at) => format!(
            "{}***{}",
            &url[..authority_start],
            &url[authority_start + at..]
        ),
        None => url.to_string(),
    }
}

/// The URL with its userinfo redacted (as `redact_userinfo`) and each query value and the
/// fragment replaced by `***`, keeping the parameter names: `?sig=***&se=***`.
pub fn redact_url(url: &str) -> String {
    let url = redact_userinfo(url);
    let (url, fragment) = match url.split_once('#') {
        Some((url, _)) => (url, "#***"),
        None => (url.as_str(), ""),
    };
    let redacted = match url.split_once('?') {
        Some((base, query)) => {
            let params: Vec<String> = query
                .split('&')
                .map(|param| match param.split_once('=') {
                    Some((name, _)) => format!("{name}=***"),
                    None if param.is_empty() => String::new(),
                    None => "***".to_string(),
                })
                .collect();
            format!("{base}?{}", params.join("&"))
        }
        None => url.to_string(),
    };
    format!("{redacted}{fragment}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userinfo_is_replaced_and_nothing_else() {
        assert_eq!(
            redact_userinfo("https://user:hunter2@host:8080/x.wasm"),
            "https://***@host:8080/x.wasm"
        );
        assert_eq!(
            redact_userinfo("redis://:pw@host:6379"),
            "redis://***@host:6379"
        );
        assert_eq!(
            redact_userinfo("https://host/a@b.wasm"),
            "https://host/a@b.wasm"
        );
        assert_eq!(redact_userinfo("https://a@b@host/x"), "https://***@host/x");
        assert_eq!(redact_userinfo("no scheme@host"), "no scheme@host");
        assert_eq!(redact_userinfo("https://host"), "https://host");
    }

    #[test]
    fn query_values_and_fragment_are_replaced_keeping_names() {
        assert_eq!(
            redact_url("https://u:p@host/x.wasm?sig=hunter2&se=2030&flag#frag"),
            "https://***@host/x.wasm?sig=***&se=***&***#***"
        );
        assert_eq!(redact_url("https://host/x.wasm"), "https://host/x.wasm");
    }
}
