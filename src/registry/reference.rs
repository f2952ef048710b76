//! Image references `registry/repository[:tag][@digest]`: parsing, validation and the host facts
//! (Docker Hub aliases, loopback, Azure Container Registry) that decide transport and auth.

use std::fmt;
use std::net::IpAddr;

use crate::oci::Digest;

/// A parsed image reference. The registry is always explicit: `spin-aks` never guesses Docker Hub.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reference {
    /// `host[:port]` as the user wrote it (lowercased), e.g. `myacr.azurecr.io`.
    pub registry: String,
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<Digest>,
}

impl Reference {
    /// Parses `s`, failing as bad input with what is wrong and an example of what is right.
    pub fn parse(s: &str) -> anyhow::Result<Self> {
        let (unschemed, scheme) = match scheme(s) {
            Some(scheme) => (&s[scheme.len() + 3..], Some(scheme)),
            None => (s, None),
        };
        let credentials = credentials_end(unschemed);
        let shown = shown(s, scheme, credentials.map(|end| &unschemed[end..]));
        let fail = |why: &str| {
            crate::bad_input!(
                "`{shown}` is not an image reference: {why} (expected `registry/repository[:tag]`, e.g. `myacr.azurecr.io/hello:1.0.0`)"
            )
        };
        if credentials.is_some() {
            return Err(fail(
                "credentials do not belong in a reference (it is remembered in the state file and shown in messages); drop the `user:password@` and log in with `docker login` (--auth docker), or for ACR use --auth azure",
            ));
        }
        if let Some(scheme) = scheme {
            return Err(fail(&format!(
                "drop the `{scheme}://` scheme: a reference names no protocol{}",
                if scheme.eq_ignore_ascii_case("http") {
                    " (for a registry that speaks plain HTTP, add --plain-http)"
                } else {
                    ""
                }
            )));
        }
        let s = unschemed;
        let (rest, digest) = match s.split_once('@') {
            Some((rest, digest)) => {
                let digest = digest
                    .parse::<Digest>()
                    .map_err(|e| fail(&truncated(&e.to_string())))?;
                (rest, Some(digest))
            }
            None => (s, None),
        };
        let (registry, path) = rest
            .split_once('/')
            .ok_or_else(|| fail("it names no registry"))?;
        if !looks_like_registry(registry) {
            let (registry, rest) = (truncated(registry), truncated(rest));
            return Err(fail(&format!(
                "`{registry}` is not a registry host (it needs a `.`, a `:port`, or to be `localhost`; for Docker Hub write `docker.io/{rest}`)"
            )));
        }
        // A `:` after the last `/` starts the tag; one before it belongs to the registry port.
        let (repository, tag) = match path.rsplit_once(':') {
            Some((repo, tag)) if !tag.contains('/') => (repo, Some(tag)),
            _ => (path, None),
        };
        if let Some(tag) = tag {
            if !valid_tag(tag) {
                let tag = truncated(tag);
                return Err(fail(&format!(
                    "the tag `{tag}` is invalid (up to 128 of `A-Za-z0-9_.-`, not starting with `.` or `-`)"
                )));
            }
        }
        if !valid_repository(repository) {
            let repository = truncated(repository);
            return Err(fail(&format!(
                "the repository `{repository}` is invalid (lowercase `a-z0-9` path components separated by `/`, with single `.`, `_`, `__` or `-` runs inside)"
            )));
        }
        let registry = registry.to_ascii_lowercase();
        let repository = if registry == "docker.io" && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository.to_string()
        };
        Ok(Reference {
            registry,
            repository,
            tag: tag.map(str::to_string),
            digest,
        })
    }

    /// The host to send API requests to (Docker Hub's API lives on another name than its alias).
    pub fn api_host(&self) -> &str {
        match self.registry.as_str() {
            "docker.io" | "index.docker.io" => "registry-1.docker.io",
            other => other,
        }
    }

    /// `registry/repository`, without tag or digest.
    pub fn repository_name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The same reference pinned to `digest`: `registry/repository@sha256:…`.
    pub fn pinned(&self, digest: &Digest) -> String {
        format!("{}@{digest}", self.repository_name())
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.repository_name())?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

/// Echoed parts of a reference are cut to this many characters.
const SHOWN_CHARS: usize = 100;

/// `s` cut to [`SHOWN_CHARS`] characters, saying how long it was: a 100 000-character
/// argument is not repeated whole.
fn truncated(s: &str) -> String {
    match s.char_indices().nth(SHOWN_CHARS) {
        Some((end, _)) => format!("{}… ({} characters)", &s[..end], s.chars().count()),
        None => s.to_string(),
    }
}

/// A URL scheme in front of a reference (`https://`, `oci://`, `docker://`): its name.
fn scheme(s: &str) -> Option<&str> {
    let (scheme, _) = s.split_once("://")?;
    let mut chars = scheme.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c));
    valid.then_some(scheme)
}

/// Where the host starts when `s` (scheme dropped) begins with `user[:password]@`: an `@`
/// before the first `/` that does not start a digest. A digest's `@` always follows a `/`.
fn credentials_end(s: &str) -> Option<usize> {
    let at = s.find('@')?;
    let before_path = s.find('/').is_none_or(|slash| at < slash);
    let digest = s[at + 1..].starts_with("sha256:");
    (before_path && !digest).then_some(at + 1)
}

