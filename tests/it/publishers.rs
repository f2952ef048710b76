//! The bundle tests' stand-in publishers serve what they should to independent clients (skopeo,
//! curl, tar), and once cut off record every connection to them or through the forward proxy.

use std::path::Path;
use std::process::Command;

use serde_json::Value;
use sha2::{Digest, Sha256};
use spin_aks::install::crds::crds_in_zip;
use spin_aks::install::releases::{ReleaseSet, Versions};

use crate::support::publishers::{self, Publishers, PLATFORMS, SIMPLE_SIGNING};
use crate::support::registry::free_port;
use crate::support::rig::private_rig_with;
use crate::support::{assert_blobs_match_names, skopeo_finds, skopeo_raw_manifest, tool};

const IMAGES: [(&str, &str); 2] = [
    ("quay.io/jetstack/cert-manager-controller", "v1.20.0"),
    (
        "ghcr.io/spinframework/containerd-shim-spin/node-installer",
        "v0.25.1",
    ),
];
const CHARTS: [(&str, &str, &str); 3] = [
    ("quay.io/jetstack/charts", "cert-manager", "v1.20.0"),
    (
        "ghcr.io/spinframework/charts",
        "runtime-class-manager",
        "0.2.0",
    ),
    ("ghcr.io/spinframework/charts", "spin-operator", "0.6.1"),
];
const SHIM: &str = "v0.25.1";

/// A GET with curl, through the proxy variables `env` (none: direct); the status (0 when no HTTP
/// answer came) and the body.
fn curl(url: &str, env: &[(String, String)]) -> (u16, Vec<u8>) {
    let out = tempfile::NamedTempFile::new().unwrap();
    let mut cmd = Command::new("curl");
    cmd.args(["-s", "--max-time", "30", "-w", "%{http_code}", "-o"])
        .arg(out.path())
        .arg(url);
    for name in [
        "HTTPS_PROXY",
        "HTTP_PROXY",
        "https_proxy",
        "http_proxy",
        "ALL_PROXY",
        "all_proxy",
    ] {
        cmd.env_remove(name);
    }
    if env.is_empty() {
        cmd.args(["--noproxy", "*"]);
    }
    let output = cmd.envs(env.iter().cloned()).output().expect("run curl");
    let code = String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .unwrap_or(0);
    (code, std::fs::read(out.path()).unwrap_or_default())
}

fn json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap()
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// skopeo reading `reference` (`quay.io/…:tag`) through the registries.conf, with the proxy
/// variables `env`: the raw manifest, or why it failed.
fn skopeo_through(
    conf: &Path,
    reference: &str,
    env: &[(String, String)],
) -> Result<Vec<u8>, String> {
    let output = Command::new("skopeo")
        .arg("--registries-conf")
        .arg(conf)
        .args([
            "--insecure-policy",
            "inspect",
            "--raw",
            "--retry-times",
            "0",
        ])
        .arg(format!("docker://{reference}"))
        .envs(env.iter().cloned())
        .output()
        .expect("run skopeo");
    match output.status.success() {
        true => Ok(output.stdout),
        false => Err(String::from_utf8_lossy(&output.stderr).into_owned()),
    }
}

