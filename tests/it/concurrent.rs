//! Many `up`s at once against one rig, one registry and one state file, as on a CI runner: 16
//! different apps all finish and are all remembered; 4 runs of one app from 4 checkouts end in
//! one deploy, each run another apply superseded saying so at once; 2 runs of one checkout
//! share its layout and push the same digest. Runs `RELIABILITY_RUNS` times (once by default).

use std::path::{Path, PathBuf};
use std::process::{Child, Output};
use std::time::Instant;

use serde_json::Value;

use crate::support::apps::example_copy;
use crate::support::registry::Registry;
use crate::support::rig::{rig, spawn_on, spin_aks_on, Rig};

/// A copy of the example named `name` in `dir`, with a page of its own so its digest is its own.
fn app(dir: &Path, name: &str, page: &str) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let app = example_copy(dir);
    let manifest = app.join("spin.toml");
    let toml = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(
        &manifest,
        toml.replacen("name = \"hello-aks\"", &format!("name = \"{name}\""), 1),
    )
    .unwrap();
    std::fs::write(app.join("static/run.txt"), page).unwrap();
    app
}

fn up(rig: &Rig, home: &Path, app: &Path, reference: &str, ns: &str) -> Child {
    let args = ["up", "--output", "json", reference, "-n", ns];
    let more = ["--secret", "api_token=x", "--timeout", "3m"];
    spawn_on(rig, home, app, &[], &[&args[..], &more[..]].concat())
}

fn finished(child: Child) -> Output {
    child.wait_with_output().unwrap()
}

fn report(output: &Output) -> Value {
    assert!(
        output.status.success(),
        "exit {:?}: {}",
        output.status.code(),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn sixteen_apps_and_six_runs_of_two_more_at_once_share_a_cluster_registry_and_state_file() {
    let Some(rig) = rig() else { return };
    let Some(registry) = Registry::open() else {
        return;
    };
    for run in 1..=crate::support::reliability_runs() {
        eprintln!("run {run}");
        let home = tempfile::tempdir().unwrap();
        let ns = rig.namespace("many");
        let reference = |name: &str| format!("{}/{name}", registry.host());

        // One alone first: the figure the 22 at once are compared with.
        let solo = app(&home.path().join("solo"), "solo", "solo");
        let alone = Instant::now();
        report(&finished(up(
            rig,
            home.path(),
            &solo,
            &reference("solo"),
            &ns,
        )));
        let alone = alone.elapsed();

        let apps: Vec<(String, PathBuf)> = (0..16)
            .map(|i| {
                let name = format!("app-{i}");
                let dir = app(&home.path().join(&name), &name, &name);
                (name, dir)
            })
            .collect();
        let checkouts: Vec<PathBuf> = (0..4)
            .map(|i| {
                app(
                    &home.path().join(format!("shared-{i}")),
                    "shared",
                    &format!("commit {i}"),
                )
            })
            .collect();
        let twin = app(&home.path().join("twin"), "twin", "twin");

        let started = Instant::now();
        let different: Vec<Child> = apps
            .iter()
            .map(|(name, dir)| up(rig, home.path(), dir, &reference(name), &ns))
            .collect();
        let same: Vec<Child> = checkouts
            .iter()
            .map(|dir| up(rig, home.path(), dir, &reference("shared"), &ns))
            .collect();
        let twins: Vec<Child> = (0..2)
            .map(|_| up(rig, home.path(), &twin, &reference("twin"), &ns))
            .collect();
        let different: Vec<Output> = different.into_iter().map(finished).collect();
        let same: Vec<Output> = same.into_iter().map(finished).collect();
        let twins: Vec<Output> = twins.into_iter().map(finished).collect();
        let together = started.elapsed();
        eprintln!(
            "one up alone: {:.2} s; 22 at once (16 apps, 4 runs of one app, 2 of one checkout): {:.2} s",
            alone.as_secs_f64(),
            together.as_secs_f64()
        );
        // Every run ended on its own, none by the 3-minute rollout timeout (a superseded run
        // says so at once). Not timed: a loaded machine may take longer to roll 22 apps out.
        for output in different.iter().chain(&same).chain(&twins) {
            let err = String::from_utf8_lossy(&output.stderr);
            assert!(!err.contains("did not finish within"), "{err}");
        }

        // Different apps: each deployed, running its own image.
        for ((name, _), output) in apps.iter().zip(&different) {
            let pinned = report(output)["apply"]["image"]
                .as_str()
                .unwrap()
                .to_string();
            assert!(pinned.starts_with(&reference(name)), "{pinned}");
            assert_eq!(rig.running_image(&ns, name), pinned);
        }

        // One app from 4 checkouts: the last apply stands and its run finished; every run whose
        // object a later apply replaced stopped at once, naming the image that replaced its own.
        let spinapp_image = rig.kubectl_ok(&[
            "get",
            "spinapp",
            "shared",
            "-n",
            &ns,
            "-o",
            "jsonpath={.spec.image}",
        ]);
        let mut winners = 0;
        for output in &same {
            let err = String::from_utf8_lossy(&output.stderr);
            match output.status.code() {
                Some(0) => {
                    let image = report(output)["apply"]["image"]
                        .as_str()
                        .unwrap()
                        .to_string();
                    winners += usize::from(image == spinapp_image);
                }
                Some(1) => {
                    assert!(err.contains("was applied again by another run"), "{err}");
                    assert!(
                        err.contains("This run's image is pushed and intact"),
                        "{err}"
                    );
                    assert!(
                        err.contains(&format!("{}@sha256:", reference("shared"))),
                        "{err}"
                    );
                }
                code => panic!("exit {code:?}: {err}"),
            }
        }
        assert_eq!(winners, 1, "the run whose image stands finished");
        let codes: Vec<Option<i32>> = same.iter().map(|o| o.status.code()).collect();
        eprintln!("the 4 runs of one app exited {codes:?}");
        let deployment = rig.running_image(&ns, "shared");
        assert_eq!(deployment, spinapp_image);

        // One checkout twice: one layout, one digest, both deployed.
        let digests: Vec<String> = twins
            .iter()
            .map(|o| report(o)["push"]["digest"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(digests[0], digests[1]);
        let rebuilt = spin_aks_on(rig, home.path())
            .arg("-f")
            .arg(&twin)
            .args(["build", "--output", "json"])
            .output()
            .unwrap();
        assert_eq!(report(&rebuilt)["digest"], digests[0].as_str());

        // The shared state file remembers every checkout: no update was lost.
        let state: Value =
            serde_json::from_slice(&std::fs::read(home.path().join("state")).unwrap()).unwrap();
        let remembered = state["apps"].as_object().unwrap();
        for dir in apps
            .iter()
            .map(|(_, dir)| dir)
            .chain(&checkouts)
            .chain([&twin, &solo])
        {
            let key = dir.join("spin.toml").canonicalize().unwrap();
            let entry = &remembered[key.to_str().unwrap()];
            assert!(
                entry["pushed"][registry.host()].is_array(),
                "{} missing: {state}",
                key.display()
            );
        }
        // 40 pods a run: the next run needs the nodes' room.
        rig.drop_namespace(&ns);
    }
}
