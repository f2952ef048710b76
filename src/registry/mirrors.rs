//! Decides where to fetch a repository from, as containers-registries.conf(5) (version 2) tells
//! skopeo and podman: `[[registry]]` prefixes, location rewrites, mirrors, `insecure`, `blocked`.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::Context;

use self::parse::RegistryEntry;
use crate::bad_input;

/// The file read when neither the caller, the environment nor the user's config names one.
const SYSTEM_FILE: &str = "/etc/containers/registries.conf";

/// The mirrors declared by containers-registries.conf(5) (version 2 TOML).
#[derive(Clone, Debug, Default)]
pub struct Mirrors {
    /// The `[[registry]]` tables by prefix; iterated in prefix order, as containers/image keeps them.
    registries: BTreeMap<String, RegistryEntry>,
}

/// One place to fetch a repository from, in the order to try them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// `host[:port]/path` — the repository at this endpoint (prefix rewritten for a mirror).
    pub repository: String,
    /// Plain HTTP / unverified TLS allowed (`insecure = true`).
    pub insecure: bool,
    /// A mirror (true) or the registry's own location (false).
    pub mirror: bool,
}

/// The main file to read, and who named it when it must exist.
#[derive(Debug, PartialEq, Eq)]
struct MainFile {
    path: PathBuf,
    named_by: Option<&'static str>,
}

impl Mirrors {
    /// Reads `path` when given (missing or malformed: bad input naming the file, the field and value),
    /// else the file skopeo and podman read: $CONTAINERS_REGISTRIES_CONF, else
    /// $XDG_CONFIG_HOME/containers/registries.conf or $HOME/.config/containers/registries.conf when it
    /// exists, else /etc/containers/registries.conf when it exists, else no mirrors; plus the drop-ins
    /// `registries.conf.d/*.conf` beside the main file (lexical order, later wins per prefix), as the man page says.
    pub fn load(path: Option<&Path>) -> anyhow::Result<Mirrors> {
        let var = |name: &str| std::env::var_os(name).filter(|value| !value.is_empty());
        let main = locate(path, var, |path| path.is_file());
        let mut mirrors = match std::fs::read_to_string(&main.path) {
            Ok(text) => Mirrors::parse(&text, &main.path.display().to_string())?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => match main.named_by {
                Some(named_by) => {
                    return Err(bad_input!(
                        "{named_by} ({}) does not exist; give an existing containers-registries.conf(5) file",
                        main.path.display()
                    ))
                }
                None => Mirrors::default(),
            },
            Err(e) => {
                return Err(e).with_context(|| format!("cannot read {}", main.path.display()))
            }
        };
        for drop_in in drop_ins(&main.path)? {
            let text = std::fs::read_to_string(&drop_in)
                .with_context(|| format!("cannot read {}", drop_in.display()))?;
            let later = Mirrors::parse(&text, &drop_in.display().to_string())?;
            mirrors.registries.extend(later.registries);
        }
        Ok(mirrors)
    }

    /// Parses one file's text (`origin` names it in errors).
    pub fn parse(text: &str, origin: &str) -> anyhow::Result<Mirrors> {
        let entries = parse::tables(text, origin)?;
        let mut registries = BTreeMap::new();
        // Within one file the first table of a prefix wins, as containers/image keeps it.
        for entry in entries {
            registries.entry(entry.prefix.clone()).or_insert(entry);
        }
        Ok(Mirrors { registries })
    }