#[test]
fn the_publishers_serve_images_charts_modules_and_shims_at_upstream_paths_and_once_cut_off_record_every_connection(
) {
    let (Some(_), Some(_)) = (tool("skopeo"), tool("curl")) else {
        return;
    };
    let Some(rig) = private_rig_with(&["--bare", "--flux-on-install"]) else {
        return;
    };
    let releases = ReleaseSet::pinned(&Versions::default()).unwrap();
    let pinned = [&releases.operator_module, &releases.flux.source_controller];
    let modules: Vec<(&str, &str)> = pinned.iter().map(|m| (m.path, m.version)).collect();
    let Some(mut publishers) = Publishers::start(&rig, &IMAGES, &CHARTS, &modules, SHIM) else {
        return;
    };
    let registry = publishers.registry();

    // Images: an index of two platform images each, with layers of their own, pulled whole.
    let mut layers = Vec::new();
    let mut indexes = Vec::new();
    for (repository, tag) in IMAGES {
        let raw = skopeo_raw_manifest(&format!("{registry}/{repository}:{tag}"), None);
        let index = json(&raw);
        assert_eq!(
            index["mediaType"],
            "application/vnd.oci.image.index.v1+json"
        );
        let platforms: Vec<&str> = index["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["platform"]["architecture"].as_str().unwrap())
            .collect();
        assert_eq!(platforms, PLATFORMS.map(|(oci, _)| oci));
        for entry in index["manifests"].as_array().unwrap() {
            let digest = entry["digest"].as_str().unwrap();
            let manifest = json(&skopeo_raw_manifest(
                &format!("{registry}/{repository}@{digest}"),
                None,
            ));
            layers.push(
                manifest["layers"][0]["digest"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            );
        }
        let layout = tempfile::tempdir().unwrap();
        let copied = Command::new("skopeo")
            .args([
                "--insecure-policy",
                "copy",
                "--all",
                "--src-tls-verify=false",
            ])
            .arg(format!("docker://{registry}/{repository}:{tag}"))
            .arg(format!("oci:{}:pulled", layout.path().display()))
            .output()
            .unwrap();
        assert!(
            copied.status.success(),
            "{}",
            String::from_utf8_lossy(&copied.stderr)
        );
        assert_blobs_match_names(layout.path());
        indexes.push(sha256(&raw));
    }
    let mut distinct = layers.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(
        distinct.len(),
        layers.len(),
        "every platform image has its own layer: {layers:?}"
    );

    // The first image, and only it, has a cosign-style signature naming the index's digest.
    let (first, _) = IMAGES[0];
    let sig = |n: usize| format!("{}.sig", indexes[n].replace(':', "-"));
    let signature = json(&skopeo_raw_manifest(
        &format!("{registry}/{first}:{}", sig(0)),
        None,
    ));
    assert_eq!(signature["layers"][0]["mediaType"], SIMPLE_SIGNING);
    let payload_digest = signature["layers"][0]["digest"].as_str().unwrap();
    let (code, payload) = curl(
        &format!("http://{registry}/v2/{first}/blobs/{payload_digest}"),
        &[],
    );
    assert_eq!(code, 200);
    assert_eq!(
        json(&payload)["critical"]["image"]["docker-manifest-digest"],
        indexes[0]
    );
    assert!(!skopeo_finds(&format!(
        "{registry}/{}:{}",
        IMAGES[1].0,
        sig(1)
    )));

    // The same names give the same images.
    let again = Publishers::start(&rig, &IMAGES[..1], &[], &[], SHIM).unwrap();
    let raw = skopeo_raw_manifest(
        &format!("{}/{first}:{}", again.registry(), IMAGES[0].1),
        None,
    );
    assert_eq!(sha256(&raw), indexes[0]);
    drop(again);

    // Charts: byte for byte the rig's, at the upstream repository paths, with every blob.
    let chart_registry = rig.env("CHART_REGISTRY").unwrap();
    for (path, name, version) in CHARTS {
        let raw = skopeo_raw_manifest(&format!("{registry}/{path}/{name}:{version}"), None);
        assert_eq!(
            raw,
            skopeo_raw_manifest(&format!("{chart_registry}/{name}:{version}"), None)
        );
        let manifest = json(&raw);
        assert_eq!(
            manifest["config"]["mediaType"],
            "application/vnd.cncf.helm.config.v1+json"
        );
        for blob in [&manifest["config"], &manifest["layers"][0]] {
            let digest = blob["digest"].as_str().unwrap();
            let (code, bytes) = curl(
                &format!("http://{registry}/v2/{path}/{name}/blobs/{digest}"),
                &[],
            );
            assert_eq!((code, sha256(&bytes).as_str()), (200, digest));
        }
    }

    // Module zips: the Go command's own, with the hashes spin-aks pins (so its check passes).
    let cache = publishers::go_mod_cache();
    for module in pinned {
        let url = format!(
            "{}/{}/@v/{}.zip",
            publishers.module_proxy(),
            module.path,
            module.version
        );
        let (code, zip) = curl(&url, &[]);
        assert_eq!(code, 200, "{url}");
        if let Some(cache) = &cache {
            let file = format!("cache/download/{}/@v/{}.zip", module.path, module.version);
            assert_eq!(Some(&zip), std::fs::read(cache.join(file)).ok().as_ref());
        }
        crds_in_zip(&zip, module).unwrap();
    }
    let (code, _) = curl(
        &format!(
            "{}/github.com/nobody/@v/v1.0.0.zip",
            publishers.module_proxy()
        ),
        &[],
    );
    assert_eq!(code, 404);

    // Shim archives: one per architecture, the shim binary at the top.
    let unpacked = tempfile::tempdir().unwrap();
    for (_, arch) in PLATFORMS {
        let url = format!(
            "{}/{SHIM}/containerd-shim-spin-v2-linux-{arch}.tar.gz",
            publishers.shim_base()
        );
        let (code, archive) = curl(&url, &[]);
        assert_eq!(code, 200, "{url}");
        let file = unpacked.path().join(format!("{arch}.tar.gz"));
        std::fs::write(&file, archive).unwrap();
        let listed = crate::support::run_ok(Command::new("tar").arg("-tzf").arg(&file));
        assert_eq!(listed, "containerd-shim-spin-v2\n");
        let script = crate::support::run_ok(Command::new("tar").arg("-xzOf").arg(&file));
        assert!(script.contains(&format!("{SHIM} linux/{arch}")), "{script}");
    }

    // registries.conf sends skopeo's quay.io to the stand-in (a fallback to quay.io itself would
    // meet a proxy that is not there, and fail).
    let conf = publishers.registries_conf();
    let nowhere = format!("http://127.0.0.1:{}", free_port());
    let no_proxy = [
        ("HTTPS_PROXY".to_string(), nowhere.clone()),
        ("https_proxy".to_string(), nowhere),
    ];
    let reference = format!("{first}:{}", IMAGES[0].1);
    let through = skopeo_through(&conf, &reference, &no_proxy).unwrap();
    assert_eq!(sha256(&through), indexes[0]);
    assert!(publishers.outside_requests().is_empty());

    // Cut off: each connection to the stopped publishers and each proxied request is recorded
    // and refused; loopback goes direct even with the proxy variables set.
    publishers.cut_off();
    let env = publishers.proxy_env();
    let (code, _) = curl(&format!("http://{registry}/v2/"), &[]);
    assert_eq!(code, 503);
    let (code, _) = curl(&format!("http://{registry}/v2/"), &env);
    assert_eq!(code, 503);
    let zip = format!(
        "{}/{}/@v/{}.zip",
        publishers.module_proxy(),
        modules[0].0,
        modules[0].1
    );
    assert_eq!(curl(&zip, &env).0, 503);
    assert_ne!(
        curl("https://quay.io/v2/", &env).0,
        200,
        "the proxy refuses the tunnel"
    );
    assert_eq!(curl("http://example.invalid/x", &env).0, 503);
    let files = publishers.module_proxy().replace("http://", "");
    assert_eq!(
        publishers.outside_requests(),
        [
            format!("{registry} connect"),
            format!("{registry} connect"),
            format!("{files} connect"),
            "CONNECT quay.io:443".to_string(),
            "GET http://example.invalid/x".to_string(),
        ]
    );
    let failed = skopeo_through(&conf, &reference, &env).unwrap_err();
    let seen = publishers.outside_requests();
    assert!(
        seen.len() > 6 && seen.contains(&"CONNECT quay.io:443".to_string()),
        "{seen:?}\n{failed}"
    );
}
