//! `spin-aks push` through the real binary against a real registry (Debian's docker-registry),
//! checked with skopeo: digests, byte-identical pulls, incremental re-pushes, mounts, auth, faults.

use crate::support;

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::support::fault_proxy::{Fault, FaultProxy};
use crate::support::registry::{self, Registry};
use crate::support::{
    layout, skopeo_copy_to_layout, skopeo_finds, skopeo_raw_manifest, spin_aks_isolated,
};
use base64::Engine;
use serde_json::Value;
use sha2::Digest as _;

/// Small blobs of varied sizes: realistic for Spin files, quick to push.
const SIZES: &[usize] = &[64, 700, 4096, 33_000, 150_000];

struct Fixture {
    home: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Option<Self> {
        support::tool("skopeo")?;
        Some(Fixture {
            home: tempfile::tempdir().unwrap(),
        })
    }

    fn path(&self) -> &Path {
        self.home.path()
    }

    fn layout(&self, name: &str, layers: usize) -> std::path::PathBuf {
        let dir = self.path().join(name);
        layout::generate(&dir, "1.0.0", layers, SIZES);
        dir
    }

    /// Runs `push --output json` with `args`; returns (exit code, parsed stdout, stderr).
    fn push(&self, args: &[&str]) -> (i32, Value, String) {
        let output = spin_aks_isolated(self.path())
            .arg("push")
            .args(args)
            .args(["--output", "json"])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        let json = if output.status.success() {
            crate::support::json_report(&stdout)
        } else {
            assert_eq!(stdout, "", "nothing on stdout when failing");
            Value::Null
        };
        (output.status.code().unwrap_or(-1), json, stderr)
    }

    fn push_ok(&self, args: &[&str]) -> Value {
        let (code, json, stderr) = self.push(args);
        assert_eq!(code, 0, "push failed: {stderr}");
        json
    }
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

#[test]
fn pushing_a_layout_reports_the_digest_skopeo_sees_and_pulls_back_identical_bytes() {
    let (Some(fx), Some(registry)) = (Fixture::new(), Registry::open()) else {
        return;
    };
    let dir = fx.layout("layout", 120);
    let reference = format!("{}/apps/hello", registry.host());
    let json = fx.push_ok(&[&reference, "--from-layout", dir.to_str().unwrap()]);

    let keys: Vec<&str> = json
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "blobs_mounted",
            "blobs_skipped",
            "blobs_uploaded",
            "bytes_uploaded",
            "digest",
            "pinned",
            "reference",
            "retries",
            "schema"
        ]
    );
    assert_eq!(
        json["reference"],
        format!("{reference}:1.0.0"),
        "tag from the layout"
    );
    assert_eq!(json["blobs_uploaded"], 121);
    assert_eq!(json["blobs_skipped"], 0);
    assert_eq!(json["retries"], 0, "nothing failed");
    let digest = json["digest"].as_str().unwrap();
    assert_eq!(json["pinned"], format!("{reference}@{digest}"));
    let expected_bytes: u64 = layout::blobs(&dir)
        .iter()
        .filter(|(hex, _)| format!("sha256:{hex}") != digest)
        .map(|(_, b)| b.len() as u64)
        .sum();
    assert_eq!(json["bytes_uploaded"], expected_bytes);

    let raw = skopeo_raw_manifest(&format!("{reference}:1.0.0"), None);
    assert_eq!(sha256(&raw), digest);
    assert_eq!(
        raw,
        std::fs::read(dir.join("blobs/sha256").join(&digest[7..])).unwrap()
    );

    let pulled = fx.path().join("pulled");
    skopeo_copy_to_layout(&format!("{reference}:1.0.0"), &pulled);
    let ours = layout::blobs(&dir);
    let theirs = layout::blobs(&pulled);
    assert_eq!(ours.len(), theirs.len());
    assert!(ours == theirs, "pulled blobs differ from the pushed layout");
}

