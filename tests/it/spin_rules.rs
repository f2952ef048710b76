//! What `spin up` would refuse is refused at build: exit 2, the manifest field named, nothing
//! written. Each case is one field Spin's manifest or trigger loader rejects.

use std::path::{Path, PathBuf};

use crate::support::apps::wasm;
use crate::support::spin_aks;

const HEADER: &str =
    "spin_manifest_version = 2\n[application]\nname = \"rules\"\nversion = \"1.0.0\"\n";
const COMPONENT: &str = "[component.api]\nsource = \"app.wasm\"\n";

/// An app directory holding `manifest`, `app.wasm`, each of `files` and each `(link, target)`.
fn app_with_files(dir: &Path, manifest: &str, files: &[&str], links: &[(&str, &str)]) -> PathBuf {
    let app = dir.join("app");
    std::fs::create_dir_all(&app).unwrap();
    std::fs::write(app.join("app.wasm"), wasm(1)).unwrap();
    std::fs::write(app.join("spin.toml"), manifest).unwrap();
    for file in files {
        let path = app.join(file);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, file).unwrap();
    }
    for (link, target) in links {
        std::os::unix::fs::symlink(target, app.join(link)).unwrap();
    }
    app
}

/// `spin-aks build` of the app: exit code and stderr; whether a layout was written.
fn build(manifest: &str, files: &[&str], links: &[(&str, &str)]) -> (Option<i32>, String, bool) {
    let home = tempfile::tempdir().unwrap();
    let app = app_with_files(home.path(), manifest, files, links);
    let output = spin_aks(home.path())
        .args(["build", "--skip-spin-build", "-f"])
        .arg(&app)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output.status.code(), stderr, app.join(".spin-aks").exists())
}

/// `build` of `manifest` exits 2 with every fragment in stderr, and writes no layout.
fn refused(manifest: &str, expected: &[&str]) {
    let (code, stderr, layout) = build(manifest, &[], &[]);
    assert_eq!(code, Some(2), "{manifest}\n{stderr}");
    for fragment in expected {
        assert!(
            stderr.contains(fragment),
            "stderr lacks `{fragment}`: {stderr}"
        );
    }
    assert!(!layout, "a refused build wrote a layout");
}

fn accepted(manifest: &str) {
    let (code, stderr, _) = build(manifest, &[], &[]);
    assert_eq!(code, Some(0), "{manifest}\n{stderr}");
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
        &with("allowed_outbound_hosts = [\"tcp://broker\"]"),
        &["allowed_outbound_hosts[0]", "no well-known port"],
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

/// What Spin says of a manifest class, and so what `build` must say.
enum Verdict {
    Accepted,
    /// Exit 2, stderr naming every fragment (the field, and the value or the rule).
    Refused(&'static [&'static str]),
}

/// One class of manifest: our own case, Spin's verdict, and where Spin's source decides it
/// (paths in spinframework/spin at the tag named).
struct Case {
    class: &'static str,
    spin: &'static str,
    manifest: String,
    files: &'static [&'static str],
    links: &'static [(&'static str, &'static str)],
    verdict: Verdict,
}

fn case(class: &'static str, spin: &'static str, manifest: String, verdict: Verdict) -> Case {
    Case {
        class,
        spin,
        manifest,
        files: &[],
        links: &[],
        verdict,
    }
}

/// An app whose one http component `api` has `fields` added.
fn component_with(fields: &str) -> String {
    format!(
        "{HEADER}[[trigger.http]]\nroute = \"/...\"\ncomponent = \"api\"\n{COMPONENT}{fields}\n"
    )
}

/// As [`component_with`], with `[variables]` entries first.
fn with_variables(variables: &str, fields: &str) -> String {
    format!("{HEADER}[variables]\n{variables}\n[[trigger.http]]\nroute = \"/...\"\ncomponent = \"api\"\n{COMPONENT}{fields}\n")
}

fn hosts(list: &str) -> String {
    component_with(&format!("allowed_outbound_hosts = [{list}]"))
}

const V1_IDS: &str = r#"spin_manifest_version = "1"
name = "legacy"
trigger = { type = "http", base = "/" }
[[component]]
id = "snake_case_part"
source = "app.wasm"
trigger = { route = "/a/..." }
[[component]]
id = "mixedCasePart"
source = "app.wasm"
trigger = { route = "/b/..." }
"#;

