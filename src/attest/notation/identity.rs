//! Reads Notation's signing identities: a distinguished name in `x509.subject` form, and a
//! certificate's subject attributes under the names Notation compares them by.

use std::collections::BTreeMap;

use x509_parser::prelude::X509Certificate;

/// The attribute names Go's `pkix.Name.String()` writes, which Notation matches identities on.
const DN_NAMES: &[(&str, &str)] = &[
    ("2.5.4.3", "CN"),
    ("2.5.4.6", "C"),
    ("2.5.4.7", "L"),
    ("2.5.4.8", "ST"),
    ("2.5.4.9", "STREET"),
    ("2.5.4.10", "O"),
    ("2.5.4.11", "OU"),
    ("2.5.4.17", "POSTALCODE"),
    ("2.5.4.5", "SERIALNUMBER"),
];

pub(super) fn subject_attributes(cert: &X509Certificate) -> BTreeMap<String, String> {
    let mut attributes = BTreeMap::new();
    for rdn in cert.subject().iter_rdn() {
        for attribute in rdn.iter() {
            let oid = attribute.attr_type().to_id_string();
            let name = DN_NAMES
                .iter()
                .find(|(o, _)| *o == oid)
                .map_or(oid.clone(), |(_, n)| n.to_string());
            if let Ok(value) = attribute.as_str() {
                attributes.insert(name, value.to_string());
            }
        }
    }
    attributes
}

/// Parses an identity in Notation's `x509.subject` form (RFC 4514: `C=US,ST=WA,O=Example`) by
/// Notation's rules (notation-go `internal/pkix.ParseDistinguishedName`): single-valued RDNs, no
/// attribute twice, `S` for `ST`, and `C`, `ST` and `O` present. The error says what is wrong.
pub fn parse_subject(dn: &str) -> Result<BTreeMap<String, String>, String> {
    let syntax = |why: &str| {
        format!("the distinguished name \"{dn}\" {why}; write it as Notation's x509.subject does, e.g. \"C=US,ST=WA,O=Example,CN=Signer\" (RFC 4514, C, ST and O at least)")
    };
    if dn.contains("=#") {
        return Err(syntax(
            "has a hex-encoded (=#) value, which Notation does not support",
        ));
    }
    let mut attributes = BTreeMap::new();
    let mut rest = dn.chars().peekable();
    loop {
        let mut key = String::new();
        for c in rest.by_ref() {
            if c == '=' {
                break;
            }
            key.push(c);
        }
        let key = key.trim().to_ascii_uppercase();
        if key.is_empty() {
            return Err(syntax("has an attribute without a name"));
        }
        let mut value = String::new();
        let mut end = None;
        while let Some(c) = rest.next() {
            match c {
                '\\' => match rest.next() {
                    Some(h) if h.is_ascii_hexdigit() => {
                        let l = rest
                            .next()
                            .filter(char::is_ascii_hexdigit)
                            .ok_or_else(|| syntax("has a bad escape"))?;
                        let byte = u8::from_str_radix(&format!("{h}{l}"), 16).expect("hex digits");
                        value.push(byte as char);
                    }
                    Some(c) => value.push(c),
                    None => return Err(syntax("ends in a lone backslash")),
                },
                ',' | ';' | '+' => {
                    end = Some(c);
                    break;
                }
                c => value.push(c),
            }
        }
        if end == Some('+') {
            return Err(syntax(
                "has a multi-valued RDN (`+`), which Notation does not support",
            ));
        }
        let key = if key == "S" { "ST".to_string() } else { key };
        let value = value.trim().to_string();
        if value.is_empty() {
            return Err(syntax(&format!("gives {key} no value")));
        }
        if attributes.insert(key.clone(), value).is_some() {
            return Err(syntax(&format!("gives {key} twice")));
        }
        if end.is_none() {
            break;
        }
    }
    for mandatory in ["C", "ST", "O"] {
        if !attributes.contains_key(mandatory) {
            return Err(syntax(&format!("has no {mandatory}")));
        }
    }
    Ok(attributes)
}
