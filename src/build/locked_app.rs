//! The locked app JSON Spin ships as the artifact's last layer: structs in Spin's field order,
//! maps sorted, content by digest (or inline base64 without padding for small files).

use std::collections::BTreeMap;

use base64::Engine;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::app::chaining::requires_service_chaining;
use crate::app::compat::{Feature, ShimRelease};
use crate::app::App;

use crate::oci::Digest;

/// Spin's host requirement for calling components by `*.spin.internal` (locked.rs:21).
const CHAINING_KEY: &str = "local_service_chaining";

/// Spin's `LockedApp` (crates/locked-app/src/locked.rs@v3.6.3, unchanged @v4.0.2).
#[derive(Debug, Serialize)]
pub struct LockedApp {
    /// 1 when `must_understand` or `host_requirements` is present, else 0 (locked.rs:129).
    pub spin_lock_version: u32,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub must_understand: Vec<&'static str>,
    #[serde(skip_serializing_if = "Map::is_empty")]
    pub metadata: Map<String, Value>,
    #[serde(skip_serializing_if = "Map::is_empty")]
    pub host_requirements: Map<String, Value>,
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
    #[serde(skip_serializing_if = "Map::is_empty")]
    pub host_requirements: Map<String, Value>,
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

/// The app-level parts of the locked app (metadata, variables, triggers) around `components`, with
/// the service chaining host requirement written as the target shim's Spin writes and reads it.
pub fn locked_app(
    app: &App,
    mut components: Vec<LockedComponent>,
    target: &ShimRelease,
) -> LockedApp {
    let chaining: Vec<&mut LockedComponent> = components
        .iter_mut()
        .filter(|c| app.component(&c.id).is_some_and(requires_service_chaining))
        .collect();
    let mut host_requirements = Map::new();
    let mut must_understand = Vec::new();
    let required = || Map::from_iter([(CHAINING_KEY.to_string(), Value::from("required"))]);
    if !chaining.is_empty() {
        if Feature::ComponentHostRequirements.runs_on(target) {
            // Spin ≥ 3.3: on each component (crates/loader/src/local.rs:221-228@v3.6.3).
            for component in chaining {
                component.host_requirements = required();
            }
            must_understand.push("component_host_requirements");
        } else {
            // Spin 2.4–3.2: on the app (crates/loader/src/local.rs:114-127@v3.2.0).
            host_requirements = required();
            must_understand.push("host_requirements");
        }
    }
    LockedApp {
        spin_lock_version: u32::from(!must_understand.is_empty() || !host_requirements.is_empty()),
        must_understand,
        host_requirements,
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

    fn app(hosts: &[&str]) -> App {
        let component = |id: &str, hosts: &[&str]| crate::app::Component {
            id: id.into(),
            allowed_outbound_hosts: hosts.iter().map(|h| h.to_string()).collect(),
            ..Default::default()
        };
        App {
            dir: "/app".into(),
            manifest_path: "/app/spin.toml".into(),
            manifest: Default::default(),
            name: "chain".into(),
            version: None,
            description: None,
            authors: vec![],
            trigger_settings: Default::default(),
            variables: Default::default(),
            triggers: vec![],
            components: vec![component("front", hosts), component("back", &[])],
        }
    }

    /// The locked app as JSON text (in serialisation order) and as a value.
    fn locked_json(app: &App, shim: &str) -> (String, Value) {
        let components = app
            .components
            .iter()
            .map(|c| LockedComponent {
                id: c.id.clone(),
                metadata: Map::new(),
                source: LockedSource {
                    content_type: "application/wasm",
                    content: ContentRef::default(),
                },
                env: Default::default(),
                files: vec![],
                config: Default::default(),
                host_requirements: Map::new(),
            })
            .collect();
        let target = crate::app::compat::target_shim(shim).unwrap();
        let text = serde_json::to_string(&locked_app(app, components, target)).unwrap();
        let value = serde_json::from_str(&text).unwrap();
        (text, value)
    }

    #[test]
    fn service_chaining_is_required_as_the_target_spin_writes_it() {
        // Spin ≥ 3.3 puts the requirement on the component and asks the host to understand
        // component host requirements (crates/loader/src/local.rs:119-128, 221-228@v3.6.3;
        // serialised as locked.rs:122-152: version 1, `must_understand` before `metadata`).
        let chaining = app(&["http://back.spin.internal"]);
        let (text, json) = locked_json(&chaining, "v0.25.1");
        assert_eq!(json["spin_lock_version"], 1);
        assert_eq!(
            json["must_understand"],
            serde_json::json!(["component_host_requirements"])
        );
        assert_eq!(json.get("host_requirements"), None);
        assert_eq!(
            json["components"][0]["host_requirements"],
            serde_json::json!({"local_service_chaining": "required"})
        );
        assert_eq!(json["components"][1].get("host_requirements"), None);
        let keys: Vec<usize> = [
            "spin_lock_version",
            "must_understand",
            "metadata",
            "triggers",
        ]
        .iter()
        .map(|k| text.find(&format!("\"{k}\"")).unwrap())
        .collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]), "{text}");
        // Spin 2.4–3.2 put it on the app (crates/loader/src/local.rs:114-127@v3.2.0).
        let (_, json) = locked_json(&chaining, "v0.19.0");
        assert_eq!(
            json["must_understand"],
            serde_json::json!(["host_requirements"])
        );
        assert_eq!(
            json["host_requirements"],
            serde_json::json!({"local_service_chaining": "required"})
        );
        assert_eq!(json["components"][0].get("host_requirements"), None);
        // No chaining host: version 0 and neither field.
        let (_, json) = locked_json(
            &app(&["*://*:*", "http://{{ svc }}.spin.internal"]),
            "v0.25.1",
        );
        assert_eq!(json["spin_lock_version"], 0);
        assert_eq!(json.get("must_understand"), None);
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
