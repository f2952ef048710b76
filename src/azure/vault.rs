//! Key Vault names: a vault URL checked once into a typed `Vault`, and the mapping from a Spin
//! variable name to a valid vault secret name (`_` → `-`, docs/cluster.md).

use crate::tls::is_loopback;

/// A Key Vault, from `https://<name>.vault.azure.net/` (or a sovereign cloud's vault domain; a
/// loopback `http://` URL for tests).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vault {
    /// The URL with one trailing `/`, as Spin and the CSI driver take it.
    pub url: String,
    /// The vault name: the host's first label (`vault` for a loopback test URL).
    pub name: String,
}

/// Vault DNS suffixes of the public and sovereign clouds: Azure, Azure operated by 21Vianet (China)
/// and Azure Government. Microsoft Cloud Germany (`vault.microsoftazure.de`) closed on 29 October
/// 2021, so its names are refused.
const VAULT_SUFFIXES: &[&str] = &[
    ".vault.azure.net",
    ".vault.azure.cn",
    ".vault.usgovcloudapi.net",
];

impl Vault {
    /// Parses a vault URL; the error names the value and the expected form.
    pub fn parse(value: &str) -> Result<Vault, String> {
        let refuse =
            || format!("`{value}` is not a Key Vault URL; use https://<vault>.vault.azure.net/");
        let (scheme, rest) = value.split_once("://").ok_or_else(refuse)?;
        let host_port = rest.trim_end_matches('/');
        if host_port.is_empty() || host_port.contains(['/', '?', '#', '@']) {
            return Err(refuse());
        }
        let host = host_port.split(':').next().unwrap_or_default();
        let name = match scheme {
            "https" => VAULT_SUFFIXES
                .iter()
                .find_map(|suffix| host.strip_suffix(suffix))
                .filter(|name| valid_vault_name(name))
                .ok_or_else(refuse)?,
            "http" if is_loopback(host_port) => "vault",
            _ => return Err(refuse()),
        };
        Ok(Vault {
            url: format!("{scheme}://{host_port}/"),
            name: name.to_string(),
        })
    }

    /// The Entra scope of this vault's data plane: `https://vault.azure.net/.default` in the public
    /// cloud (and for loopback test vaults), the cloud's vault domain elsewhere.
    pub fn token_scope(&self) -> String {
        let suffix = VAULT_SUFFIXES
            .iter()
            .find(|suffix| self.url.contains(&format!("{}{suffix}", self.name)))
            .unwrap_or(&VAULT_SUFFIXES[0]);
        format!("https://{}/.default", &suffix[1..])
    }
}

impl serde::Serialize for Vault {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.url)
    }
}

impl<'de> serde::Deserialize<'de> for Vault {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let url = String::deserialize(deserializer)?;
        Vault::parse(&url).map_err(serde::de::Error::custom)
    }
}

/// Vault names: 3–24 of letters, digits and `-`, starting with a letter (Azure's rule).
fn valid_vault_name(name: &str) -> bool {
    (3..=24).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// The vault secret name a Spin variable maps to: `_` → `-` (Key Vault allows `[0-9a-zA-Z-]`).
pub fn secret_name(variable: &str) -> String {
    variable.replace('_', "-")
}

/// Whether Spin's own `azure_key_vault` provider can find `variable`: it looks the name up
/// unchanged, so only names without `_` can exist in a vault.
pub fn provider_can_resolve(variable: &str) -> bool {
    !variable.contains('_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vault_urls_name_the_vault_and_end_with_one_slash() {
        let vault = Vault::parse("https://shop-kv.vault.azure.net").unwrap();
        assert_eq!(vault.name, "shop-kv");
        assert_eq!(vault.url, "https://shop-kv.vault.azure.net/");
        assert_eq!(
            Vault::parse("https://gov1.vault.usgovcloudapi.net/")
                .unwrap()
                .name,
            "gov1"
        );
        assert_eq!(
            Vault::parse("http://127.0.0.1:8443/").unwrap().url,
            "http://127.0.0.1:8443/"
        );
    }

    #[test]
    fn the_token_scope_follows_the_cloud() {
        let scope = |url: &str| Vault::parse(url).unwrap().token_scope();
        assert_eq!(
            scope("https://shop.vault.azure.net/"),
            "https://vault.azure.net/.default"
        );
        assert_eq!(
            scope("https://shop.vault.azure.cn/"),
            "https://vault.azure.cn/.default"
        );
        assert_eq!(
            scope("http://127.0.0.1:8443/"),
            "https://vault.azure.net/.default"
        );
    }

    #[test]
    fn a_vault_is_stored_as_its_url() {
        let vault = Vault::parse("https://shop-kv.vault.azure.net").unwrap();
        let json = serde_json::to_value(&vault).unwrap();
        assert_eq!(json, "https://shop-kv.vault.azure.net/");
        assert_eq!(serde_json::from_value::<Vault>(json).unwrap(), vault);
        let err = serde_json::from_value::<Vault>("https://example.com/".into()).unwrap_err();
        assert!(err.to_string().contains("https://example.com/"), "{err}");
    }

    #[test]
    fn other_urls_are_refused_naming_the_value() {
        for bad in [
            "shop.vault.azure.net",
            "http://shop.vault.azure.net/",
            "https://example.com/",
            "https://a.vault.azure.net/",
            "https://shop.vault.azure.net/secrets/x",
            "https://user@shop.vault.azure.net/",
            "https://shop.vault.microsoftazure.de/",
        ] {
            let err = Vault::parse(bad).unwrap_err();
            assert!(err.contains(bad), "{err}");
        }
    }

    #[test]
    fn variable_names_map_to_vault_names() {
        assert_eq!(secret_name("api_key"), "api-key");
        assert!(provider_can_resolve("greeting"));
        assert!(!provider_can_resolve("api_key"));
    }
}
