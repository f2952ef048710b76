//! Image references `[registry/]repository[:tag][@sha256:…]`: one parser into validated parts with a
//! typed digest. `ImageRef` may leave the registry out (scaffold, apply); `RegistryRef` names it (push).

use std::fmt;
use std::str::FromStr;

use super::Digest;

/// A validated image reference; the registry is kept as written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageRef {
    registry: Option<String>,
    repository: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

/// Why a string is not an image reference. `Display` is the wording of a flag value's refusal;
/// [`RegistryRef::parse`] words the same causes for a push target.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    #[error("credentials do not belong in a reference; drop the `user:password@`")]
    Credentials,
    #[error("drop the `{0}://` scheme: a reference names no protocol")]
    Scheme(String),
    #[error("{0}")]
    Digest(String),
    #[error("it names no registry")]
    NoRegistry,
    #[error("`{registry}` is not a registry host")]
    NotRegistryHost { registry: String, rest: String },
    #[error(
        "tag `{0}` must be 1-128 letters, digits, `_`, `.` or `-`, not starting with `.` or `-`"
    )]
    Tag(String),
    #[error("repository `{0}` must be lowercase letters and digits in `/`-separated parts, joined by `.`, `_`, `__` or `-`")]
    Repository(String),
}

impl ImageRef {
    /// Parses `reference`; unlike a push target, the registry may be left out (the cluster then
    /// resolves the name itself).
    pub fn parse(reference: &str) -> Result<Self, ReferenceError> {
        parse(reference, false)
    }

    /// The registry host as written, when the reference names one.
    pub fn registry(&self) -> Option<&str> {
        self.registry.as_deref()
    }

    pub fn repository(&self) -> &str {
        &self.repository
    }

    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// `[registry/]repository`, without tag or digest (Helm's `image.repository`, Kustomize's
    /// image `name`).
    pub fn name(&self) -> String {
        match &self.registry {
            Some(registry) => format!("{registry}/{}", self.repository),
            None => self.repository.clone(),
        }
    }

