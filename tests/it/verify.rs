//! `spin-aks verify` through the binary: signatures made by `attest::notation::sign` (a local key)
//! put into the build's layout as referrers, pushed to the test registry (no referrers API: the
//! `sha256-<hex>` tag schema, OCI distribution-spec §Referrers Tag Schema), then verified with
//! the verdicts `notation verify` gives; offline from an `export`ed archive; `up`/`apply --verify`.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use spin_aks::attest::notation::ARTIFACT_TYPE;
use spin_aks::attest::PROVENANCE_ARTIFACT_TYPE;
use spin_aks::oci::media_types::IMAGE_MANIFEST;
use spin_aks::oci::{Descriptor, ImageManifest, Layout};

use crate::notation::test_pki::{self, KeyKind, Leaf, Pki, SUBJECT_BASE};
use crate::notation::{
    notation_binary, notation_config, notation_verify, sign, signer_identity, tamper_signing_time,
    Pushed,
};
use crate::support::apps::generated_app;
use crate::support::registry::{Registry, RegistryConfig};
use crate::support::rig::{rig, spin_aks_on};
use crate::support::{self, json_stdout, spin_aks};

/// The image of `layout` as a signature's subject: media type, digest and size only.
fn image_of(layout: &Layout) -> Descriptor {
    let (image, _) = layout.image(None).unwrap();
    Descriptor::new(&image.media_type, image.digest, image.size)
}

/// Signs `subject` with `pki` at `at` and puts the signature into `layout` as its referrer; with
/// `tamper`, the envelope is changed after signing (its signing time), as an attacker who swapped
/// the envelope in the registry would leave it.
fn attach_signature(
    layout: &Layout,
    pki: &Pki,
    subject: &Descriptor,
    at: SystemTime,
    tamper: bool,
) {
    let signature = sign(pki, subject, at);
    let envelope = match tamper {
        true => tamper_signing_time(&signature.envelope),
        false => signature.envelope.clone(),
    };
    let (digest, size) = layout.write_blob(&envelope).unwrap();
    let mut manifest: ImageManifest = serde_json::from_slice(&signature.manifest).unwrap();
    manifest.layers[0].digest = digest;
    manifest.layers[0].size = size;
    layout.add_referrer(&manifest).unwrap();
}

/// The provenance statement's manifest in `layout`, as a signature's subject.
fn provenance_of(layout: &Layout, image: &Descriptor) -> Descriptor {
    let (statement, _) = (layout.referrers(&image.digest).unwrap().into_iter())
        .find(|(d, _)| d.artifact_type.as_deref() == Some(PROVENANCE_ARTIFACT_TYPE))
        .expect("build attaches provenance");
    Descriptor::new(IMAGE_MANIFEST, statement.digest, statement.size)
}

/// A generated app built into `<home>/layout`: the app, the layout and its image.
fn built(home: &Path) -> (PathBuf, Layout, Descriptor) {
    let app = generated_app(home, 2, 200);
    let dir = home.join("layout");
    let output = spin_aks(home)
        .args(["build", "--skip-spin-build", "-f"])
        .arg(&app)
        .arg("--layout")
        .arg(&dir)
        .output()
        .unwrap();
    assert_ok(&output);
    let layout = Layout::open(&dir).unwrap();
    let image = image_of(&layout);
    (app, layout, image)
}

fn push(home: &Path, layout: &Layout, repository: &str) {
    let output = spin_aks(home)
        .args(["push", repository, "--from-layout"])
        .arg(layout.root())
        .output()
        .unwrap();
    assert_ok(&output);
}

