//! Tests the SBOM's CycloneDX document made from a fixed input: its format, each part's type,
//! digest and source, and a graph naming every part once. `input` also serves provenance's tests.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::*;
use crate::attest::auditable::{Crate, CrateKey, Crates};
use crate::git::Checkout;
use crate::oci::Digest;

fn digest(seed: &str) -> Digest {
    Digest::of(seed.as_bytes())
}

fn source(origin: Origin, seed: &str) -> WasmSource {
    WasmSource {
        origin,
        digest: digest(seed),
    }
}

fn key(name: &str, version: &str, source: &str) -> CrateKey {
    CrateKey {
        name: name.into(),
        version: version.into(),
        source: source.into(),
    }
}

/// `hello` (local, the root) → `spin-sdk` (crates.io) → `proc-macro2` (build only).
fn crates() -> Crates {
    let hello = key("hello", "0.1.0", "local");
    let sdk = key("spin-sdk", "3.1.0", "crates.io");
    let pm = key("proc-macro2", "1.0.86", "crates.io");
    Crates::from([
        (
            hello,
            Crate {
                build_only: false,
                root: true,
                dependencies: BTreeSet::from([sdk.clone()]),
            },
        ),
        (
            sdk,
            Crate {
                build_only: false,
                root: false,
                dependencies: BTreeSet::from([pm.clone()]),
            },
        ),
        (
            pm,
            Crate {
                build_only: true,
                root: false,
                dependencies: BTreeSet::new(),
            },
        ),
    ])
}

/// Two components: `web` from a file with two files and its crates; `api` from a URL,
/// composed with a file dependency and `web`'s source.
pub(crate) fn input() -> SbomInput {
    SbomInput {
        image: digest("image"),
        app: AppFacts {
            name: "shop".into(),
            version: Some("1.0.0".into()),
            description: None,
        },
        checkout: Some(Checkout {
            top_level: "/src".into(),
            commit: "a".repeat(40),
            commit_time: Some(1_700_000_000),
            remote: Some("https://github.com/org/shop.git".into()),
        }),
        timestamp: Some(1_700_000_000),
        target: crate::app::compat::target_shim("v0.25.1").unwrap(),
        components: vec![
            ComponentFacts {
                id: "web".into(),
                description: Some("the pages".into()),
                wasm: digest("web"),
                source: source(Origin::File("target/web.wasm".into()), "web"),
                dependencies: vec![],
                files: vec![
                    FileFacts {
                        guest_path: "/a.css".into(),
                        digest: digest("a"),
                    },
                    FileFacts {
                        guest_path: "/static/index.html".into(),
                        digest: digest("index"),
                    },
                ],
                crates: Some(crates()),
            },
            ComponentFacts {
                id: "api".into(),
                description: None,
                wasm: digest("api composed"),
                source: source(Origin::Url("https://example.com/api.wasm".into()), "api"),
                dependencies: vec![
                    DependencyFacts {
                        name: "test:greet/greeter".into(),
                        source: source(Origin::File("../libs/greet.wasm".into()), "greet"),
                        crates: None,
                    },
                    DependencyFacts {
                        name: "my:dep/x".into(),
                        source: source(Origin::Component("web".into()), "web"),
                        crates: Some(crates()),
                    },
                ],
                files: vec![],
                crates: None,
            },
        ],
    }
}

fn bom(input: &SbomInput) -> Value {
    serde_json::from_slice(&cyclonedx(input).unwrap()).unwrap()
}

/// Every component in the BOM (nested ones too) by bom-ref.
pub(crate) fn by_ref(bom: &Value) -> BTreeMap<String, Value> {
    fn walk(list: &Value, into: &mut BTreeMap<String, Value>) {
        for c in list.as_array().into_iter().flatten() {
            let reference = c["bom-ref"].as_str().unwrap().to_string();
            assert!(
                into.insert(reference.clone(), c.clone()).is_none(),
                "{reference} twice"
            );
            walk(&c["components"], into);
        }
    }
    let mut found = BTreeMap::new();
    walk(&bom["components"], &mut found);
    found
}