/// The reference as messages show it: credentials replaced, the whole cut to a readable length.
fn shown(s: &str, scheme: Option<&str>, after_credentials: Option<&str>) -> String {
    match after_credentials {
        Some(rest) => {
            let scheme = scheme.map(|s| format!("{s}://")).unwrap_or_default();
            truncated(&format!("{scheme}<credentials>@{rest}"))
        }
        None => truncated(s),
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

/// True for Azure Container Registry login servers in the public, China and US Government clouds.
pub fn is_acr(registry: &str) -> bool {
    let host = host_without_port(registry).to_ascii_lowercase();
    [".azurecr.io", ".azurecr.cn", ".azurecr.us"]
        .iter()
        .any(|suffix| host.ends_with(suffix))
}

fn host_without_port(registry: &str) -> &str {
    if let Some(rest) = registry.strip_prefix('[') {
        // `[::1]:5000` → `::1`
        return rest.split(']').next().unwrap_or(rest);
    }
    match registry.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => registry,
    }
}

pub(crate) fn looks_like_registry(s: &str) -> bool {
    !s.is_empty()
        && (s.contains('.') || s.contains(':') || s.eq_ignore_ascii_case("localhost"))
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
}

pub(crate) fn valid_tag(tag: &str) -> bool {
    let bytes = tag.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 128
        && (bytes[0].is_ascii_alphanumeric() || bytes[0] == b'_')
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(b))
}

/// The distribution spec's `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*`.
pub(crate) fn valid_repository(repository: &str) -> bool {
    !repository.is_empty()
        && repository.len() <= 255
        && repository.split('/').all(valid_path_component)
}

fn valid_path_component(component: &str) -> bool {
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = component.as_bytes();
    if bytes.is_empty() || !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let separator = &component[start..i];
        let ok = separator == "."
            || separator == "_"
            || separator == "__"
            || separator.bytes().all(|b| b == b'-');
        if !ok {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_reference_with_port_tag_and_digest_parses() {
        let digest = format!("sha256:{}", "a".repeat(64));
        let r = Reference::parse(&format!("LocalHost:5000/team/app:1.0.0@{digest}")).unwrap();
        assert_eq!(r.registry, "localhost:5000");
        assert_eq!(r.repository, "team/app");
        assert_eq!(r.tag.as_deref(), Some("1.0.0"));
        assert_eq!(r.digest.unwrap().to_string(), digest);
    }

    #[test]
    fn reference_without_tag_leaves_the_tag_to_the_caller() {
        let r = Reference::parse("myacr.azurecr.io/hello").unwrap();
        assert_eq!(r.tag, None);
        assert_eq!(r.to_string(), "myacr.azurecr.io/hello");
        assert_eq!(
            r.pinned(&Digest::of(b"")),
            format!("myacr.azurecr.io/hello@{}", Digest::of(b""))
        );
    }

    #[test]
    fn docker_hub_alias_gets_library_prefix_and_api_host() {
        let r = Reference::parse("docker.io/nginx:1").unwrap();
        assert_eq!(r.repository, "library/nginx");
        assert_eq!(r.api_host(), "registry-1.docker.io");
    }

    #[test]
    fn invalid_references_are_bad_input_naming_the_problem() {
        for (input, expected) in [
            ("hello", "names no registry"),
            ("user/app:1", "not a registry host"),
            ("example.com/App", "repository `App` is invalid"),
            ("example.com/app:-bad", "tag `-bad` is invalid"),
            ("example.com/app@sha256:1234", "not a sha256 digest"),
            ("example.com/a..b", "repository `a..b` is invalid"),
            ("user:s3cret@example.com/app:1", "credentials do not belong"),
            (
                "https://user:s3cret@example.com/app",
                "credentials do not belong",
            ),
            ("http://localhost:5000/app:1", "drop the `http://` scheme"),
            ("oci://example.com/app", "drop the `oci://` scheme"),
            ("docker://example.com/app", "drop the `docker://` scheme"),
        ] {
            let err = Reference::parse(input).unwrap_err();
            assert_eq!(crate::error::exit_code(&err), 2, "{input}");
            assert!(err.to_string().contains(expected), "{input}: {err}");
            assert!(!err.to_string().contains("s3cret"), "{input}: {err}");
        }
    }

    #[test]
    fn long_references_are_cut_in_messages() {
        for input in [
            format!("example.com/{}", "A".repeat(100_000)),
            format!("example.com/app:{}", "t".repeat(100_000)),
            format!("{}/app", "h".repeat(100_000)),
            "x".repeat(100_000),
        ] {
            let err = Reference::parse(&input).unwrap_err().to_string();
            assert!(err.len() < 800, "{} characters: {}", err.len(), &err[..200]);
            assert!(err.contains(" characters)"), "says it was cut: {err}");
        }
    }

    #[test]
    fn a_digest_after_the_path_is_not_mistaken_for_credentials() {
        let digest = format!("sha256:{}", "b".repeat(64));
        assert_eq!(credentials_end(&format!("example.com/app@{digest}")), None);
        assert_eq!(credentials_end("u:p@example.com/app"), Some(4));
        assert_eq!(credentials_end("token@example.com"), Some(6));
    }

    #[test]
    fn repository_separators_follow_the_distribution_grammar() {
        for good in ["a", "a-b", "a--b", "a_b", "a__b", "a.b", "x/y/z", "0ab"] {
            assert!(valid_repository(good), "{good}");
        }
        for bad in ["a___b", "-a", "a-", "a/", "/a", "a._b", "A"] {
            assert!(!valid_repository(bad), "{bad}");
        }
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