    /// The same reference tagged `tag`, if it is a valid tag.
    pub fn with_tag(&self, tag: &str) -> Result<Self, ReferenceError> {
        if !valid_tag(tag) {
            return Err(ReferenceError::Tag(truncated(tag)));
        }
        Ok(ImageRef {
            tag: Some(tag.to_string()),
            ..self.clone()
        })
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(registry) = &self.registry {
            write!(f, "{registry}/")?;
        }
        f.write_str(&self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

impl FromStr for ImageRef {
    type Err = ReferenceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ImageRef::parse(s)
    }
}

/// An image reference that names its registry, as a push needs: `spin-aks` never guesses Docker
/// Hub. The registry is lowercased, and a one-part Docker Hub repository gets its `library/`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegistryRef(ImageRef);

impl RegistryRef {
    /// Parses `s`, failing as bad input with what is wrong and an example of what is right.
    pub fn parse(s: &str) -> anyhow::Result<Self> {
        let mut image = parse(s, true).map_err(|e| refused(s, &e))?;
        let registry = image
            .registry
            .take()
            .expect("a required registry is present")
            .to_ascii_lowercase();
        if registry == "docker.io" && !image.repository.contains('/') {
            image.repository = format!("library/{}", image.repository);
        }
        image.registry = Some(registry);
        Ok(RegistryRef(image))
    }

    /// `host[:port]`, lowercased, e.g. `myacr.azurecr.io`.
    pub fn registry(&self) -> &str {
        self.0.registry().expect("a RegistryRef names its registry")
    }

    pub fn repository(&self) -> &str {
        self.0.repository()
    }

    pub fn tag(&self) -> Option<&str> {
        self.0.tag()
    }

    pub fn digest(&self) -> Option<&Digest> {
        self.0.digest()
    }

    /// `registry/repository`, without tag or digest.
    pub fn repository_name(&self) -> String {
        self.0.name()
    }

    /// The same reference pinned to `digest`: `registry/repository@sha256:…`.
    pub fn pinned(&self, digest: &Digest) -> Self {
        RegistryRef(ImageRef {
            tag: None,
            digest: Some(digest.clone()),
            ..self.0.clone()
        })
    }

    /// The same reference without its digest (the tag, if any, kept).
    pub fn without_digest(&self) -> Self {
        RegistryRef(ImageRef {
            digest: None,
            ..self.0.clone()
        })
    }

    /// The same reference tagged `tag`, if it is a valid tag.
    pub fn with_tag(&self, tag: &str) -> Result<Self, ReferenceError> {
        self.0.with_tag(tag).map(RegistryRef)
    }

    pub fn image(&self) -> &ImageRef {
        &self.0
    }
}

impl From<RegistryRef> for ImageRef {
    fn from(reference: RegistryRef) -> Self {
        reference.0
    }
}

impl fmt::Display for RegistryRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl serde::Serialize for RegistryRef {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for RegistryRef {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        RegistryRef::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// The one parser: credentials and schemes refused, then digest, registry, tag and repository.
fn parse(s: &str, registry_required: bool) -> Result<ImageRef, ReferenceError> {
    if let Some(scheme) = scheme(s) {
        let unschemed = &s[scheme.len() + 3..];
        return Err(match credentials_end(unschemed) {
            Some(_) => ReferenceError::Credentials,
            None => ReferenceError::Scheme(scheme.to_string()),
        });
    }
    if credentials_end(s).is_some() {
        return Err(ReferenceError::Credentials);
    }
    let (rest, digest) = match s.split_once('@') {
        Some((rest, digest)) => {
            let digest = digest
                .parse::<Digest>()
                .map_err(|e| ReferenceError::Digest(truncated(&e.to_string())))?;
            (rest, Some(digest))
        }
        None => (s, None),
    };
    let (registry, path) = match rest.split_once('/') {
        Some((registry, path)) if looks_like_registry(registry) => (Some(registry), path),
        Some((registry, path)) if registry_required => {
            return Err(ReferenceError::NotRegistryHost {
                registry: truncated(registry),
                rest: truncated(path),
            })
        }
        None if registry_required => return Err(ReferenceError::NoRegistry),
        _ => (None, rest),
    };
    // A `:` after the last `/` starts the tag; one before it belongs to the registry port.
    let (repository, tag) = match path.rsplit_once(':') {
        Some((repository, tag)) if !tag.contains('/') => (repository, Some(tag)),
        _ => (path, None),
    };
    if let Some(tag) = tag.filter(|tag| !valid_tag(tag)) {
        return Err(ReferenceError::Tag(truncated(tag)));
    }
    if !valid_repository(repository) {
        return Err(ReferenceError::Repository(truncated(repository)));
    }
    Ok(ImageRef {
        registry: registry.map(str::to_string),
        repository: repository.to_string(),
        tag: tag.map(str::to_string),
        digest,
    })
}

/// A push target's refusal: the reference (credentials hidden, cut to a readable length), what is
/// wrong and an example.
fn refused(s: &str, error: &ReferenceError) -> anyhow::Error {
    let why = match error {
        ReferenceError::Credentials => "credentials do not belong in a reference (it is remembered in the state file and shown in messages); drop the `user:password@` and log in with `docker login` (--auth docker), or for ACR use --auth azure".to_string(),
        ReferenceError::Scheme(scheme) => format!(
            "drop the `{scheme}://` scheme: a reference names no protocol{}",
            if scheme.eq_ignore_ascii_case("http") {
                " (for a registry that speaks plain HTTP, add --plain-http)"
            } else {
                ""
            }
        ),
        ReferenceError::Digest(why) => why.clone(),
        ReferenceError::NoRegistry => "it names no registry".to_string(),
        ReferenceError::NotRegistryHost { registry, rest } => format!(
            "`{registry}` is not a registry host (it needs a `.`, a `:port`, or to be `localhost`; for Docker Hub write `docker.io/{rest}`)"
        ),
        ReferenceError::Tag(tag) => format!(
            "the tag `{tag}` is invalid (up to 128 of `A-Za-z0-9_.-`, not starting with `.` or `-`)"
        ),
        ReferenceError::Repository(repository) => format!(
            "the repository `{repository}` is invalid (lowercase `a-z0-9` path components separated by `/`, with single `.`, `_`, `__` or `-` runs inside)"
        ),
    };
    crate::bad_input!(
        "`{}` is not an image reference: {why} (expected `registry/repository[:tag]`, e.g. `myacr.azurecr.io/hello:1.0.0`)",
        shown(s)
    )
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
pub fn shown(s: &str) -> String {
    let (scheme, unschemed) = match scheme(s) {
        Some(scheme) => (format!("{scheme}://"), &s[scheme.len() + 3..]),
        None => (String::new(), s),
    };
    match credentials_end(unschemed) {
        Some(end) => truncated(&format!("{scheme}<credentials>@{}", &unschemed[end..])),
        None => truncated(s),
    }
}

fn looks_like_registry(s: &str) -> bool {
    !s.is_empty()
        && (s.contains('.') || s.contains(':') || s.eq_ignore_ascii_case("localhost"))
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
}

fn valid_tag(tag: &str) -> bool {
    let bytes = tag.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 128
        && (bytes[0].is_ascii_alphanumeric() || bytes[0] == b'_')
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(b))
}

/// The distribution spec's `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*`.
fn valid_repository(repository: &str) -> bool {
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
    fn accepts_registry_port_tag_and_digest() {
        let digest = format!("sha256:{}", "a".repeat(64));
        let r =
            ImageRef::parse(&format!("localhost:5000/apps/hello-world:1.0.0@{digest}")).unwrap();
        assert_eq!(r.name(), "localhost:5000/apps/hello-world");
        assert_eq!(r.registry(), Some("localhost:5000"));
        assert_eq!(r.tag(), Some("1.0.0"));
        assert_eq!(r.digest().map(Digest::to_string), Some(digest.clone()));
        assert_eq!(
            r.to_string(),
            format!("localhost:5000/apps/hello-world:1.0.0@{digest}")
        );
        assert_eq!(ImageRef::parse("hello:latest").unwrap().name(), "hello");
        assert_eq!(ImageRef::parse("hello:latest").unwrap().registry(), None);
        assert_eq!(
            ImageRef::parse("myacr.azurecr.io/hello").unwrap().tag(),
            None
        );
    }

    #[test]
    fn an_image_ref_keeps_the_registry_as_written() {
        for written in ["MyAcr.azurecr.io/hello:1", "docker.io/nginx"] {
            assert_eq!(ImageRef::parse(written).unwrap().to_string(), written);
        }
    }

    #[test]
    fn rejects_uppercase_bad_tags_and_short_digests() {
        let err = |s: &str| ImageRef::parse(s).unwrap_err().to_string();
        assert!(err("myacr.azurecr.io/Hello:1").contains("`Hello`"));
        assert!(err("hello:1+build").contains("tag `1+build`"));
        assert!(err("hello@sha256:abc").contains("64"));
        assert!(ImageRef::parse("hello:").is_err());
        assert!(ImageRef::parse("").is_err());
        assert!(ImageRef::parse("a//b").is_err());
    }

    #[test]
    fn with_tag_validates_the_tag() {
        let r = RegistryRef::parse("r.example/hello").unwrap();
        assert_eq!(
            r.with_tag("1.0").unwrap().to_string(),
            "r.example/hello:1.0"
        );
        assert_eq!(
            r.with_tag("-x").unwrap_err(),
            ReferenceError::Tag("-x".into())
        );
    }

    #[test]
    fn full_reference_with_port_tag_and_digest_parses() {
        let digest = format!("sha256:{}", "a".repeat(64));
        let r = RegistryRef::parse(&format!("LocalHost:5000/team/app:1.0.0@{digest}")).unwrap();
        assert_eq!(r.registry(), "localhost:5000");
        assert_eq!(r.repository(), "team/app");
        assert_eq!(r.tag(), Some("1.0.0"));
        assert_eq!(r.digest().unwrap().to_string(), digest);
    }

    #[test]
    fn reference_without_tag_leaves_the_tag_to_the_caller() {
        let r = RegistryRef::parse("myacr.azurecr.io/hello").unwrap();
        assert_eq!(r.tag(), None);
        assert_eq!(r.to_string(), "myacr.azurecr.io/hello");
        let tagged = r.with_tag("1").unwrap();
        assert_eq!(
            tagged.pinned(&Digest::of(b"")).to_string(),
            format!("myacr.azurecr.io/hello@{}", Digest::of(b""))
        );
        assert_eq!(
            tagged.pinned(&Digest::of(b"")).without_digest().to_string(),
            "myacr.azurecr.io/hello"
        );
    }

    #[test]
    fn docker_hub_alias_gets_library_prefix_for_a_push_only() {
        let r = RegistryRef::parse("docker.io/nginx:1").unwrap();
        assert_eq!(r.repository(), "library/nginx");
        assert_eq!(r.to_string(), "docker.io/library/nginx:1");
        assert_eq!(RegistryRef::parse(&r.to_string()).unwrap(), r);
        assert_eq!(
            ImageRef::parse("docker.io/nginx:1").unwrap().repository(),
            "nginx"
        );
    }

    #[test]
    fn a_registry_ref_serializes_as_its_string() {
        let r = RegistryRef::parse("r.example/team/app:2").unwrap();
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json, "r.example/team/app:2");
        assert_eq!(serde_json::from_value::<RegistryRef>(json).unwrap(), r);
        assert!(serde_json::from_value::<RegistryRef>("no-registry".into()).is_err());
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
            let err = RegistryRef::parse(input).unwrap_err();
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
            let err = RegistryRef::parse(&input).unwrap_err().to_string();
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
}
