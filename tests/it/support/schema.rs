//! Every `--output json` object the suite reads is checked against its published JSON Schema
//! (docs/schemas/<version>/<command>.json, named by the object's `schema`), by Python's jsonschema.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

/// Validates with the validator the schema's `$schema` names (Draft 2020-12); exit 3: no jsonschema.
const VALIDATOR: &str = r#"
import json, sys
try:
    import jsonschema
except ImportError:
    sys.exit(3)
schema = json.load(open(sys.argv[1]))
instance = json.load(sys.stdin)
cls = jsonschema.validators.validator_for(schema)
cls.check_schema(schema)
errors = sorted(cls(schema).iter_errors(instance), key=lambda e: list(map(str, e.path)))
for e in errors:
    print("/".join(map(str, e.path)) or "(root)", ":", e.message)
sys.exit(1 if errors else 0)
"#;

/// The schema file an id (`spin-aks/v1/push`) names.
pub fn path_of(id: &str) -> Option<PathBuf> {
    let rest = id.strip_prefix("spin-aks/")?;
    let (version, command) = rest.split_once('/')?;
    Some(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("docs/schemas")
            .join(version)
            .join(format!("{command}.json")),
    )
}

/// Panics unless `report` carries a `schema` id whose published schema it satisfies; records the id
/// in `<target tmp>/validated-schemas` (scripts/test.sh checks that every schema was exercised).
pub fn check(report: &Value) {
    let id = report["schema"]
        .as_str()
        .unwrap_or_else(|| panic!("a JSON report without its `schema` id: {report}"));
    let path =
        path_of(id).unwrap_or_else(|| panic!("`schema` is not spin-aks/<version>/<command>: {id}"));
    assert!(
        path.is_file(),
        "{id} has no published schema: write {} (docs/ci.md, Output a pipeline can read)",
        path.display()
    );
    let Some(python) = super::tool("python3") else {
        return;
    };
    let mut child = Command::new(python)
        .args(["-c", VALIDATOR])
        .arg(&path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run python3");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(report.to_string().as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    match output.status.code() {
        Some(0) => {}
        Some(3) => {
            super::skip(
                "Python's jsonschema is not installed (scripts/install-test-tools.sh installs it)",
            );
            return;
        }
        _ => panic!(
            "the {id} report does not match {}:\n{}{}\nreport: {report}",
            path.display(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    }
    let record = Path::new(env!("CARGO_TARGET_TMPDIR")).join("validated-schemas");
    if let Ok(mut file) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(record)
    {
        let _ = file.write_all(format!("{id}\n").as_bytes());
    }
}
