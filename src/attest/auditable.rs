//! The Rust crates a wasm was built from, as cargo-auditable records them: the `.dep-v0` custom
//! section, zlib-compressed JSON (PARSING.md and auditable-serde/src/lib.rs in
//! rust-secure-code/cargo-auditable), read without running anything.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;

use anyhow::Context;
use serde::Deserialize;

/// The custom section cargo-auditable writes (auditable-extract/src/wasm.rs).
pub const SECTION: &str = ".dep-v0";

/// Decompressed audit data above this is refused: PARSING.md ("Step 2") finds 8 MiB more than
/// any legitimate audit data needs, and a limit keeps a zlib bomb from exhausting memory.
const MAX_JSON: u64 = 8 * 1024 * 1024;

/// A crate of the build, as cargo-auditable names it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct CrateKey {
    pub name: String,
    pub version: String,
    /// `crates.io`, `git`, `local`, `registry` or another source kind (auditable-serde `Source`).
    pub source: String,
}

/// One crate with what it depends on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Crate {
    /// Only needed to build (a proc macro or build script and what they use), not in the wasm.
    pub build_only: bool,
    /// The crate the wasm was built from (its own package), which the others hang off.
    pub root: bool,
    pub dependencies: BTreeSet<CrateKey>,
}

/// The crates of one wasm, sorted; the union of every `.dep-v0` section it holds (a component
/// can carry several core modules, each audited).
pub type Crates = BTreeMap<CrateKey, Crate>;

/// auditable-serde's `VersionInfo` (auditable-serde/src/lib.rs:37-74): packages, each naming its
/// dependencies by index.
#[derive(Deserialize)]
struct VersionInfo {
    packages: Vec<Package>,
}

/// auditable-serde's `Package` (lib.rs:79-104); absent `kind`, `dependencies` and `root` are
/// "runtime", empty and false.
#[derive(Deserialize)]
struct Package {
    name: String,
    version: String,
    source: String,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    dependencies: Vec<usize>,
    #[serde(default)]
    root: bool,
}

/// The crates recorded in `wasm` (a core module or a component, nested modules included), or
/// `None` when it carries no `.dep-v0` section. Malformed audit data is an error.
pub fn crates(wasm: &[u8]) -> anyhow::Result<Option<Crates>> {
    let mut found: Option<Crates> = None;
    for payload in wasmparser::Parser::new(0).parse_all(wasm) {
        let payload = payload.context("the wasm cannot be parsed")?;
        if let wasmparser::Payload::CustomSection(reader) = payload {
            if reader.name() == SECTION {
                let section = parse_section(reader.data())?;
                merge(found.get_or_insert_with(Crates::new), section);
            }
        }
    }
    Ok(found)
}

/// One section's compressed JSON as crates.
fn parse_section(compressed: &[u8]) -> anyhow::Result<Crates> {
    let mut json = Vec::new();
    flate2::read::ZlibDecoder::new(compressed)
        .take(MAX_JSON + 1)
        .read_to_end(&mut json)
        .with_context(|| format!("its {SECTION} section is not zlib data"))?;
    if json.len() as u64 > MAX_JSON {
        anyhow::bail!("its {SECTION} section holds more than {MAX_JSON} bytes of audit data");
    }
    let info: VersionInfo = serde_json::from_slice(&json)
        .with_context(|| format!("its {SECTION} section is not cargo-auditable's JSON"))?;
    let keys: Vec<CrateKey> = (info.packages.iter())
        .map(|p| CrateKey {
            name: p.name.clone(),
            version: p.version.clone(),
            source: p.source.clone(),
        })
        .collect();
    let mut crates = Crates::new();
    for (package, key) in info.packages.iter().zip(&keys) {
        let dependencies = (package.dependencies.iter())
            .map(|&i| {
                keys.get(i).cloned().with_context(|| {
                    format!(
                        "its {SECTION} section names dependency {i} of `{}`, past its {} packages",
                        package.name,
                        keys.len()
                    )
                })
            })
            .collect::<anyhow::Result<BTreeSet<_>>>()?;
        let build_only = package.kind.as_deref() == Some("build");
        merge(
            &mut crates,
            Crates::from([(
                key.clone(),
                Crate {
                    build_only,
                    root: package.root,
                    dependencies,
                },
            )]),
        );
    }
    Ok(crates)
}

