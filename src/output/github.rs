//! GitHub Actions' side of the output: `::warning file=…,line=…::` workflow commands (escaped as the
//! runner unescapes them) and a Markdown summary of each report appended to `GITHUB_STEP_SUMMARY`.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde_json::Value;

/// `::warning file=<path>,line=<n>::<message>`; the file relative to `GITHUB_WORKSPACE`, as
/// annotations name files of the repository. Printed on stderr (stdout is the JSON report): the
/// runner parses workflow commands on both streams (actions/runner, Handlers/ScriptHandler.cs).
pub fn warning(place: Option<(&Path, usize)>, message: &str) -> String {
    let properties = match place {
        Some((file, line)) => format!(
            " file={},line={line}",
            escape_property(&workspace_relative(file).to_string_lossy())
        ),
        None => String::new(),
    };
    format!("::warning{properties}::{}", escape_data(message))
}

/// `::error::<message>`: the whole message one workflow command, whatever lines it holds.
pub fn error(message: &str) -> String {
    format!("::error::{}", escape_data(message))
}

/// Text printed in a GitHub Actions step with nothing the runner would take for a workflow
/// command: a line that starts with `::` once trimmed (the runner's `TryParseV2`) is shown after a
/// `\`, and `##[` anywhere (the older form, `TryParse`) becomes `#\#[`.
pub fn inert(text: &str) -> String {
    let mut shown = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        if line.trim_start().starts_with("::") {
            shown.push('\\');
        }
        shown.push_str(&line.replace("##[", "#\\#["));
    }
    shown
}

/// A workflow command's message: `%`, CR and LF escaped (the runner turns them back).
fn escape_data(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// A workflow command's property value: also `:` and `,`, which end a property.
fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}

fn workspace_relative(file: &Path) -> PathBuf {
    let absolute = std::env::current_dir()
        .map(|dir| dir.join(file))
        .unwrap_or_else(|_| file.to_path_buf());
    std::env::var_os("GITHUB_WORKSPACE")
        .and_then(|workspace| absolute.strip_prefix(workspace).ok().map(Path::to_path_buf))
        .unwrap_or_else(|| file.to_path_buf())
}

/// Appends the summary of one report to the file `GITHUB_STEP_SUMMARY` names (nothing when unset).
pub fn append_summary(command: &str, summary: &str, report: &Value) -> anyhow::Result<()> {
    let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|p| !p.is_empty()) else {
        return Ok(());
    };
    let markdown = summary_markdown(command, summary, report);
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .with_context(|| {
            format!(
                "cannot open GITHUB_STEP_SUMMARY {}",
                Path::new(&path).display()
            )
        })?;
    file.write_all(markdown.as_bytes())?;
    Ok(())
}

/// A heading, the text summary, and a table of what a pipeline reader looks for — image, digest,
/// cluster, namespace, rollout, endpoint — wherever the report holds them (the first found).
pub fn summary_markdown(command: &str, summary: &str, report: &Value) -> String {
    let mut markdown = format!("### spin-aks {}\n\n", command.replace('-', " "));
    if !summary.trim().is_empty() {
        for line in summary.trim().lines() {
            markdown.push_str(&format!("{}  \n", line.trim_end()));
        }
        markdown.push('\n');
    }
    let text = |key: &str| find(report, key).and_then(scalar);
    let rollout = find(report, "rollout").and_then(|rollout| {
        let (ready, desired) = (rollout.get("ready")?, rollout.get("desired")?);
        let seconds = rollout.get("seconds").and_then(Value::as_f64);
        Some(match seconds {
            Some(seconds) => format!("{ready}/{desired} ready in {seconds:.1} s"),
            None => format!("{ready}/{desired} ready"),
        })
    });
    let status = match (report.get("ready"), report.get("desired")) {
        (Some(ready), Some(desired)) => Some(format!("{ready}/{desired} ready")),
        _ => None,
    };
    let rows = [
        ("Image", text("pinned").or_else(|| text("image"))),
        ("Digest", text("digest")),
        ("Cluster", text("cluster")),
        ("Namespace", text("namespace")),
        ("Rollout", rollout.or(status)),
        ("Endpoint", text("endpoint")),
    ];
    let rows: Vec<String> = rows
        .into_iter()
        .filter_map(|(name, value)| Some(format!("| {name} | `{}` |\n", cell(&value?))))
        .collect();
    if !rows.is_empty() {
        markdown.push_str("| | |\n| --- | --- |\n");
        markdown.extend(rows);
        markdown.push('\n');
    }
    markdown
}

/// The first value under `key`, searching objects depth-first in order.
fn find<'a>(value: &'a Value, key: &str) -> Option<&'a Value> {
    match value {
        Value::Object(object) => object
            .get(key)
            .filter(|found| !found.is_null())
            .or_else(|| object.values().find_map(|child| find(child, key))),
        Value::Array(items) => items.iter().find_map(|item| find(item, key)),
        _ => None,
    }
}

fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(text) if !text.is_empty() => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

/// A table cell's text inside backticks: no `|` (ends the cell) and no backtick.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('`', "'")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn warning_escapes_data_and_properties_as_the_runner_unescapes_them() {
        assert_eq!(
            warning(
                Some((Path::new("app, v2/spin.toml"), 12)),
                "50% done\nnext: x"
            ),
            "::warning file=app%2C v2/spin.toml,line=12::50%25 done%0Anext: x"
        );
        assert_eq!(warning(None, "plain"), "::warning::plain");
    }

    #[test]
    fn summary_lists_image_digest_cluster_rollout_and_endpoint_from_a_nested_report() {
        let report = json!({
            "push": {"pinned": "r.azurecr.io/app@sha256:ab", "digest": "sha256:ab"},
            "apply": {
                "cluster": "aks-prod", "namespace": "apps",
                "rollout": {"ready": 2, "desired": 2, "seconds": 4.25},
                "endpoint": "http://20.1.2.3"
            },
            "endpoint": null
        });
        assert_eq!(
            summary_markdown("up", "app is up at http://20.1.2.3", &report),
            "### spin-aks up\n\napp is up at http://20.1.2.3  \n\n| | |\n| --- | --- |\n\
             | Image | `r.azurecr.io/app@sha256:ab` |\n| Digest | `sha256:ab` |\n\
             | Cluster | `aks-prod` |\n| Namespace | `apps` |\n| Rollout | `2/2 ready in 4.2 s` |\n\
             | Endpoint | `http://20.1.2.3` |\n\n"
        );
    }

    #[test]
    fn status_reports_ready_of_desired_and_a_bare_report_has_no_table() {
        let status = json!({"cluster": "c", "ready": 1, "desired": 3, "endpoint": null});
        let markdown = summary_markdown("status", "", &status);
        assert!(markdown.contains("| Rollout | `1/3 ready` |"), "{markdown}");
        assert!(!markdown.contains("Endpoint"), "{markdown}");
        assert_eq!(
            summary_markdown("cluster-check", "ok", &json!({"checks": []})),
            "### spin-aks cluster check\n\nok  \n\n"
        );
    }

    #[test]
    fn no_line_of_printed_text_is_a_workflow_command() {
        for (text, shown) in [
            ("plain\nlines\n", "plain\nlines\n"),
            ("name\n::add-mask::x\n", "name\n\\::add-mask::x\n"),
            ("  ::error::x", "\\  ::error::x"),
            ("a ##[error]b", "a #\\#[error]b"),
            ("a::b", "a::b"),
        ] {
            assert_eq!(inert(text), shown, "{text:?}");
        }
        assert_eq!(error("bad\n::add-mask::x"), "::error::bad%0A::add-mask::x");
    }
}
