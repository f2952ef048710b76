//! Image references as scaffold accepts them: `[registry/]repository[:tag][@sha256:<hex>]`.
//! A small syntactic validator; the registry module has the fuller parser used for pushing.

use std::fmt;

/// A validated image reference, split for Helm values and Kustomize's `images:` transformer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageRef {
    /// Registry host (if any) and repository path, e.g. `myacr.azurecr.io/apps/hello`.
    pub name: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

impl ImageRef {
    /// Parses and validates `reference`; the error says which part is wrong.
    pub fn parse(reference: &str) -> Result<Self, String> {
        let (rest, digest) = match reference.split_once('@') {
            Some((rest, digest)) => {
                let hex = digest
                    .strip_prefix("sha256:")
                    .ok_or_else(|| format!("digest `{digest}` must start with `sha256:`"))?;
                if hex.len() != 64
                    || !hex
                        .bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
                {
                    return Err(format!(
                        "digest `{digest}` must be sha256: followed by 64 lowercase hex digits"
                    ));
                }
                (rest, Some(digest.to_string()))
            }
            None => (reference, None),
        };
        // A `:` after the last `/` separates the tag; one before it belongs to a registry port.
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].find(':') {
            Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
            None => (rest, None),
        };
        if let Some(tag) = tag {
            let valid = !tag.is_empty()
                && tag.len() <= 128
                && !tag.starts_with(['.', '-'])
                && tag
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
            if !valid {
                return Err(format!(
                    "tag `{tag}` must be 1-128 letters, digits, `_`, `.` or `-`, not starting with `.` or `-`"
                ));
            }
        }
        let mut parts: Vec<&str> = name.split('/').collect();
        if parts.len() > 1 && (parts[0].contains(['.', ':']) || parts[0] == "localhost") {
            let registry = parts.remove(0);
            let (host, port) = registry.split_once(':').unwrap_or((registry, "0"));
            let host_ok = !host.is_empty()
                && host.split('.').all(|l| {
                    !l.is_empty()
                        && !l.starts_with('-')
                        && !l.ends_with('-')
                        && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                });
            if !host_ok || port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!(
                    "registry `{registry}` is not a host name with an optional port"
                ));
            }
        }
        for part in &parts {
            if !valid_path_component(part) {
                return Err(format!(
                    "repository part `{part}` must be lowercase letters and digits, separated by `.`, `_`, `__` or `-`"
                ));
            }
        }
        Ok(ImageRef {
            name: name.to_string(),
            tag: tag.map(str::to_string),
            digest,
        })
    }
}

fn valid_path_component(part: &str) -> bool {
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = part.as_bytes();
    if bytes.is_empty() || !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return false;
    }
    // Separators are single `.`/`_`/`-`, runs of `-`, or `__`.
    let mut run = String::new();
    for &b in bytes {
        if alnum(b) {
            if !(run.is_empty()
                || run == "."
                || run == "_"
                || run == "__"
                || run.bytes().all(|c| c == b'-'))
            {
                return false;
            }
            run.clear();
        } else if b"._-".contains(&b) {
            run.push(b as char);
        } else {
            return false;
        }
    }
    true
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_registry_port_tag_and_digest() {
        let digest = format!("sha256:{}", "a".repeat(64));
        let r =
            ImageRef::parse(&format!("localhost:5000/apps/hello-world:1.0.0@{digest}")).unwrap();
        assert_eq!(r.name, "localhost:5000/apps/hello-world");
        assert_eq!(r.tag.as_deref(), Some("1.0.0"));
        assert_eq!(r.digest, Some(digest.clone()));
        assert_eq!(
            r.to_string(),
            format!("localhost:5000/apps/hello-world:1.0.0@{digest}")
        );
        assert_eq!(ImageRef::parse("hello:latest").unwrap().name, "hello");
        assert_eq!(ImageRef::parse("myacr.azurecr.io/hello").unwrap().tag, None);
    }

    #[test]
    fn rejects_uppercase_bad_tags_and_short_digests() {
        assert!(ImageRef::parse("myacr.azurecr.io/Hello:1")
            .unwrap_err()
            .contains("`Hello`"));
        assert!(ImageRef::parse("hello:1+build")
            .unwrap_err()
            .contains("tag `1+build`"));
        assert!(ImageRef::parse("hello@sha256:abc")
            .unwrap_err()
            .contains("64"));
        assert!(ImageRef::parse("hello:").is_err());
        assert!(ImageRef::parse("").is_err());
        assert!(ImageRef::parse("a//b").is_err());
    }
}