#[test]
fn re_pushing_an_unchanged_layout_uploads_nothing_and_skips_the_manifest() {
    let (Some(fx), Some(registry)) = (Fixture::new(), Registry::open()) else {
        return;
    };
    let dir = fx.layout("layout", 20);
    let reference = format!("{}/apps/again:v1", registry.host());
    let first = fx.push_ok(&[&reference, "--from-layout", dir.to_str().unwrap()]);
    let (code, second, stderr) = fx.push(&[&reference, "--from-layout", dir.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(second["digest"], first["digest"]);
    assert_eq!(second["blobs_uploaded"], 0);
    assert_eq!(second["blobs_skipped"], 21);
    assert_eq!(second["bytes_uploaded"], 0);
    assert!(stderr.contains("manifest already there"), "{stderr}");
}

/// Requests (method and path) a proxy saw, recorded by its policy.
type Seen = Arc<std::sync::Mutex<Vec<(String, String)>>>;

fn recording_proxy(registry: &Registry) -> (FaultProxy, Seen) {
    let seen: Seen = Arc::default();
    let log = seen.clone();
    let proxy = FaultProxy::start(
        registry.port(),
        Box::new(move |_, method, path| {
            log.lock()
                .unwrap()
                .push((method.to_string(), path.to_string()));
            Fault::Pass
        }),
    );
    (proxy, seen)
}

#[test]
fn a_warm_push_is_one_manifest_head_and_a_deleted_blob_is_uploaded_again() {
    let (Some(fx), Some(registry)) = (Fixture::new(), Registry::open()) else {
        return;
    };
    let (proxy, seen) = recording_proxy(&registry);
    let dir = fx.layout("layout", 30);
    let layout_arg = dir.to_str().unwrap();
    let reference = format!("{}/warm/app:1", proxy.host());
    let first = fx.push_ok(&[&reference, "--from-layout", layout_arg]);
    assert_eq!(first["blobs_uploaded"], 31);
    let cold = std::mem::take(&mut *seen.lock().unwrap());
    assert_eq!(cold[0], ("HEAD".into(), "/v2/warm/app/manifests/1".into()));
    assert!(
        !cold.iter().any(|(_, path)| path == "/v2/"),
        "no ping first"
    );

    // Unchanged: the manifest under the tag is ours, so nothing else is asked.
    let manifest_head = vec![("HEAD".to_string(), "/v2/warm/app/manifests/1".to_string())];
    let warm = fx.push_ok(&[&reference, "--from-layout", layout_arg]);
    assert_eq!(*seen.lock().unwrap(), manifest_head);
    assert_eq!(proxy.requests(), cold.len() + 1);
    assert_eq!(
        (
            &warm["blobs_skipped"],
            &warm["blobs_uploaded"],
            &warm["digest"]
        ),
        (&31.into(), &0.into(), &first["digest"])
    );

    // A blob and the manifest deleted: the next push checks every blob and uploads that one.
    let digest = first["digest"].as_str().unwrap();
    let gone = layout::blobs(&dir)
        .into_keys()
        .map(|hex| format!("sha256:{hex}"))
        .find(|blob| blob != digest)
        .unwrap();
    let host = registry.host();
    let blob_path = format!("/v2/warm/app/blobs/{gone}");
    assert_eq!(registry::request(&host, "DELETE", &blob_path), 202);
    let manifest_path = format!("/v2/warm/app/manifests/{digest}");
    assert_eq!(registry::request(&host, "DELETE", &manifest_path), 202);
    assert_eq!(registry::request(&host, "HEAD", &blob_path), 404);
    seen.lock().unwrap().clear();
    let repaired = fx.push_ok(&[&reference, "--from-layout", layout_arg]);
    assert_eq!(
        (&repaired["blobs_uploaded"], &repaired["blobs_skipped"]),
        (&1.into(), &30.into())
    );
    let heads = seen
        .lock()
        .unwrap()
        .iter()
        .filter(|(method, path)| method == "HEAD" && path.contains("/blobs/"))
        .count();
    assert_eq!(heads, 31, "every blob checked once");
    assert_eq!(registry::request(&host, "HEAD", &blob_path), 200);
    let direct = format!("{host}/warm/app:1");
    assert_eq!(sha256(&skopeo_raw_manifest(&direct, None)), digest);

    seen.lock().unwrap().clear();
    fx.push_ok(&[&reference, "--from-layout", layout_arg]);
    assert_eq!(*seen.lock().unwrap(), manifest_head, "warm again");
}

#[test]
fn pushing_the_app_to_a_second_repository_mounts_its_blobs() {
    let (Some(fx), Some(registry)) = (Fixture::new(), Registry::open()) else {
        return;
    };
    let dir = fx.layout("layout", 30);
    let layout_arg = dir.to_str().unwrap();
    fx.push_ok(&[
        &format!("{}/team-a/app", registry.host()),
        "--from-layout",
        layout_arg,
    ]);
    let second = format!("{}/team-b/app", registry.host());
    let json = fx.push_ok(&[&second, "--from-layout", layout_arg]);
    assert_eq!(json["blobs_mounted"], 31);
    assert_eq!(json["blobs_uploaded"], 0);
    let raw = skopeo_raw_manifest(&format!("{second}:1.0.0"), None);
    assert_eq!(sha256(&raw), json["digest"].as_str().unwrap());
}

#[test]
fn pushing_an_exported_archive_over_plain_http_gives_the_same_digest() {
    let (Some(fx), Some(registry)) = (Fixture::new(), Registry::open()) else {
        return;
    };
    let dir = fx.layout("layout", 10);
    let archive = fx.path().join("app.oci.tar");
    spin_aks::oci::archive::pack(&spin_aks::oci::Layout::open(&dir).unwrap(), &archive, 0).unwrap();
    let reference = format!("{}/airgap/app:2.0.0", registry.host());
    let json = fx.push_ok(&[
        &reference,
        "--from-archive",
        archive.to_str().unwrap(),
        "--plain-http",
    ]);
    assert_eq!(json["blobs_uploaded"], 11);
    let raw = skopeo_raw_manifest(&reference, None);
    assert_eq!(sha256(&raw), json["digest"].as_str().unwrap());
}

#[test]
fn without_a_reference_push_uses_the_apps_last_one_and_under_yes_with_none_exits_2() {
    let (Some(fx), Some(registry)) = (Fixture::new(), Registry::open()) else {
        return;
    };
    let dir = fx.layout("layout", 3);
    let layout_arg = dir.to_str().unwrap();
    let (code, _, stderr) = fx.push(&["-y", "--from-layout", layout_arg]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("no image reference given"), "{stderr}");

    let reference = format!("{}/remembered/app:7", registry.host());
    fx.push_ok(&[&reference, "--from-layout", layout_arg]);
    let json = fx.push_ok(&["-y", "--from-layout", layout_arg]);
    assert_eq!(json["reference"], reference);
    let state = std::fs::read_to_string(fx.path().join("state")).unwrap();
    assert!(state.contains(&reference), "{state}");
}

#[test]
fn invalid_references_exit_2_naming_the_reference() {
    let Some(fx) = Fixture::new() else { return };
    let dir = fx.layout("layout", 1);
    let (code, _, stderr) = fx.push(&["Not/A/Reference", "--from-layout", dir.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("`Not/A/Reference` is not an image reference"),
        "{stderr}"
    );
}

fn write_docker_config(home: &Path, json: &str) {
    std::fs::create_dir_all(home.join("docker")).unwrap();
    std::fs::write(home.join("docker/config.json"), json).unwrap();
}

#[test]
fn htpasswd_registry_accepts_credentials_from_the_docker_config() {
    let (Some(fx), Some(registry)) = (Fixture::new(), Registry::htpasswd("alice", "pa55-word"))
    else {
        return;
    };
    let auth = base64::engine::general_purpose::STANDARD.encode("alice:pa55-word");
    write_docker_config(
        fx.path(),
        &format!(
            r#"{{"auths":{{"{}":{{"auth":"{auth}"}}}}}}"#,
            registry.host()
        ),
    );
    let dir = fx.layout("layout", 5);
    let reference = format!("{}/private/app:1", registry.host());
    let json = fx.push_ok(&[&reference, "--from-layout", dir.to_str().unwrap()]);
    let raw = skopeo_raw_manifest(&reference, Some("alice:pa55-word"));
    assert_eq!(sha256(&raw), json["digest"].as_str().unwrap());
}

#[test]
fn htpasswd_registry_accepts_credentials_from_a_credential_helper_on_path() {
    let (Some(fx), Some(registry)) = (Fixture::new(), Registry::htpasswd("bob", "helper-secret"))
    else {
        return;
    };
    let bin = fx.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let helper = bin.join("docker-credential-test");
    std::fs::write(
        &helper,
        format!(
            "#!/bin/sh\n[ \"$1\" = get ] || exit 1\nread server\n[ \"$server\" = \"{}\" ] || {{ echo 'credentials not found in native keychain'; exit 1; }}\necho '{{\"ServerURL\":\"'$server'\",\"Username\":\"bob\",\"Secret\":\"helper-secret\"}}'\n",
            registry.host()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&helper, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    write_docker_config(
        fx.path(),
        &format!(r#"{{"credHelpers":{{"{}":"test"}}}}"#, registry.host()),
    );
    let dir = fx.layout("layout", 5);
    let reference = format!("{}/private/helped:1", registry.host());
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let output = spin_aks_isolated(fx.path())
        .env("PATH", path)
        .args(["push", &reference, "--from-layout", dir.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(skopeo_raw_manifest(&reference, Some("bob:helper-secret")).len() > 10);
}

#[test]
fn wrong_password_fails_with_exit_1_saying_authentication_failed_without_the_secret() {
    let (Some(fx), Some(registry)) = (Fixture::new(), Registry::htpasswd("carol", "right-one"))
    else {
        return;
    };
    let wrong = "Wr0ng-Pa55word-XYZ";
    write_docker_config(
        fx.path(),
        &format!(
            r#"{{"auths":{{"{}":{{"username":"carol","password":"{wrong}"}}}}}}"#,
            registry.host()
        ),
    );
    let dir = fx.layout("layout", 2);
    let reference = format!("{}/private/denied:1", registry.host());
    for verbosity in [None, Some("-vv")] {
        let mut cmd = spin_aks_isolated(fx.path());
        cmd.args(["push", &reference, "--from-layout", dir.to_str().unwrap()]);
        if let Some(v) = verbosity {
            cmd.arg(v);
        }
        let output = cmd.output().unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains(&format!("authentication to {} failed", registry.host())),
            "{stderr}"
        );
        let encoded = base64::engine::general_purpose::STANDARD.encode(format!("carol:{wrong}"));
        for secret in [wrong, encoded.as_str()] {
            assert!(
                !stdout.contains(secret) && !stderr.contains(secret),
                "secret leaked: {stderr}"
            );
        }
    }
    assert!(!skopeo_finds_with_creds(&reference, "carol:right-one"));
}

fn skopeo_finds_with_creds(reference: &str, creds: &str) -> bool {
    std::process::Command::new("skopeo")
        .args([
            "--insecure-policy",
            "inspect",
            "--raw",
            "--tls-verify=false",
            "--creds",
            creds,
        ])
        .arg(format!("docker://{reference}"))
        .output()
        .unwrap()
        .status
        .success()
}

#[test]
fn push_through_resets_and_503s_completes_with_the_right_digest() {
    let (Some(fx), Some(registry)) = (Fixture::new(), Registry::open()) else {
        return;
    };
    // Every third of the first 45 requests fails: 503, reset, reset mid-body in turn.
    let proxy = FaultProxy::start(
        registry.port(),
        Box::new(|n, _, _| match n {
            n if n < 45 && n.is_multiple_of(3) => {
                [Fault::Unavailable, Fault::Reset, Fault::ResetMidBody][(n / 3) % 3]
            }
            _ => Fault::Pass,
        }),
    );
    let dir = fx.layout("layout", 40);
    let json = fx.push_ok(&[
        &format!("{}/flaky/app:1", proxy.host()),
        "--from-layout",
        dir.to_str().unwrap(),
    ]);
    assert!(proxy.requests() > 45);
    assert_eq!(json["blobs_uploaded"], 41);
    let raw = skopeo_raw_manifest(&format!("{}/flaky/app:1", registry.host()), None);
    assert_eq!(sha256(&raw), json["digest"].as_str().unwrap());
}

fn is_blob_upload(method: &str, path: &str) -> bool {
    method == "PUT" && path.contains("/blobs/uploads/")
}

#[test]
fn a_registry_that_keeps_failing_uploads_gives_exit_1_and_no_tag() {
    let (Some(fx), Some(registry)) = (Fixture::new(), Registry::open()) else {
        return;
    };
    let proxy = FaultProxy::start(
        registry.port(),
        Box::new(|_, method, path| {
            if is_blob_upload(method, path) {
                Fault::Unavailable
            } else {
                Fault::Pass
            }
        }),
    );
    let dir = fx.layout("layout", 4);
    let (code, _, stderr) = fx.push(&[
        &format!("{}/broken/app:1", proxy.host()),
        "--from-layout",
        dir.to_str().unwrap(),
        "--retry-budget",
        "3s",
    ]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("503 Service Unavailable"), "{stderr}");
    assert!(stderr.contains("gave up after"), "{stderr}");
    assert!(!skopeo_finds(&format!("{}/broken/app:1", registry.host())));
}

#[test]
fn an_interrupted_push_completes_when_run_again_without_re_uploading() {
    let (Some(fx), Some(registry)) = (Fixture::new(), Registry::open()) else {
        return;
    };
    // The first run gets 10 blob uploads through, then the registry "dies".
    let uploads = Arc::new(AtomicUsize::new(0));
    let seen = uploads.clone();
    let proxy = FaultProxy::start(
        registry.port(),
        Box::new(move |_, method, path| {
            if is_blob_upload(method, path) && seen.fetch_add(1, Ordering::SeqCst) >= 10 {
                Fault::Reset
            } else {
                Fault::Pass
            }
        }),
    );
    let dir = fx.layout("layout", 30);
    let layout_arg = dir.to_str().unwrap();
    let (code, _, stderr) = fx.push(&[
        &format!("{}/resume/app:1", proxy.host()),
        "--from-layout",
        layout_arg,
        "--retry-budget",
        "2s",
    ]);
    assert_eq!(code, 1, "{stderr}");
    drop(proxy);

    let reference = format!("{}/resume/app:1", registry.host());
    let json = fx.push_ok(&[&reference, "--from-layout", layout_arg]);
    assert!(json["blobs_skipped"].as_u64().unwrap() >= 10, "{json}");
    assert_eq!(
        json["blobs_skipped"].as_u64().unwrap() + json["blobs_uploaded"].as_u64().unwrap(),
        31
    );
    let raw = skopeo_raw_manifest(&reference, None);
    assert_eq!(sha256(&raw), json["digest"].as_str().unwrap());
}

#[test]
fn tls_registry_is_verified_and_trusted_with_ca_file() {
    let Some(fx) = Fixture::new() else { return };
    let pki_dir = fx.path().join("pki");
    std::fs::create_dir_all(&pki_dir).unwrap();
    let Some(pki) = support::tls::generate(&pki_dir) else {
        return;
    };
    let config = support::registry::RegistryConfig::open().tls(&pki.certificate, &pki.key);
    let Some(registry) = Registry::start(config) else {
        return;
    };
    let dir = fx.layout("layout", 3);
    let reference = format!("{}/secure/app:1", registry.host());

    let (code, _, stderr) = fx.push(&[&reference, "--from-layout", dir.to_str().unwrap()]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("certificate") && stderr.contains("--ca-file"),
        "{stderr}"
    );

    let ca_file = pki_dir.join("ca.pem");
    let json = fx.push_ok(&[
        &reference,
        "--from-layout",
        dir.to_str().unwrap(),
        "--ca-file",
        ca_file.to_str().unwrap(),
    ]);
    assert_eq!(
        sha256(&skopeo_raw_manifest(&reference, None)),
        json["digest"].as_str().unwrap()
    );
}

#[test]
fn pushing_the_example_app_builds_it_and_skopeo_pulls_it_back_identical() {
    let (Some(fx), Some(registry)) = (Fixture::new(), Registry::open()) else {
        return;
    };
    let app = support::apps::example_copy(fx.path());
    let reference = format!("{}/examples/hello-aks", registry.host());
    let app_arg = app.to_str().unwrap();
    let json = fx.push_ok(&["-f", app_arg, &reference, "--skip-spin-build"]);
    assert_eq!(
        json["reference"],
        format!("{reference}:0.1.0"),
        "tag = app version"
    );
    let built = app.join(".spin-aks/oci");
    assert_eq!(json["digest"], support::layout_digest(&built));
    let raw = skopeo_raw_manifest(&format!("{reference}:0.1.0"), None);
    assert_eq!(sha256(&raw), json["digest"].as_str().unwrap());
    let pulled = fx.path().join("pulled");
    skopeo_copy_to_layout(&format!("{reference}:0.1.0"), &pulled);
    for (hex, bytes) in layout::blobs(&pulled) {
        assert_eq!(
            std::fs::read(built.join("blobs/sha256").join(&hex)).unwrap(),
            bytes,
            "blob {hex}"
        );
    }

    // The app remembers where it went: a bare re-push goes there and uploads nothing.
    let again = fx.push_ok(&["-f", app_arg, "-y", "--skip-spin-build"]);
    assert_eq!(again["reference"], json["reference"]);
    assert_eq!(again["blobs_uploaded"], 0);

    // Scaffold then defaults to the image this app was pushed as.
    let scaffolded = spin_aks_isolated(fx.path())
        .args(["scaffold", "-y", "-f", app_arg])
        .output()
        .unwrap();
    assert!(
        scaffolded.status.success(),
        "{}",
        String::from_utf8_lossy(&scaffolded.stderr)
    );
    let yaml = std::fs::read_to_string(app.join("deploy/hello-aks.yaml")).unwrap();
    assert!(
        yaml.contains(&format!("image: {reference}:0.1.0")),
        "{yaml}"
    );
}

#[test]
fn a_generated_app_of_120_files_pushes_and_pushes_again_incrementally() {
    let (Some(fx), Some(registry)) = (Fixture::new(), Registry::open()) else {
        return;
    };
    let app = support::apps::generated_app(fx.path(), 120, 3000);
    let reference = format!("{}/generated/app", registry.host());
    let app_arg = app.to_str().unwrap();
    let first = fx.push_ok(&["-f", app_arg, &reference, "--skip-spin-build"]);
    assert!(first["blobs_uploaded"].as_u64().unwrap() > 50, "{first}");
    let raw = skopeo_raw_manifest(&format!("{reference}:1.0.0"), None);
    assert_eq!(sha256(&raw), first["digest"].as_str().unwrap());

    // One changed file: one new layer (plus config), everything else is already there.
    std::fs::write(app.join("static/file-0002.dat"), b"changed").unwrap();
    let second = fx.push_ok(&["-f", app_arg, &reference, "--skip-spin-build"]);
    assert_ne!(second["digest"], first["digest"]);
    assert!(second["blobs_uploaded"].as_u64().unwrap() <= 3, "{second}");
    assert!(second["blobs_skipped"].as_u64().unwrap() > 50, "{second}");
}

#[test]
fn a_401_in_the_middle_of_a_push_is_answered_and_the_upload_sent_again() {
    let (Some(fx), Some(registry)) = (Fixture::new(), Registry::htpasswd("dave", "d4ve-pw")) else {
        return;
    };
    // Every third blob upload is refused with a fresh challenge, as when a token expires; one
    // upload at a time, so the refused upload's second try is never refused as well.
    let uploads = Arc::new(AtomicUsize::new(0));
    let seen = uploads.clone();
    let proxy = FaultProxy::start(
        registry.port(),
        Box::new(move |_, method, path| {
            if is_blob_upload(method, path) && seen.fetch_add(1, Ordering::SeqCst).is_multiple_of(3)
            {
                Fault::Unauthorized
            } else {
                Fault::Pass
            }
        }),
    );
    write_docker_config(
        fx.path(),
        &format!(
            r#"{{"auths":{{"{}":{{"username":"dave","password":"d4ve-pw"}}}}}}"#,
            proxy.host()
        ),
    );
    let dir = fx.layout("layout", 12);
    let json = fx.push_ok(&[
        &format!("{}/private/refreshed:1", proxy.host()),
        "--from-layout",
        dir.to_str().unwrap(),
        "--jobs",
        "1",
    ]);
    assert_eq!(json["blobs_uploaded"], 13);
    assert!(
        uploads.load(Ordering::SeqCst) > 13,
        "some uploads were refused and sent again"
    );
    let raw = skopeo_raw_manifest(
        &format!("{}/private/refreshed:1", registry.host()),
        Some("dave:d4ve-pw"),
    );
    assert_eq!(sha256(&raw), json["digest"].as_str().unwrap());
}

#[test]
fn an_upload_session_the_registry_forgot_is_opened_again() {
    let (Some(fx), Some(registry)) = (Fixture::new(), Registry::open()) else {
        return;
    };
    // Every other blob upload's session is "unknown" to the registry.
    let uploads = Arc::new(AtomicUsize::new(0));
    let seen = uploads.clone();
    let proxy = FaultProxy::start(
        registry.port(),
        Box::new(move |_, method, path| {
            if is_blob_upload(method, path) && seen.fetch_add(1, Ordering::SeqCst).is_multiple_of(2)
            {
                Fault::UploadUnknown
            } else {
                Fault::Pass
            }
        }),
    );
    let dir = fx.layout("layout", 6);
    let reference = format!("{}/forgetful/app:1", proxy.host());
    let json = fx.push_ok(&[
        &reference,
        "--from-layout",
        dir.to_str().unwrap(),
        "--jobs",
        "1",
    ]);
    assert_eq!(json["blobs_uploaded"], 7);
    assert_eq!(uploads.load(Ordering::SeqCst), 14);
    let raw = skopeo_raw_manifest(&format!("{}/forgetful/app:1", registry.host()), None);
    assert_eq!(sha256(&raw), json["digest"].as_str().unwrap());
}

/// A registry out of room refuses a blob for good (507, or a quota named in a refusal, as a
/// registry with a storage quota answers): the push stops at once saying so and what to do, and
/// a re-run once there is room sends only what the first did not.
#[test]
fn a_registry_out_of_storage_stops_the_push_and_a_re_run_sends_only_the_rest() {
    let (Some(fx), Some(registry)) = (Fixture::new(), Registry::open()) else {
        return;
    };
    let rows: [(&str, u16, &'static str); 2] = [
        ("full", 507, ""),
        (
            "quota",
            403,
            r#"{"errors":[{"code":"DENIED","message":"storage quota exceeded for this registry"}]}"#,
        ),
    ];
    for (_, seed) in support::seeded_runs() {
        // The registry fills up after 2, 3 or 4 of the 9 blobs, by the seed (3 for seed 0).
        let room = 2 + (seed as usize + 1) % 3;
        for (name, status, body) in rows {
            let refused = Arc::new(AtomicUsize::new(0));
            let (uploads, count) = (Arc::new(AtomicUsize::new(0)), refused.clone());
            let proxy = FaultProxy::start(
                registry.port(),
                Box::new(move |_, method, path| {
                    // The first upload past the room and every one after it: the registry is full.
                    if is_blob_upload(method, path)
                        && uploads.fetch_add(1, Ordering::SeqCst) >= room
                    {
                        count.fetch_add(1, Ordering::SeqCst);
                        Fault::Refused(status, body)
                    } else {
                        Fault::Pass
                    }
                }),
            );
            let name = format!("{name}-{seed}");
            let dir = fx.layout(&name, 8);
            let repository = format!("{name}/app:1");
            let (code, _, stderr) = fx.push(&[
                &format!("{}/{repository}", proxy.host()),
                "--from-layout",
                dir.to_str().unwrap(),
                "--jobs",
                "1",
            ]);
            assert_eq!(code, 1, "{name}: {stderr}");
            assert!(
                stderr.contains("is out of storage or over a quota")
                    && stderr.contains("what was sent is kept, and it sends only the rest"),
                "{name}: {stderr}"
            );
            assert_eq!(
                refused.load(Ordering::SeqCst),
                1,
                "{name}: never tried again"
            );
            // With room again: the blobs sent stay, the others go.
            let again = fx.push_ok(&[
                &format!("{}/{repository}", registry.host()),
                "--from-layout",
                dir.to_str().unwrap(),
            ]);
            assert_eq!(
                (
                    again["blobs_uploaded"].as_u64(),
                    again["blobs_skipped"].as_u64()
                ),
                (Some(9 - room as u64), Some(room as u64)),
                "{name}: {again}"
            );
        }
    }
}

/// A blob deleted between the push's look at it and the manifest (a garbage collection in
/// between): the registry refuses the manifest with MANIFEST_BLOB_UNKNOWN; the push asks about
/// every blob again, sends the missing one and the manifest again, and completes.
#[test]
fn a_blob_deleted_before_the_manifest_is_sent_again_and_the_push_completes() {
    let (Some(fx), Some(registry)) = (Fixture::new(), Registry::open()) else {
        return;
    };
    for (_, seed) in support::seeded_runs() {
        let dir = fx.layout(&format!("gc-{seed}"), 5);
        let layout = spin_aks::oci::Layout::open(&dir).unwrap();
        let (_, manifest) = layout.image(None).unwrap();
        // The layer collected: the third for seed 0, another for each other seed.
        let victim = manifest.layers[(2 + seed as usize) % 5].digest.to_string();
        let repository = format!("collected-{seed}/app");
        let link = registry.dir().join(format!(
            "storage/docker/registry/v2/repositories/{repository}/_layers/sha256/{}",
            &victim["sha256:".len()..]
        ));
        let manifest_puts = Arc::new(AtomicUsize::new(0));
        let (puts, link_to_delete) = (manifest_puts.clone(), link.clone());
        let proxy = FaultProxy::start(
            registry.port(),
            Box::new(move |_, method, path| {
                if method == "PUT"
                    && path.contains("/manifests/")
                    && puts.fetch_add(1, Ordering::SeqCst) == 0
                {
                    // The collector runs now: the repository no longer holds that layer.
                    std::fs::remove_dir_all(&link_to_delete).unwrap();
                }
                Fault::Pass
            }),
        );
        let json = fx.push_ok(&[
            &format!("{}/{repository}:1", proxy.host()),
            "--from-layout",
            dir.to_str().unwrap(),
        ]);
        assert_eq!(manifest_puts.load(Ordering::SeqCst), 2, "{json}");
        assert!(link.exists(), "the layer was sent again");
        let raw = skopeo_raw_manifest(&format!("{}/{repository}:1", registry.host()), None);
        assert_eq!(sha256(&raw), json["digest"].as_str().unwrap());
    }
}

#[test]
fn build_flags_with_a_prebuilt_layout_or_archive_are_refused() {
    let home = tempfile::tempdir().unwrap();
    for source in ["--from-layout", "--from-archive"] {
        for flag in [
            &["--format", "image"][..],
            &["--skip-spin-build"],
            &["--shim-version", "v0.13.0"],
        ] {
            let output = spin_aks_isolated(home.path())
                .args(["push", "127.0.0.1:5000/app", source, "somewhere"])
                .args(flag)
                .output()
                .unwrap();
            assert_eq!(output.status.code(), Some(2), "{source} {flag:?}");
            assert!(String::from_utf8_lossy(&output.stderr).contains("cannot be used with"));
        }
    }
}

/// Artifacts about an image (an SBOM, and a signature of that SBOM) travel with it. Distribution
/// 2.8 has no referrers API, so the push lists them in the referrers tag schema's index,
/// `sha256-<hex>` of their subject (distribution spec v1.1, "Referrers Tag Schema"); a second
/// push asks once per subject and sends nothing.
#[test]
fn artifacts_about_an_image_are_pushed_with_it_under_the_referrers_tag_schema() {
    use spin_aks::oci::{Descriptor, ImageManifest, Layout};
    let (Some(fx), Some(registry)) = (Fixture::new(), Registry::open()) else {
        return;
    };
    let (proxy, seen) = recording_proxy(&registry);
    let dir = fx.layout("layout", 3);
    let layout = Layout::open(&dir).unwrap();
    let (image, _) = layout.image(None).unwrap();
    let attach = |subject: &Descriptor, artifact_type: &str, body: &[u8]| {
        let (digest, size) = layout.write_blob(body).unwrap();
        let layer = Descriptor::new("application/json", digest, size);
        let manifest =
            ImageManifest::artifact(artifact_type, subject, vec![layer], Default::default());
        layout.add_referrer(&manifest).unwrap()
    };
    let sbom = attach(
        &image,
        "application/vnd.cyclonedx+json",
        b"{\"bomFormat\":\"CycloneDX\"}",
    );
    let old_signature = attach(
        &sbom,
        "application/vnd.cncf.notary.signature",
        b"{\"payload\":\"x\"}",
    );
    // A second SBOM of the same subject replaces the first in the layout, and what was about it.
    let sbom_again = attach(
        &image,
        "application/vnd.cyclonedx+json",
        b"{\"bomFormat\":\"CycloneDX\",\"v\":2}",
    );
    assert_ne!(sbom.digest, sbom_again.digest);
    assert_eq!(layout.referrers(&image.digest).unwrap().len(), 1);
    assert!(
        layout.referrers(&sbom.digest).unwrap().is_empty(),
        "{old_signature:?} went with it"
    );
    let signature = attach(
        &sbom_again,
        "application/vnd.cncf.notary.signature",
        b"{\"payload\":\"y\"}",
    );
    assert_eq!(
        layout.tags().unwrap(),
        ["1.0.0"],
        "artifacts are not images of the layout"
    );

    let reference = format!("{}/signed/app", proxy.host());
    let first = fx.push_ok(&[&reference, "--from-layout", dir.to_str().unwrap()]);
    let pushed: Vec<(&str, bool)> = first["referrers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["artifact_type"].as_str().unwrap(),
                r["pushed"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        pushed,
        [
            ("application/vnd.cyclonedx+json", true),
            ("application/vnd.cncf.notary.signature", true)
        ]
    );
    let listed = |subject: &Descriptor| -> Value {
        let tag = format!(
            "{}/signed/app:sha256-{}",
            registry.host(),
            subject.digest.hex()
        );
        serde_json::from_slice(&skopeo_raw_manifest(&tag, None)).unwrap()
    };
    let image_referrers = listed(&image);
    assert_eq!(
        image_referrers["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    assert_eq!(
        image_referrers["manifests"][0]["digest"],
        sbom_again.digest.to_string()
    );
    assert_eq!(
        image_referrers["manifests"][0]["artifactType"],
        "application/vnd.cyclonedx+json"
    );
    assert_eq!(image_referrers["manifests"].as_array().unwrap().len(), 1);
    assert_eq!(
        listed(&sbom_again)["manifests"][0]["digest"],
        signature.digest.to_string()
    );
    // The artifact itself, by digest, names the image as its subject.
    let raw = skopeo_raw_manifest(
        &format!("{}/signed/app@{}", registry.host(), sbom_again.digest),
        None,
    );
    let artifact: Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(artifact["subject"]["digest"], image.digest.to_string());
    assert_eq!(
        artifact["config"]["mediaType"],
        "application/vnd.oci.empty.v1+json"
    );

    seen.lock().unwrap().clear();
    let second = fx.push_ok(&[&reference, "--from-layout", dir.to_str().unwrap()]);
    assert!(
        second["referrers"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["pushed"] == false),
        "{second}"
    );
    let asked: Vec<(String, String)> = seen.lock().unwrap().clone();
    assert!(
        asked
            .iter()
            .all(|(method, _)| method == "HEAD" || method == "GET"),
        "nothing sent: {asked:?}"
    );
    // The manifest HEAD, then per subject the referrers API (404 here) and the tag schema index.
    assert_eq!(asked.len(), 5, "{asked:?}");
}
