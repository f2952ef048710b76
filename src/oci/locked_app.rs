//! The locked app JSON Spin ships as the artifact's last layer: structs in Spin's field order,
//! maps sorted, content by digest (or inline base64 without padding for small files).

use std::collections::BTreeMap;

use base64::Engine;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::app::App;

use super::Digest;

/// Spin's `LockedApp`.
#[derive(Debug, Serialize)]
pub struct LockedApp {
    pub spin_lock_version: u32,
    #[serde(skip_serializing_if = "Map::is_empty")]
    pub metadata: Map<String, Value>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub variables: BTreeMap<String, LockedVariable>,
    pub triggers: Vec<LockedTrigger>,
    pub components: Vec<LockedComponent>,
}

#[derive(Debug, Serialize)]
pub struct LockedVariable {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub secret: bool,
}

#[derive(Debug, Serialize)]
pub struct LockedTrigger {
    pub id: String,
    pub trigger_type: String,
    pub trigger_config: Value,
}

#[derive(Debug, Serialize)]
pub struct LockedComponent {
    pub id: String,
    #[serde(skip_serializing_if = "Map::is_empty")]
    pub metadata: Map<String, Value>,
    pub source: LockedSource,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<ContentPath>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub config: BTreeMap<String, String>,
}

#[derive(Debug, Serialize)]
pub struct LockedSource {
    pub content_type: &'static str,
    #[serde(flatten)]
    pub content: ContentRef,
}

/// Content by digest, or inline bytes (Spin's `ContentRef`; field order as Spin writes it).
#[derive(Debug, Default, Serialize)]
pub struct ContentRef {
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "inline_base64"
    )]
    pub inline: Option<Vec<u8>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<Digest>,
}

/// A file of a component: its content and its path relative to the component's file root.
#[derive(Debug, Serialize)]
pub struct ContentPath {
    #[serde(flatten)]
    pub content: ContentRef,
    pub path: String,
}

/// Base64 with the STANDARD alphabet and no padding: Spin's reader rejects padded input.
pub fn encode_inline(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD_NO_PAD.encode(bytes)
}

fn inline_base64<S: serde::Serializer>(
    bytes: &Option<Vec<u8>>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&encode_inline(bytes.as_deref().unwrap_or_default()))
}

/// The app-level parts of the locked app: metadata, variables and triggers.
pub fn locked_app(app: &App, components: Vec<LockedComponent>) -> LockedApp {
    LockedApp {
        spin_lock_version: 0,
        metadata: app_metadata(app),
        variables: app
            .variables
            .iter()
            .map(|(name, v)| {
                let locked = LockedVariable {
                    description: v.description.clone(),
                    default: v.default.clone(),
                    secret: v.secret,
                };
                (name.clone(), locked)
            })
            .collect(),
        triggers: app
            .triggers
            .iter()
            .map(|t| {
                let mut config = t.settings.clone();
                if let Some(component) = &t.component {
                    config.insert("component".into(), Value::String(component.clone()));
                }
                LockedTrigger {
                    id: t.id.clone(),
                    trigger_type: t.trigger_type.clone(),
                    trigger_config: Value::Object(config),
                }
            })
            .collect(),
        components,
    }
}

fn app_metadata(app: &App) -> Map<String, Value> {
    let mut metadata = Map::new();
    metadata.insert("name".into(), Value::String(app.name.clone()));
    if let Some(version) = &app.version {
        metadata.insert("version".into(), Value::String(version.clone()));
    }
    if let Some(description) = &app.description {
        metadata.insert("description".into(), Value::String(description.clone()));
    }
    if !app.authors.is_empty() {
        metadata.insert(
            "authors".into(),
            app.authors.iter().cloned().map(Value::String).collect(),
        );
    }
    let types = app.trigger_types();
    let settings_of = |t: &str| {
        app.trigger_settings
            .get(t)
            .cloned()
            .unwrap_or_else(|| Value::Object(Map::new()))
    };
    let triggers: Map<String, Value> = types
        .iter()
        .map(|t| (t.to_string(), settings_of(t)))
        .collect();
    if let [only] = types.as_slice() {
        let mut trigger = settings_of(only).as_object().cloned().unwrap_or_default();
        trigger.insert("type".into(), Value::String(only.to_string()));
        metadata.insert("trigger".into(), Value::Object(trigger));
    }
    metadata.insert("triggers".into(), Value::Object(triggers));
    metadata
}

/// A component's metadata: description and the capabilities it asks for, empty ones omitted.
pub fn component_metadata(component: &crate::app::Component) -> Map<String, Value> {
    let mut metadata = Map::new();
    if let Some(description) = &component.description {
        metadata.insert("description".into(), Value::String(description.clone()));
    }
    let lists = [
        ("allowed_outbound_hosts", &component.allowed_outbound_hosts),
        ("key_value_stores", &component.key_value_stores),
        ("databases", &component.sqlite_databases),
        ("ai_models", &component.ai_models),
    ];
    for (key, values) in lists {
        if !values.is_empty() {
            metadata.insert(
                key.into(),
                values.iter().cloned().map(Value::String).collect(),
            );
        }
    }
    metadata
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_content_is_unpadded_standard_base64() {
        assert_eq!(encode_inline(b"hi"), "aGk");
        assert_eq!(encode_inline(&[0xfb, 0xff]), "+/8");
    }

    #[test]
    fn serde_json_objects_keep_keys_sorted() {
        // Guards against a dependency enabling serde_json's `preserve_order` feature, which would
        // make canonical JSON depend on insertion order and break reproducible digests.
        let mut map = Map::new();
        map.insert("b".into(), Value::Null);
        map.insert("a".into(), Value::Null);
        assert_eq!(
            serde_json::to_string(&map).unwrap(),
            r#"{"a":null,"b":null}"#
        );
    }

    #[test]
    fn source_serializes_content_type_inline_then_digest() {
        let source = LockedSource {
            content_type: "application/wasm",
            content: ContentRef {
                inline: Some(b"x".to_vec()),
                digest: Some(Digest::of(b"x")),
            },
        };
        let json = serde_json::to_string(&source).unwrap();
        assert!(
            json.starts_with(
                r#"{"content_type":"application/wasm","inline":"eA","digest":"sha256:"#
            ),
            "{json}"
        );
    }
}
