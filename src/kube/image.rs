//! Image references as scaffold accepts them: `[registry/]repository[:tag][@sha256:<hex>]`.
//! Validated with the registry module's rules; unlike a push target the registry is optional.

use std::fmt;

use crate::oci::Digest;
use crate::registry::reference::{looks_like_registry, valid_repository, valid_tag};

/// A validated image reference, split for Helm values and Kustomize's `images:` transformer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageRef {
    /// Registry host (if any) and repository path, e.g. `myacr.azurecr.io/apps/hello`.
    pub name: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

impl ImageRef {
    /// Parses and validates `reference`; the error says which part is wrong. Unlike a push
    /// target, the registry may be left out (the cluster then resolves the name itself).
    pub fn parse(reference: &str) -> Result<Self, String> {
        let (rest, digest) = match reference.split_once('@') {
            Some((rest, digest)) => {
                let digest: Digest = digest.parse().map_err(|e| format!("{e}"))?;
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
        if let Some(tag) = tag.filter(|t| !valid_tag(t)) {
            return Err(format!(
                "tag `{tag}` must be 1-128 letters, digits, `_`, `.` or `-`, not starting with `.` or `-`"
            ));
        }
        let repository = match name.split_once('/') {
            Some((registry, path)) if looks_like_registry(registry) => path,
            _ => name,
        };
        if !valid_repository(repository) {
            return Err(format!(
                "repository `{repository}` must be lowercase letters and digits in `/`-separated parts, joined by `.`, `_`, `__` or `-`"
            ));
        }
        Ok(ImageRef {
            name: name.to_string(),
            tag: tag.map(str::to_string),
            digest,
        })
    }
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