fn conformance_cases() -> Vec<Case> {
    use Verdict::{Accepted, Refused};
    let not_a_dir = &["`component.api.files[0]`", "names a directory"];
    let bad_host = &["`component.api.allowed_outbound_hosts[0]`"];
    vec![
        // Accepted before, refused by Spin.
        Case {
            files: &["assets/a.txt"],
            ..case("files: a single file placed at `/`", "v3.6.3 crates/loader/src/local.rs:503-519",
                component_with("files = [{ source = \"assets/a.txt\", destination = \"/\" }]"), Refused(not_a_dir))
        },
        Case {
            files: &["assets/a.txt"],
            ..case("files: a single file placed at a path ending in `/`", "v3.6.3 crates/loader/src/local.rs:503-519",
                component_with("files = [{ source = \"assets/a.txt\", destination = \"/data/\" }]"), Refused(not_a_dir))
        },
        Case {
            files: &["assets/a.txt"],
            ..case("files: the pattern `.`", "v3.6.3 crates/loader/src/local.rs:347-349",
                component_with("files = [\".\"]"), Refused(&["`component.api.files[0]`", "ends in `.`"]))
        },
        Case {
            files: &["assets/a.txt"],
            ..case("files: a pattern normalising to the app directory (`assets/..`)", "v3.6.3 crates/loader/src/local.rs:344-346",
                component_with("files = [\"assets/..\"]"), Refused(&["`component.api.files[0]`", "ends in `..`"]))
        },
        case("files: a pattern climbing above the app directory", "v3.6.3 crates/loader/src/local.rs:442-444",
            component_with("files = [\"../outside/*\"]"), Refused(&["`component.api.files[0]`", "outside the app directory"])),
        Case {
            files: &["assets/a.txt"],
            ..case("files: a destination climbing above `/` (never mounted outside)", "v3.6.3 crates/loader/src/local.rs:330 (joins it under the copy root)",
                component_with("files = [{ source = \"assets\", destination = \"/../../etc\" }]"),
                Refused(&["`component.api.files[0].destination`", "`/../../etc`", "climbs above"]))
        },
        case("files: a literal path that does not exist", "v3.6.3 crates/loader/src/local.rs:370-376",
            component_with("files = [\"missing.txt\"]"), Refused(&["`component.api.files[0]`", "`missing.txt` does not exist"])),
        case("files: a placement source that does not exist", "v3.6.3 crates/loader/src/local.rs:389-391,543-547",
            component_with("files = [{ source = \"absent\", destination = \"/x\" }]"), Refused(&["`component.api.files[0]`", "`absent` does not exist"])),
        case("an app with no triggers", "v3.6.3 src/commands/up.rs:222",
            format!("{HEADER}{COMPONENT}"), Refused(&["`trigger`", "no triggers"])),
        case("[application.trigger.http] with a base other than `/`", "v3.6.3 crates/trigger-http/src/lib.rs:355-363",
            format!("{HEADER}[application.trigger.http]\nbase = \"/api\"\n[[trigger.http]]\nroute = \"/\"\ncomponent = \"api\"\n{COMPONENT}"),
            Refused(&["`application.trigger.http.base`", "\"/api\"", "prepend"])),
        case("[application.trigger.http] with any other key", "v3.6.3 crates/trigger-http/src/lib.rs:350-354 (deny_unknown_fields)",
            format!("{HEADER}[application.trigger.http]\nlisten = \"0.0.0.0:80\"\n[[trigger.http]]\nroute = \"/\"\ncomponent = \"api\"\n{COMPONENT}"),
            Refused(&["`application.trigger.http.listen`", "unknown setting"])),
        case("an http trigger with both `component` and `static_response`", "v3.6.3 crates/http/src/config.rs:23",
            format!("{HEADER}[[trigger.http]]\nroute = \"/\"\ncomponent = \"api\"\nstatic_response = {{ body = \"hi\" }}\n{COMPONENT}"),
            Refused(&["`trigger.http[0]`", "both `component` and `static_response`"])),
        case("host: a wildcard inside a label", "v3.6.3 crates/outbound-networking-config/src/allowed_hosts.rs:278-280",
            hosts("\"https://api*.example.test\""), Refused(bad_host)),
        case("host: a wildcard after the first label", "v3.6.3 crates/outbound-networking-config/src/allowed_hosts.rs:271-274",
            hosts("\"https://*.*.example.test\""), Refused(bad_host)),
        case("host: `*.` with no domain after it", "main 94a8fc8a crates/outbound-networking-config/src/allowed_hosts.rs:285-293 (v3.6.3 matched nothing with it)",
            hosts("\"https://*.\""), Refused(&["`component.api.allowed_outbound_hosts[0]`", "followed by a domain"])),
        case("host: an unclosed IPv6 bracket", "v3.6.3 allowed_hosts.rs:125,286-288 (url::Host::parse)",
            hosts("\"http://[fe80::1:8080\""), Refused(bad_host)),
        case("host: an IPv6 address without a port", "v3.6.3 allowed_hosts.rs:125,888",
            hosts("\"http://[fe80::1]\""), Refused(bad_host)),
        case("host: a `%` escape that decodes to nothing valid", "v3.6.3 allowed_hosts.rs:286-288 (url::Host::parse)",
            hosts("\"https://exa%zzmple.test\""), Refused(bad_host)),
        case("host: two ports", "v3.6.3 allowed_hosts.rs:125,286-288",
            hosts("\"https://example.test:80:443\""), Refused(bad_host)),
        case("host: a backslash in the host", "v3.6.3 allowed_hosts.rs:286-288 (url::Host::parse)",
            hosts("'https://exa\\mple.test'"), Refused(bad_host)),
        case("host: `*://` without a port (no well-known port)", "v3.6.3 allowed_hosts.rs:339-343,407-416",
            hosts("\"*://example.test\""), Refused(&["`component.api.allowed_outbound_hosts[0]`", "no well-known port"])),
        case("host: `insecure:allow-all` in allowed_outbound_hosts", "v3.6.3 allowed_hosts.rs:490-492",
            hosts("\"insecure:allow-all\""), Refused(&["`component.api.allowed_outbound_hosts[0]`", "*://*:*"])),
        case("host: a variable's default making the template invalid", "v3.6.3 allowed_hosts.rs:440-452",
            with_variables("api_host = { default = \"not a host\" }", "allowed_outbound_hosts = [\"https://{{ api_host }}\"]"),
            Refused(&["`component.api.allowed_outbound_hosts[0]`", "default", "https://not a host"])),
        // Refused before, accepted by Spin.
        case("v1 component ids in snake_case and mixedCase", "v3.6.3 crates/manifest/src/compat.rs:139-151",
            V1_IDS.to_string(), Accepted),
        case("an http trigger with only `static_response`", "v3.6.3 crates/http/src/config.rs:25",
            format!("{HEADER}[[trigger.http]]\nroute = \"/health\"\nstatic_response = {{ status_code = 204, headers = {{ x-a = \"b\" }} }}\n[[trigger.http]]\nroute = \"/...\"\ncomponent = \"api\"\n{COMPONENT}"),
            Accepted),
        case("host: CIDR blocks (IPv4 and IPv6)", "v3.6.3 allowed_hosts.rs:262-264,892-914",
            hosts("\"http://10.0.0.0/8\", \"*://127.0.0.0/24:80\", \"*://fd00::/8:*\""), Accepted),
        case("host: a well-known port for mqtt", "v3.6.3 allowed_hosts.rs:412",
            hosts("\"mqtt://broker.test\""), Accepted),
        case("the deprecated `allowed_http_hosts` in a v2 component", "v3.6.3 crates/manifest/src/schema/v2.rs:349,626-640",
            component_with("allowed_http_hosts = [\"example.test\", \"self\"]"), Accepted),
        case("Spin 4 `[component.x.profile.<name>]`", "v4.0.2 crates/manifest/src/schema/v2.rs:555,561-575",
            component_with("[component.api.profile.debug]\nsource = \"debug.wasm\"\nenvironment = { LOG = \"debug\" }\n[component.api.profile.debug.build]\ncommand = \"make debug\""),
            Accepted),
        case("component `targets`", "v3.6.3 crates/manifest/src/schema/v2.rs:407",
            component_with("targets = [\"spin-up:3.2\"]"), Accepted),
        case("[application.trigger.http] base = \"/\" (a warning in Spin)", "v3.6.3 crates/trigger-http/src/lib.rs:356-359",
            format!("{HEADER}[application.trigger.http]\nbase = \"/\"\n[[trigger.http]]\nroute = \"/\"\ncomponent = \"api\"\n{COMPONENT}"),
            Accepted),
        case("an UPPERCASE kebab-case component id", "v3.6.3 crates/serde/src/lib.rs:15, crates/serde/src/id.rs:35-70",
            format!("{HEADER}[[trigger.http]]\nroute = \"/\"\ncomponent = \"API-V2\"\n[component.API-V2]\nsource = \"app.wasm\"\n"), Accepted),
        Case {
            files: &["assets/a.txt"],
            ..case(
                "files: a relative destination (placed under `/`)",
                "v3.6.3 crates/loader/src/local.rs:330",
                component_with("files = [{ source = \"assets\", destination = \"data\" }]"),
                Accepted,
            )
        },
        Case {
            files: &["assets/a.txt"],
            links: &[("usr", "/usr"), ("loop", ".")],
            ..case("an unreferenced link out of the app (walk only what mounts use)", "v3.6.3 crates/loader/src/local.rs:358-376 (reads only the mounts' paths)",
                component_with("files = [\"assets/*\", { source = \"assets/a.txt\", destination = \"/etc/a.txt\" }]"), Accepted)
        },
    ]
}

#[test]
fn every_manifest_class_gets_spins_verdict() {
    let mut wrong = Vec::new();
    for case in conformance_cases() {
        let (code, stderr, layout) = build(&case.manifest, case.files, case.links);
        let agrees = match case.verdict {
            Verdict::Accepted => code == Some(0) && layout,
            Verdict::Refused(fragments) => {
                code == Some(2) && !layout && fragments.iter().all(|f| stderr.contains(f))
            }
        };
        if !agrees {
            wrong.push(format!(
                "{} (Spin: {}): exit {code:?}\n{}\n{stderr}",
                case.class, case.spin, case.manifest
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n---\n"));
}