    /// Where to fetch `repository` (`host[:port]/path`, no tag or digest) from, in order: the mirrors of
    /// the longest matching `prefix` (default: `location`; wildcard `*.example.com` prefixes as the man page
    /// says) that serve this kind of pull (`by_digest`: the pull names a digest — honour
    /// `mirror-by-digest-only` and `pull-from-mirror = all|digest-only|tag-only`), then the registry's own
    /// location (rewritten when `location` differs from `prefix`) unless `blocked = true`.
    /// No matching entry: just the repository itself, not insecure. A blocked registry with no usable mirror: an
    /// error naming the file and prefix.
    pub fn endpoints(&self, repository: &str, by_digest: bool) -> anyhow::Result<Vec<Endpoint>> {
        let Some((entry, matched)) = self.find(repository) else {
            return Ok(vec![Endpoint {
                repository: repository.to_string(),
                insecure: false,
                mirror: false,
            }]);
        };
        let rewrite = |location: &str| match location {
            "" => repository.to_string(),
            _ => format!("{location}{}", &repository[matched..]),
        };
        let mut endpoints: Vec<Endpoint> = entry
            .mirrors
            .iter()
            .filter(|m| match entry.mirror_by_digest_only {
                true => by_digest,
                false => m.pull.serves(by_digest),
            })
            .map(|m| Endpoint {
                repository: rewrite(&m.location),
                insecure: m.insecure,
                mirror: true,
            })
            .collect();
        let own = Endpoint {
            repository: rewrite(&entry.location),
            insecure: entry.insecure,
            mirror: false,
        };
        let blocker = match entry.blocked {
            true => Some(entry),
            false => self.blocking(&own.repository),
        };
        if blocker.is_none() {
            endpoints.push(own);
        }
        // containers/image refuses any place whose own longest match is blocked, a mirror's too.
        endpoints.retain(|endpoint| self.blocking(&endpoint.repository).is_none());
        match (endpoints.is_empty(), blocker) {
            (true, Some(blocker)) => Err(bad_input!(
                "{repository} may not be fetched: [[registry]] prefix \"{}\" in {} sets blocked = true, and no \
                 mirror of prefix \"{}\" serves a pull by {}; add one there or unblock the registry",
                blocker.prefix,
                blocker.origin,
                entry.prefix,
                if by_digest { "digest" } else { "tag" }
            )),
            _ => Ok(endpoints),
        }
    }

    /// The table with the longest prefix matching `repository`, and the length of the match.
    fn find(&self, repository: &str) -> Option<(&RegistryEntry, usize)> {
        let mut best: Option<(&RegistryEntry, usize)> = None;
        for entry in self.registries.values() {
            if let Some(matched) = matching(repository, &entry.prefix) {
                if best.is_none_or(|(b, _)| entry.prefix.len() > b.prefix.len()) {
                    best = Some((entry, matched));
                }
            }
        }
        best
    }

    /// The blocked table that governs `repository`, if its longest match is blocked.
    fn blocking(&self, repository: &str) -> Option<&RegistryEntry> {
        self.find(repository)
            .map(|(entry, _)| entry)
            .filter(|entry| entry.blocked)
    }
}

/// How far `prefix` matches `repository`: all of a plain prefix when the repository continues with
/// `/` or ends there; the whole `host[:port]` when the host name is under `*.example.com` (any number
/// of subdomains, never the domain itself).
fn matching(repository: &str, prefix: &str) -> Option<usize> {
    if let Some(domain) = prefix.strip_prefix('*') {
        let host = repository.split('/').next().unwrap_or_default();
        let name = host.split(':').next().unwrap_or_default();
        return name.ends_with(domain).then_some(host.len());
    }
    let rest = repository.strip_prefix(prefix)?;
    (rest.is_empty() || rest.starts_with('/')).then_some(prefix.len())
}

/// The main file: the one given, else $CONTAINERS_REGISTRIES_CONF, else the user's when it
/// exists, else the system's.
fn locate(
    given: Option<&Path>,
    var: impl Fn(&str) -> Option<OsString>,
    exists: impl Fn(&Path) -> bool,
) -> MainFile {
    if let Some(path) = given {
        return MainFile {
            path: path.to_path_buf(),
            named_by: Some("the registries.conf file"),
        };
    }
    if let Some(path) = var("CONTAINERS_REGISTRIES_CONF") {
        return MainFile {
            path: path.into(),
            named_by: Some("the registries.conf file named by $CONTAINERS_REGISTRIES_CONF"),
        };
    }
    let config_home = var("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| var("HOME").map(|home| PathBuf::from(home).join(".config")));
    let user = config_home.map(|dir| dir.join("containers").join("registries.conf"));
    let path = user
        .filter(|path| exists(path))
        .unwrap_or_else(|| SYSTEM_FILE.into());
    MainFile {
        path,
        named_by: None,
    }
}

/// The `*.conf` files (not directories) of `registries.conf.d` beside `main`, in lexical order.
fn drop_ins(main: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let dir = main
        .parent()
        .unwrap_or(Path::new("."))
        .join("registries.conf.d");
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("cannot list {}", dir.display())),
    };
    let mut files = Vec::new();
    for entry in entries {
        let path = entry
            .with_context(|| format!("cannot list {}", dir.display()))?
            .path();
        if path.extension().is_some_and(|ext| ext == "conf") && !path.is_dir() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

mod parse;
#[cfg(test)]
mod tests;