/// Adds `more` to `into`: a crate listed twice is needed at run time if either says so, a root if
/// either says so, and depends on both lists.
fn merge(into: &mut Crates, more: Crates) {
    for (key, entry) in more {
        match into.get_mut(&key) {
            Some(known) => {
                known.build_only &= entry.build_only;
                known.root |= entry.root;
                known.dependencies.extend(entry.dependencies);
            }
            None => {
                into.insert(key, entry);
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::io::Write;

    /// A section's bytes: `json` compressed as cargo-auditable stores it.
    pub(crate) fn compressed(json: &str) -> Vec<u8> {
        let mut encoder =
            flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(json.as_bytes()).unwrap();
        encoder.finish().unwrap()
    }

    /// An empty core module with a custom section `name` holding `data` (the binary format's
    /// section 0: id, size, name, bytes — WebAssembly core spec 5.5.3).
    pub(crate) fn module_with_section(name: &str, data: &[u8]) -> Vec<u8> {
        let mut wasm = b"\0asm\x01\0\0\0".to_vec();
        let mut payload = leb128(name.len());
        payload.extend_from_slice(name.as_bytes());
        payload.extend_from_slice(data);
        wasm.push(0);
        wasm.extend(leb128(payload.len()));
        wasm.extend(payload);
        wasm
    }

    fn leb128(mut n: usize) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(byte);
                return out;
            }
            out.push(byte | 0x80);
        }
    }

    const AUDIT: &str = r#"{"packages":[
        {"name":"hello","version":"0.1.0","source":"local","dependencies":[1,2],"root":true},
        {"name":"spin-sdk","version":"3.1.0","source":"crates.io","dependencies":[2]},
        {"name":"proc-macro2","version":"1.0.86","source":"crates.io","kind":"build"}
    ]}"#;

    fn key(name: &str, version: &str, source: &str) -> CrateKey {
        CrateKey {
            name: name.into(),
            version: version.into(),
            source: source.into(),
        }
    }

    #[test]
    fn crates_are_read_from_the_section_by_index() {
        let wasm = module_with_section(SECTION, &compressed(AUDIT));
        let crates = crates(&wasm).unwrap().unwrap();
        let hello = &crates[&key("hello", "0.1.0", "local")];
        assert!(hello.root && !hello.build_only);
        assert_eq!(
            hello.dependencies,
            BTreeSet::from([
                key("spin-sdk", "3.1.0", "crates.io"),
                key("proc-macro2", "1.0.86", "crates.io")
            ])
        );
        assert!(crates[&key("proc-macro2", "1.0.86", "crates.io")].build_only);
        assert_eq!(crates.len(), 3);
    }

    #[test]
    fn two_sections_are_one_union() {
        let other = r#"{"packages":[{"name":"adapter","version":"1.0.0","source":"local","root":true,"dependencies":[1]},{"name":"proc-macro2","version":"1.0.86","source":"crates.io"}]}"#;
        let mut wasm = module_with_section(SECTION, &compressed(AUDIT));
        let second = module_with_section(SECTION, &compressed(other));
        wasm.extend_from_slice(&second[8..]);
        let crates = crates(&wasm).unwrap().unwrap();
        assert_eq!(crates.len(), 4);
        // Needed at run time by the second module, so no longer build-only.
        assert!(!crates[&key("proc-macro2", "1.0.86", "crates.io")].build_only);
    }

    #[test]
    fn what_is_not_audit_data_is_told_apart() {
        // No section: no crates, no error.
        let plain = module_with_section("name", b"\0");
        assert_eq!(crates(&plain).unwrap(), None);
        let bomb = compressed(&" ".repeat(MAX_JSON as usize + 10));
        let cases: [(&[u8], &str); 4] = [
            (b"not zlib", "not zlib data"),
            (
                &compressed("{\"packages\":7}"),
                "not cargo-auditable's JSON",
            ),
            (
                &compressed(
                    r#"{"packages":[{"name":"a","version":"1.0.0","source":"local","dependencies":[3]}]}"#,
                ),
                "names dependency 3 of `a`, past its 1 packages",
            ),
            (&bomb, "more than 8388608 bytes"),
        ];
        for (data, expected) in cases {
            let error = crates(&module_with_section(SECTION, data)).unwrap_err();
            assert!(format!("{error:#}").contains(expected), "{error:#}");
        }
        assert!(crates(b"\0asm\x01").is_err());
    }
}