fn assert_ok(output: &Output) {
    assert!(
        output.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// `spin-aks verify ARGS`, and its output.
fn verify(home: &Path, args: &[&str]) -> Output {
    spin_aks(home).arg("verify").args(args).output().unwrap()
}

/// A PEM file of `pem` in `home`, its path as an argument.

#[test]
fn verify_accepts_a_signed_image_and_names_each_refusal_as_notation_does() {
    let Some(registry) = Registry::open() else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    let (_, layout, image) = built(home);
    let good = test_pki::make("spin-aks test root", &Leaf::new(KeyKind::P256));
    let other = test_pki::make("another root", &Leaf::new(KeyKind::P256));
    let expired = test_pki::make(
        "spin-aks test root",
        &Leaf {
            valid: ((2020, 1, 1), (2021, 1, 1)),
            ..Leaf::new(KeyKind::Rsa2048)
        },
    );
    let root = support::write_file(home, "root.pem", &good.root_pem);
    let other_root = support::write_file(home, "other-root.pem", &other.root_pem);
    let expired_root = support::write_file(home, "expired-root.pem", &expired.root_pem);
    let identity = signer_identity();
    let repository = |name: &str| format!("{}/verify/{name}", registry.host());

    // Signed (the image and its provenance statement): exit 0, and the JSON lists it all.
    attach_signature(&layout, &good, &image, SystemTime::now(), false);
    let statement = provenance_of(&layout, &image);
    attach_signature(&layout, &good, &statement, SystemTime::now(), false);
    push(home, &layout, &format!("{}:1", repository("good")));
    let good_ref = format!("{}:1", repository("good"));
    let output = verify(
        home,
        &[
            "--output",
            "json",
            &good_ref,
            "--trust-cert",
            &root,
            "--subject",
            &identity,
        ],
    );
    assert_ok(&output);
    let report = json_stdout(&output);
    assert_eq!(report["verified"], true, "{report}");
    assert_eq!(report["source"], "registry");
    assert_eq!(report["digest"], image.digest.to_string());
    assert_eq!(report["size"], image.size);
    assert_eq!(report["media_type"], IMAGE_MANIFEST);
    let signatures = report["signatures"].as_array().unwrap();
    assert_eq!(signatures.len(), 1, "{report}");
    assert_eq!(signatures[0]["verdict"], "verified");
    assert!(
        signatures[0]["signer"]
            .as_str()
            .unwrap()
            .contains("CN=spin-aks test signer"),
        "{report}"
    );
    assert_eq!(report["sboms"].as_array().unwrap().len(), 1, "{report}");
    let provenance = &report["provenance"][0];
    assert_eq!(provenance["digest"], statement.digest.to_string());
    assert_eq!(provenance["subject"], image.digest.to_string());
    assert_eq!(provenance["matches_image"], true);
    assert_eq!(
        provenance["signatures"][0]["verdict"], "verified",
        "{report}"
    );
    // Text: a summary line, then a line per signature.
    let output = verify(home, &[&good_ref, "--trust-cert", &root]);
    assert_ok(&output);
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.starts_with(&format!("verified {good_ref} ({})", image.digest)),
        "{text}"
    );
    assert!(text.contains("  signature sha256:"), "{text}");

    // Each refusal: exit 1, the verdict named on stderr and in the JSON.
    layout
        .remove_referrers(&image.digest, ARTIFACT_TYPE)
        .unwrap();
    push(home, &layout, &format!("{}:1", repository("unsigned")));
    attach_signature(&layout, &good, &image, SystemTime::now(), true);
    push(home, &layout, &format!("{}:1", repository("tampered")));
    let june_2020 = UNIX_EPOCH + Duration::from_secs(1_590_969_600);
    attach_signature(&layout, &expired, &image, june_2020, false);
    push(home, &layout, &format!("{}:1", repository("expired")));
    let wrong = format!("{SUBJECT_BASE},CN=someone else");
    #[rustfmt::skip]
    let cases: [(&str, &str, Option<&str>, &str, &str); 5] = [
        ("unsigned", &root, None, "", "unsigned"),
        ("good", &other_root, None, "untrusted-chain", "untrusted chain"),
        ("good", &root, Some(&wrong), "wrong-identity", "wrong identity"),
        ("tampered", &root, None, "tampered-payload", "tampered payload"),
        ("expired", &expired_root, None, "expired", "expired"),
    ];
    for (name, trust, subject, verdict, says) in cases {
        let reference = format!("{}:1", repository(name));
        let mut args = vec!["--output", "json", &reference, "--trust-cert", trust];
        if let Some(subject) = subject {
            args.extend(["--subject", subject]);
        }
        let output = verify(home, &args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{name} {verdict}: {stderr}");
        assert!(
            stderr.contains("does not verify") && stderr.contains(says),
            "{name}: {stderr}"
        );
        let report = json_stdout(&output);
        assert_eq!(report["verified"], false);
        match verdict {
            "" => assert_eq!(report["signatures"], serde_json::json!([])),
            verdict => assert_eq!(report["signatures"][0]["verdict"], verdict, "{report}"),
        }
    }

    // The independent verifier agrees on the signed image and on the wrong identity.
    let Some(binary) = notation_binary() else {
        return;
    };
    let pushed = Pushed {
        repository: repository("good"),
        manifest: image.clone(),
    };
    for (identity, accepted) in [(identity.as_str(), true), (wrong.as_str(), false)] {
        let dir = home.join(format!("notation-{accepted}"));
        let config = notation_config(&dir, &good.root_pem, identity);
        let (ok, text, _) = notation_verify(&binary, &dir, &config, &pushed);
        assert_eq!(ok, accepted, "notation, identity {identity}: {text}");
    }
}

#[test]
fn verify_archive_checks_an_exported_signed_image_without_the_network() {
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    let app = generated_app(home, 2, 200);
    let layout_dir = app.join(".spin-aks/oci");
    let output = spin_aks(home)
        .args(["build", "--skip-spin-build", "-f"])
        .arg(&app)
        .output()
        .unwrap();
    assert_ok(&output);
    let layout = Layout::open(&layout_dir).unwrap();
    let image = image_of(&layout);
    let pki = test_pki::make("spin-aks test root", &Leaf::new(KeyKind::Rsa2048));
    attach_signature(&layout, &pki, &image, SystemTime::now(), false);
    let archive = home.join("app.oci.tar");
    let output = spin_aks(home)
        .args(["export", "--skip-spin-build", "-f"])
        .arg(&app)
        .arg("-o")
        .arg(&archive)
        .output()
        .unwrap();
    assert_ok(&output);
    let root = support::write_file(home, "root.pem", &pki.root_pem);
    // Any network use would meet a closed port.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let proxy = format!("http://{closed}");
    let run = |trust: &str| {
        spin_aks(home)
            .args(["--output", "json", "verify", "--archive"])
            .arg(&archive)
            .args(["--trust-cert", trust, "--subject", &signer_identity()])
            .env("HTTPS_PROXY", &proxy)
            .env("HTTP_PROXY", &proxy)
            .env("ALL_PROXY", &proxy)
            .env("SPIN_AKS_ARM_ENDPOINT", &proxy)
            .output()
            .unwrap()
    };
    let output = run(&root);
    assert_ok(&output);
    let report = json_stdout(&output);
    assert_eq!(report["source"], "archive");
    assert_eq!(report["digest"], image.digest.to_string());
    assert_eq!(report["signatures"][0]["verdict"], "verified", "{report}");
    assert_eq!(report["provenance"][0]["matches_image"], true, "{report}");

    let other = test_pki::make("another root", &Leaf::new(KeyKind::P256));
    let output = run(&support::write_file(home, "other.pem", &other.root_pem));
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        json_stdout(&output)["signatures"][0]["verdict"],
        "untrusted-chain"
    );
}

/// What a registry served by digest cannot change, so a second `verify` of the same image asks
/// only for the lists of what is about the image (the referrers API and the tag schema) and its
/// provenance (the tag schema only, as the registry has no API); the report stays the same. A kept file that
/// no longer hashes to its name is a miss: it is fetched again, and the verdict still holds.
#[test]
fn a_second_verify_asks_the_registry_only_for_the_referrer_lists() {
    let Some(registry) = Registry::start(RegistryConfig::open().access_log()) else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    let (_, layout, image) = built(home);
    let pki = test_pki::make("spin-aks test root", &Leaf::new(KeyKind::P256));
    attach_signature(&layout, &pki, &image, SystemTime::now(), false);
    attach_signature(
        &layout,
        &pki,
        &provenance_of(&layout, &image),
        SystemTime::now(),
        false,
    );
    let repository = format!("{}/verify/cached", registry.host());
    push(home, &layout, &format!("{repository}:1"));
    let root = support::write_file(home, "root.pem", &pki.root_pem);
    let pinned = format!("{repository}@{}", image.digest);
    let run = || {
        let before = registry.requests().len();
        // --plain-http: no HTTPS try first (a HEAD) on the loopback registry.
        let args = [
            "--output",
            "json",
            "--plain-http",
            &pinned,
            "--trust-cert",
            &root,
        ];
        let output = verify(home, &args);
        assert_ok(&output);
        let report = json_stdout(&output);
        (report, registry.requests()[before..].to_vec())
    };

    let (first, cold) = run();
    let (second, warm) = run();
    assert_eq!(first, second, "the same report");
    assert_eq!(
        first["provenance"][0]["signatures"][0]["verdict"],
        "verified"
    );
    let lists = |requests: &[String]| -> Vec<String> {
        let mut lists: Vec<String> = (requests.iter())
            .filter(|r| r.contains("/referrers/") || r.contains("/manifests/sha256-"))
            .cloned()
            .collect();
        lists.sort();
        lists
    };
    assert!(cold.len() > warm.len(), "cold {cold:?}\nwarm {warm:?}");
    // The image's list through the API (a 404 here) and the tag schema, then the provenance's
    // through the tag schema only: the registry said it has no API.
    assert_eq!(warm.len(), 3, "{warm:?}");
    assert_eq!(
        lists(&warm),
        lists(&cold),
        "only the lists are asked again: {warm:?}"
    );

    // A hint that names another statement than the image's list does now only costs its
    // tag-schema look-up: the report is the same.
    let hint = home.join("cache/referrers").join(image.digest.hex());
    let stale = format!("sha256:{}\n", "ab".repeat(32));
    std::fs::write(&hint, stale).unwrap();
    let (after_stale, requests) = run();
    assert_eq!(after_stale, first);
    assert_eq!(requests.len(), 4, "{requests:?}");

    // Damage every kept file: each is a miss, fetched again, and the image still verifies.
    let kept = home.join("cache/content");
    for entry in std::fs::read_dir(&kept).unwrap() {
        std::fs::write(entry.unwrap().path(), b"damaged").unwrap();
    }
    let (third, again) = run();
    assert_eq!(third, first);
    assert_eq!(again.len(), cold.len(), "{again:?}");
}

// ---------- up --verify and apply --verify, on the Kubernetes rig ----------

/// `up --verify` of an unsigned image: pushed, then refused before the apply (exit 1, nothing in
/// the namespace); remembered, so `up` with no flags refuses again. `apply --verify --image` of
/// a signed image deploys exactly the digest that verified; of the unsigned one, nothing.
#[test]
fn up_and_apply_verify_refuse_unsigned_images_and_apply_nothing() {
    let Some(rig) = rig() else { return };
    let Some(registry) = Registry::open() else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    let app = crate::support::apps::example_copy(home);
    let ns = rig.bare_namespace("verify");
    let pki = test_pki::make("spin-aks test root", &Leaf::new(KeyKind::P256));
    let root = support::write_file(home, "root.pem", &pki.root_pem);
    let reference = format!("{}/verify-up", registry.host());
    let run = |args: &[&str]| {
        spin_aks_on(rig, home)
            .arg("-f")
            .arg(&app)
            .args(args)
            .output()
            .unwrap()
    };
    let nothing_applied = || {
        let listed = rig.kubectl_ok(&["-n", &ns, "get", "spinapps,deployments", "-o", "name"]);
        assert_eq!(listed.trim(), "", "applied despite the refusal");
    };

    let output = run(&[
        "up",
        &reference,
        "-n",
        &ns,
        "--verify",
        "--trust-cert",
        &root,
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("unsigned"), "{stderr}");
    nothing_applied();
    let output = run(&["up", "-y"]);
    assert_eq!(
        output.status.code(),
        Some(1),
        "remembered: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    nothing_applied();

    // Sign what was pushed, push it again with its signature, and apply that.
    let layout = Layout::open(&app.join(".spin-aks/oci")).unwrap();
    let image = image_of(&layout);
    attach_signature(&layout, &pki, &image, SystemTime::now(), false);
    push(home, &layout, &reference);
    let tagged = format!("{reference}:{}", layout.tags().unwrap()[0]);
    let output = run(&[
        "apply",
        "--output",
        "json",
        "-n",
        &ns,
        "--image",
        &tagged,
        "--verify",
        "--trust-cert",
        &root,
        "--secret",
        "api_token=not-a-real-token",
    ]);
    assert_ok(&output);
    let pinned = format!("{reference}@{}", image.digest);
    let report = json_stdout(&output);
    assert_eq!(report["image"], pinned);
    assert_eq!(rig.running_image(&ns, "hello-aks"), pinned);
    // The report names the check that let the image through.
    let verified = &report["verified"];
    assert_eq!(verified["digest"], image.digest.to_string(), "{report}");
    let signer = verified["signer"].as_str().unwrap_or_default();
    assert!(signer.ends_with("CN=spin-aks test signer"), "{report}");

    // `up` with the remembered --verify verifies the same image again and says so.
    let output = run(&[
        "up",
        "-y",
        "--output",
        "json",
        "--secret",
        "api_token=not-a-real-token",
    ]);
    assert_ok(&output);
    let report = json_stdout(&output);
    assert_eq!(
        report["verified"]["digest"],
        image.digest.to_string(),
        "{report}"
    );
    assert_eq!(report["verified"]["signature"], verified["signature"]);

    // --no-verify forgets it: the next up deploys without verifying.
    let output = run(&[
        "up",
        "-y",
        "--no-verify",
        "--secret",
        "api_token=not-a-real-token",
    ]);
    assert_ok(&output);
    let state = std::fs::read_to_string(home.join("state")).unwrap();
    assert!(!state.contains("trust_certs"), "{state}");
}

/// Across an air gap: `export --sign` carries the signatures, SBOM and provenance in the archive;
/// `push --from-archive` on the other side pushes them along with the image, and `verify` of the
/// pushed image finds them all on the registry.
#[test]
fn a_signed_export_pushed_from_its_archive_verifies_on_the_registry() {
    let Some(registry) = Registry::open() else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    let app = generated_app(home, 2, 200);
    let pki = test_pki::make("spin-aks air-gap root", &Leaf::new(KeyKind::P384));
    let key = support::write_file(home, "key.pem", &pki.key_pem);
    let chain = support::write_file(home, "chain.pem", &pki.chain_pem);
    let archive = home.join("app.oci.tar");
    let output = spin_aks(home)
        .args(["--output", "json", "export", "--skip-spin-build", "-f"])
        .arg(&app)
        .arg("-o")
        .arg(&archive)
        .args(["--sign", &key, "--sign-cert", &chain])
        .output()
        .unwrap();
    assert_ok(&output);
    let exported = json_stdout(&output);

    // The other side: another home, the archive only.
    let inside = tempfile::tempdir().unwrap();
    let repository = format!("{}/airgap/app", registry.host());
    let output = spin_aks(inside.path())
        .args(["--output", "json", "push", &repository, "--from-archive"])
        .arg(&archive)
        .output()
        .unwrap();
    assert_ok(&output);
    let pushed = json_stdout(&output);
    assert_eq!(pushed["digest"], exported["digest"]);
    let types: Vec<&str> = (pushed["referrers"].as_array().unwrap().iter())
        .map(|r| r["artifact_type"].as_str().unwrap())
        .collect();
    for wanted in [
        "application/vnd.cyclonedx+json",
        "application/vnd.in-toto+json",
        "application/vnd.cncf.notary.signature",
    ] {
        assert!(types.contains(&wanted), "{wanted} pushed along: {types:?}");
    }
    let root = support::write_file(inside.path(), "root.pem", &pki.root_pem);
    let pinned = format!("{repository}@{}", exported["digest"].as_str().unwrap());
    let output = spin_aks(inside.path())
        .args(["--output", "json", "verify", &pinned, "--trust-cert", &root])
        .output()
        .unwrap();
    assert_ok(&output);
    let report = json_stdout(&output);
    assert_eq!(report["signatures"][0]["verdict"], "verified", "{report}");
    assert_eq!(report["provenance"][0]["matches_image"], true, "{report}");
    assert_eq!(
        report["sboms"].as_array().map(Vec::len),
        Some(1),
        "{report}"
    );
}
