//! `cluster install`: its flags refused before any cluster call, a cluster without Flux refused
//! naming the fix, the operator's CRDs taken only from a module zip with the pinned hash, and the
//! objects it applies (snapshots).

use std::path::PathBuf;

use spin_aks::install::objects::{self, ChartSource};
use spin_aks::install::releases::{ReleaseSet, Versions};

use crate::support::rig::{rig, spin_aks_on};
use crate::support::{skip, spin_aks_isolated};

#[test]
fn install_flags_are_refused_before_any_cluster_call() {
    let home = tempfile::tempdir().unwrap();
    let cases: [(&[&str], &str); 6] = [
        (
            &["--spin-operator-version", "0.5.0"],
            "knows the CRDs of spin-operator v0.6.1",
        ),
        (
            &["--shim-version", "latest"],
            "--shim-version `latest` is not a release version",
        ),
        (
            &["--cert-manager-version", "1.2"],
            "--cert-manager-version `1.2`",
        ),
        (
            &["--chart-registry", "http://mirror.example/charts"],
            "--chart-registry `http://mirror.example/charts`",
        ),
        (
            &["--module-proxy", "http://proxy.example"],
            "must be https://",
        ),
        (
            &["--module-proxy", "not a url"],
            "--module-proxy `not a url` is not a URL",
        ),
    ];
    let mut failures = Vec::new();
    for (args, wanted) in cases {
        let output = spin_aks_isolated(home.path())
            .env("KUBECONFIG", home.path().join("no-such-kubeconfig"))
            .args(["cluster", "install"])
            .args(args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        if output.status.code() != Some(2) || !stderr.contains(wanted) {
            failures.push(format!(
                "{args:?}: exit {:?}: {stderr}",
                output.status.code()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_cluster_without_flux_is_refused_naming_how_to_get_it_and_nothing_is_written() {
    let Some(rig) = rig() else { return };
    let home = tempfile::tempdir().unwrap();
    let output = spin_aks_on(rig, home.path())
        .args(["cluster", "install"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("has no Flux helm-controller") && stderr.contains("flux install"),
        "{stderr}"
    );
    let namespaces = rig.kubectl_ok(&["get", "namespaces", "-o", "name"]);
    assert!(!namespaces.contains("namespace/spin-aks\n"), "{namespaces}");
}

/// The spin-operator module zip as the Go command downloaded it (the rig's build fetches it).
fn operator_zip() -> Option<Vec<u8>> {
    let output = std::process::Command::new("go")
        .args(["env", "GOMODCACHE"])
        .output();
    let Some(output) = output.ok().filter(|o| o.status.success()) else {
        skip("go is not installed: the operator's module zip comes from the Go module cache");
        return None;
    };
    let cache = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
    let zip = cache.join("cache/download/github.com/spinkube/spin-operator/@v/v0.6.1.zip");
    match std::fs::read(&zip) {
        Ok(bytes) => Some(bytes),
        Err(e) => {
            skip(&format!(
                "{}: {e} (scripts/kube-rig/build.sh downloads it)",
                zip.display()
            ));
            None
        }
    }
}

#[test]
fn the_operators_crds_come_only_from_a_module_zip_with_the_checksum_databases_hash() {
    let Some(bytes) = operator_zip() else { return };
    let releases = ReleaseSet::pinned(&Versions::default()).unwrap();
    let module = &releases.operator_module;
    // The pinned hash is the one `go mod download` verified against sum.golang.org; our dirhash
    // of the same zip must agree, and yield the operator's two CRDs.
    let crds = spin_aks::install::crds::crds_in_zip(&bytes, module).unwrap();
    let mut names: Vec<&str> = crds
        .iter()
        .map(|c| c["metadata"]["name"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "spinappexecutors.core.spinkube.dev",
            "spinapps.core.spinkube.dev"
        ]
    );
    // A mirror serving other content (here: one more file in the zip) is refused.
    let mut archive = zip::ZipWriter::new_append(std::io::Cursor::new(bytes)).unwrap();
    archive
        .start_file(
            format!("{}@{}/extra.txt", module.path, module.version),
            zip::write::SimpleFileOptions::default(),
        )
        .unwrap();
    std::io::Write::write_all(&mut archive, b"not in the release\n").unwrap();
    let changed = archive.finish().unwrap().into_inner();
    let err = spin_aks::install::crds::crds_in_zip(&changed, module).unwrap_err();
    assert!(
        err.to_string().contains("the Go checksum database records"),
        "{err:#}"
    );
}

#[test]
fn the_install_objects_are_flux_helm_releases_in_order_and_the_shim() {
    let releases = ReleaseSet::pinned(&Versions::default()).unwrap();
    let mirror = ChartSource::Mirror {
        registry: "127.0.0.1:5000/charts".into(),
        insecure: true,
    };
    for (name, source) in [("publishers", ChartSource::Publishers), ("mirror", mirror)] {
        let mut objects = objects::repositories(&releases, &source);
        objects.extend(objects::releases(&releases, &source));
        objects.push(objects::shim(&releases));
        insta::assert_snapshot!(
            format!("install_objects_from_{name}"),
            spin_aks::kube::render::yaml_stream(&objects)
        );
    }
}
