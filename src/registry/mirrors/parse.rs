//! Reads one containers-registries.conf(5) file into checked `[[registry]]` tables. It refuses what
//! containers/image refuses (and version 1), naming the file, the table, the field and its value.

use std::collections::BTreeMap;

use toml::{Table, Value};

use crate::bad_input;

/// One `[[registry]]` table.
#[derive(Clone, Debug)]
pub(super) struct RegistryEntry {
    pub(super) prefix: String,
    /// Empty only under a `*.example.com` prefix: the repository is then used as named.
    pub(super) location: String,
    pub(super) insecure: bool,
    pub(super) blocked: bool,
    pub(super) mirror_by_digest_only: bool,
    pub(super) mirrors: Vec<MirrorEntry>,
    /// The file that declared this table, for messages.
    pub(super) origin: String,
}

/// One `[[registry.mirror]]` table.
#[derive(Clone, Debug)]
pub(super) struct MirrorEntry {
    pub(super) location: String,
    pub(super) insecure: bool,
    pub(super) pull: Pull,
}

/// `pull-from-mirror`: which pulls a mirror serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Pull {
    All,
    DigestOnly,
    TagOnly,
}

impl Pull {
    /// True when a mirror with this setting serves a pull by digest (`by_digest`) or by tag.
    pub(super) fn serves(self, by_digest: bool) -> bool {
        match self {
            Pull::All => true,
            Pull::DigestOnly => by_digest,
            Pull::TagOnly => !by_digest,
        }
    }
}

/// The `[[registry]]` tables of one file, in the file's order.
pub(super) fn tables(text: &str, origin: &str) -> anyhow::Result<Vec<RegistryEntry>> {
    let table: Table = text.parse().map_err(|e: toml::de::Error| {
        let line = e.span().map_or(1, |span| text[..span.start].matches('\n').count() + 1);
        bad_input!(
            "{origin}, line {line}: not valid TOML ({}); fix it as containers-registries.conf(5) describes",
            e.message().trim_end().replace('\n', "; ")
        )
    })?;
    if let Some(v1) = table.get("registries") {
        let section = match v1 {
            Value::Table(sections) => sections
                .keys()
                .next()
                .map_or(String::new(), |k| format!(".{k}")),
            _ => String::new(),
        };
        return Err(bad_input!(
            "{origin}: [registries{section}] is the version 1 format of containers-registries.conf(5), \
             which spin-aks does not read; rewrite it as [[registry]] tables (version 2)"
        ));
    }
    let items = match table.get("registry") {
        None => &Vec::new(),
        Some(Value::Array(items)) => items,
        Some(_) => {
            return Err(bad_input!(
                "{origin}: `registry` must be an array of [[registry]] tables, not [registry]; write [[registry]]"
            ))
        }
    };
    let mut entries = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let Value::Table(fields) = item else {
            return Err(bad_input!(
                "{origin}: registry item {} is {item}, not a table; write [[registry]] tables",
                index + 1
            ));
        };
        let at = Place {
            origin,
            table: format!("[[registry]] number {}", index + 1),
            fields,
        };
        entries.push(registry(&at)?);
    }
    refuse_conflicts(&entries, origin)?;
    Ok(entries)
}

/// A table being read, for messages naming the file, the table, the field and its value.
struct Place<'a> {
    origin: &'a str,
    table: String,
    fields: &'a Table,
}

impl Place<'_> {
    fn error(&self, key: &str, problem: &str) -> anyhow::Error {
        match self.fields.get(key) {
            Some(value) => bad_input!(
                "{}: {}: {key} = {value}: {problem}",
                self.origin,
                self.table
            ),
            None => bad_input!("{}: {} has no {key}: {problem}", self.origin, self.table),
        }
    }

    fn string(&self, key: &str) -> anyhow::Result<Option<&str>> {
        match self.fields.get(key) {
            None => Ok(None),
            Some(Value::String(text)) => Ok(Some(text)),
            Some(_) => Err(self.error(key, "must be a string in quotes")),
        }
    }

    fn boolean(&self, key: &str) -> anyhow::Result<bool> {
        match self.fields.get(key) {
            None => Ok(false),
            Some(Value::Boolean(value)) => Ok(*value),
            Some(_) => Err(self.error(key, "must be true or false")),
        }
    }

    /// A `prefix` or `location`: `host[:port][/path]`, a trailing `/` dropped, no URI scheme.
    fn location(&self, key: &str) -> anyhow::Result<Option<String>> {
        let Some(text) = self.string(key)? else {
            return Ok(None);
        };
        if text.starts_with("http://") || text.starts_with("https://") {
            return Err(self.error(key, "URI schemes are not supported; write host[:port]/path"));
        }
        Ok(Some(text.trim_end_matches('/').to_string()))
    }
}

