//! Azure's naming rules for what spin-aks puts into ARM request paths (subscription ids, resource
//! groups, clusters, registries, identities), the `aks:` cluster reference, and one path segment.

use std::fmt;

use crate::bad_input;

/// One kind of Azure name and the rule ARM applies to it.
#[derive(Clone, Copy)]
pub struct Rule {
    /// What the name is, in messages: `resource group`.
    pub what: &'static str,
    /// The rule, as a sentence fragment a user can act on.
    pub rule: &'static str,
    test: fn(&str) -> bool,
}

/// A subscription id: a GUID (names are not resolved: the id goes into every path).
pub const SUBSCRIPTION: Rule = Rule {
    what: "subscription",
    rule: "a subscription id is a GUID such as 00000000-0000-0000-0000-000000000000 (`az account list` shows them)",
    test: is_guid,
};

/// 1–90 letters (any script), digits, `_`, `(`, `)`, `-`, `.`; not ending in `.`.
pub const RESOURCE_GROUP: Rule = Rule {
    what: "resource group",
    rule: "a resource group name has 1 to 90 letters, digits, '-', '_', '.', '(' and ')', and does not end with '.'",
    test: is_resource_group,
};

/// 1–63 ASCII letters, digits, `-` and `_`, starting and ending alphanumeric.
pub const CLUSTER: Rule = Rule {
    what: "AKS cluster",
    rule: "an AKS cluster name has 1 to 63 letters, digits, '-' and '_', and starts and ends with a letter or digit",
    test: is_cluster,
};

/// 5–50 ASCII letters and digits (the registry becomes `<name>.azurecr.io`).
pub const REGISTRY: Rule = Rule {
    what: "container registry",
    rule: "a registry's name has 5 to 50 letters and digits",
    test: is_registry,
};

/// A user-assigned managed identity: 3–128 ASCII letters, digits, `-` and `_`, starting
/// alphanumeric.
pub const IDENTITY: Rule = Rule {
    what: "managed identity",
    rule: "a managed identity name has 3 to 128 letters, digits, '-' and '_', and starts with a letter or digit",
    test: is_identity,
};

impl Rule {
    /// Whether `value` follows the rule.
    pub fn holds(&self, value: &str) -> bool {
        (self.test)(value)
    }

    /// `value`, or bad input naming `source` (a flag, a reference), the value and the rule.
    pub fn check(&self, source: &str, value: &str) -> anyhow::Result<String> {
        if self.holds(value) {
            return Ok(value.to_string());
        }
        Err(bad_input!("{source} {value:?}: {}", self.rule))
    }

    /// For a flag's value parser: the rule alone, since the parser's caller names the flag and the
    /// value.
    pub fn parse(&self, value: &str) -> Result<String, String> {
        if self.holds(value) {
            Ok(value.to_string())
        } else {
            Err(self.rule.to_string())
        }
    }
}

fn is_guid(value: &str) -> bool {
    let groups: Vec<&str> = value.split('-').collect();
    let sizes = groups.iter().map(|g| g.len()).collect::<Vec<_>>();
    sizes == [8, 4, 4, 4, 12]
        && groups
            .iter()
            .all(|g| g.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn is_resource_group(value: &str) -> bool {
    let chars_ok = (value.chars()).all(|c| c.is_alphanumeric() || "-_.()".contains(c));
    !value.is_empty() && value.chars().count() <= 90 && chars_ok && !value.ends_with('.')
}

fn is_cluster(value: &str) -> bool {
    let chars_ok = (value.bytes()).all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    let ends_ok = value.starts_with(|c: char| c.is_ascii_alphanumeric())
        && value.ends_with(|c: char| c.is_ascii_alphanumeric());
    value.len() <= 63 && chars_ok && ends_ok
}

fn is_registry(value: &str) -> bool {
    (5..=50).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_alphanumeric())
}

fn is_identity(value: &str) -> bool {
    let chars_ok = (value.bytes()).all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    (3..=128).contains(&value.len())
        && chars_ok
        && value.starts_with(|c: char| c.is_ascii_alphanumeric())
}

/// A registry as `--registry` names one: its name, or its login server (`<name>.azurecr.io`, or
/// with a domain name label `<name>-<hash>.azurecr.io`): a host name of letters, digits, `-`, `.`.
pub fn parse_registry(value: &str) -> Result<String, String> {
    let host = value.contains('.')
        && value.len() <= 253
        && (value.split('.')).all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if host || REGISTRY.holds(value) {
        Ok(value.to_string())
    } else {
        Err(format!(
            "give a registry's name or login server: {} (its login server is <name>.azurecr.io)",
            REGISTRY.rule
        ))
    }
}

/// `value` as one segment of an ARM request path: refused when it would change the path or add a
/// query (`/`, `\`, `?`, `#`, `%`, `.` or `..`, empty, control characters), whatever it names.
pub fn path_segment<'a>(what: &str, value: &'a str) -> anyhow::Result<&'a str> {
    if is_path_segment(value) {
        return Ok(value);
    }
    Err(bad_input!(
        "the {what} {value:?} cannot be part of an ARM request: a name must not be empty, `.` or `..`, nor hold '/', '\\', '?', '#', '%' or control characters"
    ))
}