#[test]
fn the_bom_is_cyclonedx_1_6_with_a_serial_number_named_by_the_image() {
    let bom = bom(&input());
    assert_eq!(bom["bomFormat"], "CycloneDX");
    assert_eq!(bom["specVersion"], "1.6");
    assert_eq!(bom["version"], 1);
    // RFC 9562 section 5.8: version 8 (the 13th hex digit), variant 10xx (the 17th).
    let serial = bom["serialNumber"].as_str().unwrap();
    let uuid = serial.strip_prefix("urn:uuid:").unwrap();
    assert_eq!(uuid.len(), 36, "{serial}");
    assert_eq!(&uuid[14..15], "8", "{serial}");
    assert!("89ab".contains(&uuid[19..20]), "{serial}");
    assert_eq!(uuid, uuid.to_lowercase());
    let mut other = input();
    other.image = digest("another image");
    assert_ne!(self::bom(&other)["serialNumber"], serial);
    assert_eq!(bom["metadata"]["timestamp"], "2023-11-14T22:13:20Z");
    let tools = &bom["metadata"]["tools"]["components"];
    assert_eq!(tools[0]["name"], "spin-aks");
    assert_eq!(tools[0]["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(tools[1]["name"], "containerd-shim-spin");
    assert_eq!(tools[1]["version"], input().target.shim);
    assert_eq!(tools[1]["type"], "platform");
    let app = &bom["metadata"]["component"];
    assert_eq!(app["type"], "application");
    assert_eq!(app["name"], "shop");
    assert_eq!(app["version"], "1.0.0");
    assert_eq!(app["externalReferences"][0]["type"], "vcs");
    assert_eq!(
        app["externalReferences"][0]["url"],
        "https://github.com/org/shop.git"
    );
}

#[test]
fn each_part_has_its_type_digest_and_source() {
    let bom = bom(&input());
    let found = by_ref(&bom);
    let hex = |seed: &str| digest(seed).hex().to_string();
    let sdk = "component:web/cargo:crates.io/spin-sdk@3.1.0";
    // (bom-ref, type, SHA-256, a property that must be there)
    type Case<'a> = (&'a str, &'a str, Option<String>, (&'a str, &'a str));
    let cases: &[Case] = &[
        (
            "component:web",
            "application",
            Some(hex("web")),
            ("spin-aks:source-file", "target/web.wasm"),
        ),
        // Composed: the image's wasm, the source's own digest beside it.
        (
            "component:api",
            "application",
            Some(hex("api composed")),
            ("spin-aks:source-digest", &digest("api").to_string()),
        ),
        (
            "component:api/dependency:test:greet/greeter",
            "library",
            Some(hex("greet")),
            ("spin-aks:source-file", "../libs/greet.wasm"),
        ),
        (
            "component:api/dependency:my:dep/x",
            "library",
            Some(hex("web")),
            ("spin-aks:source-component", "web"),
        ),
        (
            "component:web/file:/static/index.html",
            "file",
            Some(hex("index")),
            ("", ""),
        ),
        (
            "component:web/cargo:local/hello@0.1.0",
            "library",
            None,
            ("spin-aks:cargo-source", "local"),
        ),
        (sdk, "library", None, ("", "")),
        (
            "component:api/dependency:my:dep/x/cargo:crates.io/spin-sdk@3.1.0",
            "library",
            None,
            ("", ""),
        ),
    ];
    for (reference, kind, sha256, (name, value)) in cases {
        let component = &found[*reference];
        assert_eq!(component["type"], *kind, "{reference}");
        match sha256 {
            Some(hex) => assert_eq!(
                component["hashes"],
                serde_json::json!([{"alg": "SHA-256", "content": hex}]),
                "{reference}"
            ),
            None => assert_eq!(component.get("hashes"), None, "{reference}"),
        }
        if !name.is_empty() {
            let properties = component["properties"].as_array().unwrap();
            assert!(
                properties.contains(&serde_json::json!({"name": name, "value": value})),
                "{reference}: {properties:?}"
            );
        }
    }
    // A download: a distribution reference carrying its hash.
    assert_eq!(
        found["component:api"]["externalReferences"],
        serde_json::json!([{"url": "https://example.com/api.wasm", "type": "distribution",
            "hashes": [{"alg": "SHA-256", "content": hex("api")}]}])
    );
    // Crates: a purl only for crates.io; build-only ones excluded from run time.
    assert_eq!(found[sdk]["purl"], "pkg:cargo/spin-sdk@3.1.0");
    assert_eq!(found[sdk].get("scope"), None);
    assert_eq!(
        found["component:web/cargo:local/hello@0.1.0"].get("purl"),
        None
    );
    let pm = &found["component:web/cargo:crates.io/proc-macro2@1.0.86"];
    assert_eq!(pm["scope"], "excluded");
    // Top-level: exactly the two Spin components, sorted.
    let top: Vec<&str> = (bom["components"].as_array().unwrap().iter())
        .map(|c| c["bom-ref"].as_str().unwrap())
        .collect();
    assert_eq!(top, ["component:api", "component:web"]);
}

#[test]
fn the_graph_names_every_part_once_and_only_parts() {
    let bom = bom(&input());
    let found = by_ref(&bom);
    let graph: BTreeMap<&str, Vec<&str>> = (bom["dependencies"].as_array().unwrap().iter())
        .map(|d| {
            let on = (d["dependsOn"].as_array().into_iter().flatten())
                .map(|r| r.as_str().unwrap())
                .collect();
            (d["ref"].as_str().unwrap(), on)
        })
        .collect();
    assert_eq!(graph.len(), bom["dependencies"].as_array().unwrap().len());
    let mut refs: BTreeSet<&str> = found.keys().map(String::as_str).collect();
    refs.insert("app");
    assert_eq!(graph.keys().copied().collect::<BTreeSet<_>>(), refs);
    for (from, on) in &graph {
        assert!(on.iter().all(|r| refs.contains(r)), "{from} → {on:?}");
    }
    for (from, expected) in [
        ("app", vec!["component:api", "component:web"]),
        (
            "component:web",
            vec!["component:web/cargo:local/hello@0.1.0"],
        ),
        (
            "component:api",
            vec![
                "component:api/dependency:my:dep/x",
                "component:api/dependency:test:greet/greeter",
            ],
        ),
        (
            "component:web/cargo:local/hello@0.1.0",
            vec!["component:web/cargo:crates.io/spin-sdk@3.1.0"],
        ),
        ("component:web/file:/a.css", vec![]),
    ] {
        assert_eq!(graph[from], expected, "{from}");
    }
}

#[test]
fn the_same_input_gives_the_same_bytes_and_the_epoch_only_the_timestamp() {
    let first = cyclonedx(&input()).unwrap();
    assert_eq!(cyclonedx(&input()).unwrap(), first);
    let mut later = input();
    later.timestamp = Some(1_800_000_000);
    let mut none = input();
    none.timestamp = None;
    let without_time = |bytes: &[u8]| {
        let mut bom: Value = serde_json::from_slice(bytes).unwrap();
        let time = bom["metadata"].as_object_mut().unwrap().remove("timestamp");
        (bom, time)
    };
    let (base, time) = without_time(&first);
    let (other, other_time) = without_time(&cyclonedx(&later).unwrap());
    assert_eq!(other, base);
    assert_ne!(other_time, time);
    assert_eq!(other_time, Some(Value::from("2027-01-15T08:00:00Z")));
    let (untimed, no_time) = without_time(&cyclonedx(&none).unwrap());
    assert_eq!(untimed, base);
    assert_eq!(no_time, None);
}