/// One `[[registry]]` table, checked as containers/image checks it.
fn registry(at: &Place) -> anyhow::Result<RegistryEntry> {
    let location = at.location("location")?.unwrap_or_default();
    let prefix = match at.location("prefix")?.filter(|prefix| !prefix.is_empty()) {
        Some(prefix) if prefix.contains('*') => {
            let domain = prefix.strip_prefix("*.").unwrap_or_default();
            if domain.is_empty() || domain.contains(['*', '/', ':', '@']) {
                return Err(at.error(
                    "prefix",
                    "a wildcard must be a leading *. before a host name, as in \"*.example.com\"",
                ));
            }
            prefix
        }
        Some(prefix) if location.is_empty() => {
            return Err(at.error(
                "location",
                &format!(
                    "needed unless the prefix is a *.example.com wildcard (prefix = \"{prefix}\")"
                ),
            ))
        }
        Some(prefix) => prefix,
        None if location.is_empty() => {
            return Err(at.error("location", "a [[registry]] needs a location or a prefix"))
        }
        None => location.clone(),
    };
    if at.fields.contains_key("pull-from-mirror") {
        return Err(at.error(
            "pull-from-mirror",
            "applies to a [[registry.mirror]] only; move it there",
        ));
    }
    let mirror_by_digest_only = at.boolean("mirror-by-digest-only")?;
    let items = match at.fields.get("mirror") {
        None => &Vec::new(),
        Some(Value::Array(items)) => items,
        Some(_) => return Err(at.error("mirror", "must be [[registry.mirror]] tables")),
    };
    let mut mirrors = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let Value::Table(fields) = item else {
            return Err(at.error("mirror", "must be [[registry.mirror]] tables"));
        };
        let table = format!("[[registry.mirror]] number {} of {}", index + 1, at.table);
        let place = Place {
            origin: at.origin,
            table,
            fields,
        };
        mirrors.push(mirror(&place, mirror_by_digest_only)?);
    }
    Ok(RegistryEntry {
        prefix,
        location,
        insecure: at.boolean("insecure")?,
        blocked: at.boolean("blocked")?,
        mirror_by_digest_only,
        mirrors,
        origin: at.origin.to_string(),
    })
}

/// One `[[registry.mirror]]` table.
fn mirror(at: &Place, by_digest_only: bool) -> anyhow::Result<MirrorEntry> {
    let location = at.location("location")?.unwrap_or_default();
    if location.is_empty() {
        return Err(at.error("location", "every mirror needs a location"));
    }
    let pull =
        match at.string("pull-from-mirror")? {
            Some(_) if by_digest_only => return Err(at.error(
                "pull-from-mirror",
                "not allowed where the registry sets mirror-by-digest-only; keep one of the two",
            )),
            None | Some("") | Some("all") => Pull::All,
            Some("digest-only") => Pull::DigestOnly,
            Some("tag-only") => Pull::TagOnly,
            Some(_) => {
                return Err(at.error(
                    "pull-from-mirror",
                    "must be \"all\", \"digest-only\" or \"tag-only\"",
                ))
            }
        };
    Ok(MirrorEntry {
        location,
        insecure: at.boolean("insecure")?,
        pull,
    })
}

/// Refuses one location declared twice in a file with different `insecure` or `blocked`, as
/// containers/image does.
fn refuse_conflicts(entries: &[RegistryEntry], origin: &str) -> anyhow::Result<()> {
    let mut seen: BTreeMap<&str, &RegistryEntry> = BTreeMap::new();
    for entry in entries {
        let place = if entry.location.is_empty() {
            &entry.prefix
        } else {
            &entry.location
        };
        let first = *seen.entry(place).or_insert(entry);
        for (field, a, b) in [
            ("insecure", first.insecure, entry.insecure),
            ("blocked", first.blocked, entry.blocked),
        ] {
            if a != b {
                return Err(bad_input!(
                    "{origin}: location \"{place}\" is declared twice, with {field} = {a} (prefix \"{}\") and \
                     {field} = {b} (prefix \"{}\"); make them agree",
                    first.prefix,
                    entry.prefix
                ));
            }
        }
    }
    Ok(())
}