/// An ARM resource path (`/subscriptions/…`, no query): every segment a [`path_segment`].
pub fn resource_path(path: &str) -> anyhow::Result<()> {
    let Some(rest) = path.strip_prefix('/') else {
        return Err(bad_input!("the ARM path {path:?} does not start with '/'"));
    };
    for segment in rest.split('/') {
        path_segment("part of an ARM path", segment)?;
    }
    Ok(())
}

/// Whether [`path_segment`] takes `value`.
pub fn is_path_segment(value: &str) -> bool {
    !matches!(value, "" | "." | "..")
        && !value
            .chars()
            .any(|c| matches!(c, '/' | '?' | '#' | '%' | '\\') || c.is_control())
}

/// An AKS cluster named on the command line as `aks:[<subscription>/]<resource group>/<name>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AksReference {
    pub subscription: Option<String>,
    pub resource_group: String,
    pub name: String,
}

/// The shapes of an `aks:` reference, for messages.
const AKS_SHAPES: &str =
    "an AKS cluster is `aks:<resource group>/<name>` or `aks:<subscription>/<resource group>/<name>`";

impl AksReference {
    /// `Ok(None)` for a cluster that does not start with `aks:` (a kubeconfig context); bad input
    /// naming the reference when it has another shape or a part breaks Azure's rules.
    pub fn parse(cluster: &str) -> anyhow::Result<Option<AksReference>> {
        let Some(path) = cluster.strip_prefix("aks:") else {
            return Ok(None);
        };
        let parts: Vec<&str> = path.split('/').collect();
        let (subscription, group, name) = match parts.as_slice() {
            [group, name] => (None, *group, *name),
            [subscription, group, name] => (Some(*subscription), *group, *name),
            _ => return Err(bad_input!("cluster {cluster:?}: {AKS_SHAPES}")),
        };
        let part = |rule: &Rule, value: &str| {
            if rule.holds(value) {
                Ok(value.to_string())
            } else {
                Err(bad_input!(
                    "cluster {cluster:?}: the {} {value:?} is not a name Azure allows: {}; {AKS_SHAPES}",
                    rule.what,
                    rule.rule
                ))
            }
        };
        Ok(Some(AksReference {
            subscription: subscription.map(|s| part(&SUBSCRIPTION, s)).transpose()?,
            resource_group: part(&RESOURCE_GROUP, group)?,
            name: part(&CLUSTER, name)?,
        }))
    }
}

