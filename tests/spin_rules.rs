//! What `spin up` would refuse is refused at build: exit 2, the manifest field named, nothing
//! written. Each case is one field Spin's manifest or trigger loader rejects.

mod support;

use std::path::{Path, PathBuf};

use support::apps::wasm;
use support::spin_aks;

const HEADER: &str =
    "spin_manifest_version = 2\n[application]\nname = \"rules\"\nversion = \"1.0.0\"\n";
const COMPONENT: &str = "[component.api]\nsource = \"app.wasm\"\n";

fn app_with(dir: &Path, manifest: &str) -> PathBuf {
    let app = dir.join("app");
    std::fs::create_dir_all(&app).unwrap();
    std::fs::write(app.join("app.wasm"), wasm(1)).unwrap();
    std::fs::write(app.join("spin.toml"), manifest).unwrap();
    app
}

/// `build` of `manifest` exits 2 with every fragment in stderr, and writes no layout.
fn refused(manifest: &str, expected: &[&str]) {
    let home = tempfile::tempdir().unwrap();
    let app = app_with(home.path(), manifest);
    let output = spin_aks(home.path())
        .args(["build", "--skip-spin-build", "-f"])
        .arg(&app)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{manifest}\n{stderr}");
    for fragment in expected {
        assert!(
            stderr.contains(fragment),
            "stderr lacks `{fragment}`: {stderr}"
        );
    }
    assert!(
        !app.join(".spin-aks").exists(),
        "a refused build wrote a layout"
    );
}

fn accepted(manifest: &str) {
    let home = tempfile::tempdir().unwrap();
    let app = app_with(home.path(), manifest);
    let output = spin_aks(home.path())
        .args(["build", "--skip-spin-build", "-f"])
        .arg(&app)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{manifest}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn http(settings: &str) -> String {
    format!("{HEADER}[[trigger.http]]\n{settings}\ncomponent = \"api\"\n{COMPONENT}")
}

#[test]
fn http_routes_are_parsed_as_spins_router_does() {
    refused(
        &http("route = \"/files/*rest\""),
        &["`trigger.http[0].route`", "replace `*rest` with `*`"],
    );
    refused(
        &http("route = \"/users/:/x\""),
        &["`trigger.http[0].route`", "must be named"],
    );
    refused(
        &http("route = \"/a/*/b\""),
        &["`trigger.http[0].route`", "must end the route"],
    );
    refused(
        &http("route = { private = false }"),
        &["`trigger.http[0].route`", "private = false"],
    );
    refused(
        &http("route = 42"),
        &["`trigger.http[0].route`", "route string"],
    );
    refused(
        &format!("{HEADER}[[trigger.http]]\ncomponent = \"api\"\n{COMPONENT}"),
        &["`trigger.http[0].route`", "missing"],
    );
    accepted(&http("route = \"/users/:id/...\""));
    accepted(&http("route = { private = true }"));
}

#[test]
fn http_settings_and_executors_spin_does_not_know_are_refused() {
    refused(
        &http("route = \"/\"\nroutes = \"/x\""),
        &["`trigger.http[0].routes`", "unknown setting"],
    );
    refused(
        &http("route = \"/\"\nexecutor = { type = \"cgi\" }"),
        &["`trigger.http[0].executor`", "\"cgi\""],
    );
    refused(
        &http("route = \"/\"\nexecutor = { type = \"spin\", argv = \"x\" }"),
        &["`trigger.http[0].executor`", "`argv`"],
    );
    accepted(&http(
        "route = \"/\"\nexecutor = { type = \"wagi\", argv = \"${SCRIPT_NAME}\" }",
    ));
}

#[test]
fn redis_triggers_need_a_channel_and_a_redis_address() {
    let redis = |app: &str, settings: &str| {
        format!("{HEADER}{app}[[trigger.redis]]\n{settings}\ncomponent = \"api\"\n{COMPONENT}")
    };
    refused(
        &redis("", "channel = \"jobs\""),
        &["`trigger.redis[0].address`", "[application.trigger.redis]"],
    );
    refused(
        &redis("", "address = \"redis://r:6379\""),
        &["`trigger.redis[0].channel`", "missing"],
    );
    refused(
        &redis("", "channel = \"jobs\"\naddress = \"http://r\""),
        &["`trigger.redis[0].address`", "not a Redis URL"],
    );
    refused(
        &redis(
            "[application.trigger.redis]\nhost = \"r\"\n",
            "channel = \"jobs\"",
        ),
        &["`application.trigger.redis.host`", "unknown setting"],
    );
    accepted(&redis(
        "[application.trigger.redis]\naddress = \"redis://r:6379\"\n",
        "channel = \"jobs\"",
    ));
    accepted(&format!("{HEADER}[variables]\nredis = {{ default = \"redis://r\" }}\n[[trigger.redis]]\nchannel = \"jobs\"\naddress = \"{{{{ redis }}}}\"\ncomponent = \"api\"\n{COMPONENT}"));
}

#[test]
fn component_fields_are_checked_as_spin_loads_them() {
    let with = |fields: &str| {
        format!("{HEADER}[[trigger.http]]\nroute = \"/\"\ncomponent = \"api\"\n{COMPONENT}{fields}")
    };
    refused(
        &with("allowed_outbound_hosts = [\"example.com\"]"),
        &["`component.api.allowed_outbound_hosts[0]`", "no scheme"],
    );
    refused(
        &with("allowed_outbound_hosts = [\"https://example.com/api\"]"),
        &["allowed_outbound_hosts[0]", "no path"],
    );
    refused(
        &with("allowed_outbound_hosts = [\"mqtt://broker\"]"),
        &["allowed_outbound_hosts[0]", "no default port"],
    );
    refused(
        &with("key_value_stores = [\"My Store\"]"),
        &["`component.api.key_value_stores[0]`", "kebab-case"],
    );
    refused(
        &with("[component.api.variables]\nApiKey = \"x\""),
        &["`component.api.variables.ApiKey`", "lower_snake_case"],
    );
    refused(
        &with("[component.api.variables]\nkey = \"{{ missing }}\""),
        &["`component.api.variables.key`", "`missing`", "[variables]"],
    );
    accepted(&format!("{HEADER}[variables]\nhost = {{ default = \"h\" }}\n[[trigger.http]]\nroute = \"/\"\ncomponent = \"api\"\n{COMPONENT}allowed_outbound_hosts = [\"https://{{{{ host }}}}\", \"redis://r:6379\", \"*://localhost:*\"]\nkey_value_stores = [\"default\", \"user_data\"]\n[component.api.variables]\nkey = \"{{{{ host }}}}\"\n"));
}

#[test]
fn application_trigger_settings_must_be_tables() {
    refused(&format!("{HEADER}trigger.http = \"x\"\n[[trigger.http]]\nroute = \"/\"\ncomponent = \"api\"\n{COMPONENT}"), &["`application.trigger.http`", "must be a table"]);
}