/// The reference as written: `aks:[<subscription>/]<resource group>/<name>`.
impl fmt::Display for AksReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("aks:")?;
        if let Some(subscription) = &self.subscription {
            write!(f, "{subscription}/")?;
        }
        write!(f, "{}/{}", self.resource_group, self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUB: &str = "0b5e1c9a-1111-4000-8000-00000000ABCD";

    #[test]
    fn names_follow_azures_rules() {
        let long_group = "g".repeat(90);
        let longer_group = "g".repeat(91);
        let long_cluster = "a".repeat(63);
        let longer_cluster = "a".repeat(64);
        let cases: &[(&Rule, &str, bool)] = &[
            (&SUBSCRIPTION, SUB, true),
            (&SUBSCRIPTION, "0b5e1c9a11114000800000000000abcd", false),
            (&SUBSCRIPTION, "0b5e1c9a-1111-4000-8000-00000000abcg", false),
            (&SUBSCRIPTION, "Dev subscription", false),
            (&SUBSCRIPTION, "sub", false),
            (&SUBSCRIPTION, "", false),
            (&RESOURCE_GROUP, "rg(dev).one", true),
            (&RESOURCE_GROUP, "grüne_gruppe-1", true),
            (&RESOURCE_GROUP, "資源", true),
            (&RESOURCE_GROUP, &long_group, true),
            (&RESOURCE_GROUP, &longer_group, false),
            (&RESOURCE_GROUP, "", false),
            (&RESOURCE_GROUP, "rg.", false),
            (&RESOURCE_GROUP, ".", false),
            (&RESOURCE_GROUP, "..", false),
            (&RESOURCE_GROUP, "rg/x", false),
            (&RESOURCE_GROUP, "rg?x=1", false),
            (&RESOURCE_GROUP, "rg#x", false),
            (&RESOURCE_GROUP, "rg%2F", false),
            (&RESOURCE_GROUP, "rg x", false),
            (&CLUSTER, "spin-1", true),
            (&CLUSTER, "a", true),
            (&CLUSTER, "a_b", true),
            (&CLUSTER, &long_cluster, true),
            (&CLUSTER, &longer_cluster, false),
            (&CLUSTER, "", false),
            (&CLUSTER, "-spin", false),
            (&CLUSTER, "spin_", false),
            (&CLUSTER, "spin.app", false),
            (&CLUSTER, "..", false),
            (&CLUSTER, "a#b", false),
            (&CLUSTER, "name?x=1", false),
            (&CLUSTER, "clüster", false),
            (&REGISTRY, "acr1", false),
            (&REGISTRY, "MyAcr01", true),
            (&REGISTRY, "my-acr", false),
            (&REGISTRY, &"a".repeat(51), false),
            (&IDENTITY, "shop-identity", true),
            (&IDENTITY, "ab", false),
            (&IDENTITY, "_shop", false),
            (&IDENTITY, "shop/../x", false),
        ];
        for (rule, value, ok) in cases {
            assert_eq!(rule.holds(value), *ok, "{} {value:?}", rule.what);
            let checked = rule.check("--flag", value);
            assert_eq!(checked.is_ok(), *ok, "{value:?}");
            if let Err(err) = checked {
                assert_eq!(crate::error::exit_code(&err), 2);
                let text = err.to_string();
                assert!(text.contains(&format!("--flag {value:?}")), "{text}");
                assert!(text.contains(rule.rule), "{text}");
            }
            if *ok {
                assert!(
                    is_path_segment(value),
                    "{value:?} follows a rule but is no segment"
                );
            }
        }
    }

    #[test]
    fn a_registry_is_named_or_its_login_server() {
        let cases = [
            ("myacr01", true),
            ("myacr01.azurecr.io", true),
            ("myacr-abc123.azurecr.io", true),
            ("acr", false),
            ("my-acr", false),
            ("../x", false),
            ("a..b", false),
            ("acr.io/x", false),
            ("acr.io?x", false),
        ];
        for (value, ok) in cases {
            assert_eq!(parse_registry(value).is_ok(), ok, "{value:?}");
        }
    }

    #[test]
    fn path_segments_cannot_move_the_path_or_add_a_query() {
        let cases = [
            ("aks1", true),
            ("rg(dev).one", true),
            ("資源", true),
            ("", false),
            (".", false),
            ("..", false),
            ("a/b", false),
            ("a?b", false),
            ("a#b", false),
            ("a%2e", false),
            ("a\\b", false),
            ("a\nb", false),
        ];
        for (value, ok) in cases {
            let checked = path_segment("resource group", value);
            assert_eq!(checked.is_ok(), ok, "{value:?}");
            if let Err(err) = checked {
                assert_eq!(crate::error::exit_code(&err), 2);
                assert!(err.to_string().contains("resource group"), "{err}");
            }
        }
    }

    #[test]
    fn resource_paths_are_made_of_segments() {
        assert!(resource_path("/subscriptions").is_ok());
        assert!(resource_path(&format!("/subscriptions/{SUB}/resourceGroups/rg")).is_ok());
        for bad in [
            "subscriptions",
            "/subscriptions/",
            "/a/../b",
            "/a/./b",
            "/a//b",
            "/a/b%2F",
        ] {
            assert!(resource_path(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn aks_references_parse_only_names_azure_allows() {
        let ok = |text: &str, subscription: Option<&str>, group: &str, name: &str| {
            let parsed = AksReference::parse(text).unwrap().unwrap();
            assert_eq!(
                parsed,
                AksReference {
                    subscription: subscription.map(str::to_string),
                    resource_group: group.into(),
                    name: name.into(),
                }
            );
            assert_eq!(parsed.to_string(), text);
        };
        ok("aks:rg/aks1", None, "rg", "aks1");
        ok(
            &format!("aks:{SUB}/rg(dev)/aks_1"),
            Some(SUB),
            "rg(dev)",
            "aks_1",
        );
        assert_eq!(AksReference::parse("my-context").unwrap(), None);
        assert_eq!(AksReference::parse("").unwrap(), None);
        let refused = [
            ("aks:aks1", "aks:<resource group>/<name>"),
            ("aks:a/b/c/d", "aks:<resource group>/<name>"),
            ("aks:", "aks:<resource group>/<name>"),
            (&format!("aks:{SUB}/../x"), "resource group \"..\""),
            ("aks:sub/rg/x", "subscription \"sub\""),
            (
                &format!("aks:{SUB}/rg/name?x=1"),
                "AKS cluster \"name?x=1\"",
            ),
            (&format!("aks:{SUB}/rg/a#b"), "AKS cluster \"a#b\""),
            ("aks:rg/", "AKS cluster \"\""),
            ("aks:/x", "resource group \"\""),
            ("aks:rg./x", "resource group \"rg.\""),
        ];
        for (text, says) in refused {
            let err = AksReference::parse(text).unwrap_err();
            assert_eq!(crate::error::exit_code(&err), 2, "{text}");
            let message = err.to_string();
            assert!(message.contains(says), "{text}: {message}");
            assert!(message.contains(&format!("{text:?}")), "{text}: {message}");
        }
    }
}

/// An AKS cluster selection.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterRef {
    pub subscription: String,
    pub resource_group: String,
    pub name: String,
}
