//! Nothing half-written: `kill -9` at seeded moments of every writing command leaves the previous
//! output or the new one whole; concurrent pushes keep both records; a full disk fails clearly.

use crate::support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::bundle;
use crate::support::apps::generated_app;
use crate::support::layout;
use crate::support::registry::Registry;
use crate::support::rig::private_rig_with;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sha2::Digest as _;

/// Kills per command: each at a random moment within (a little beyond) one full run.
const KILLS: usize = 12;

/// The binary under test as a plain process (to kill it), with a private state file, cache,
/// home and Docker config under `home`.
fn binary(home: &Path) -> Command {
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("spin-aks"));
    cmd.env("SPIN_AKS_STATE_FILE", home.join("state"))
        .env("SPIN_AKS_CACHE_DIR", home.join("cache"))
        .env("HOME", home)
        .env("DOCKER_CONFIG", home.join("docker"))
        .env_remove("SOURCE_DATE_EPOCH")
        .env_remove("SPIN_AKS_LOG");
    cmd
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(bytes))
}

/// Checks the layout the way a reader would: index.json names one manifest whose bytes, and
/// every blob it lists, exist with the size and digest named. Returns the manifest digest.
fn valid_layout(dir: &Path) -> String {
    let read_json = |path: PathBuf| -> serde_json::Value {
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
        serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{path:?} is not JSON: {e}"))
    };
    let blob = |digest: &str, size: u64| {
        let hex = digest.strip_prefix("sha256:").expect("sha256 digest");
        let path = dir.join("blobs/sha256").join(hex);
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("missing blob {path:?}: {e}"));
        assert_eq!(bytes.len() as u64, size, "size of {path:?}");
        assert_eq!(sha256_hex(&bytes), hex, "digest of {path:?}");
    };
    let index = read_json(dir.join("index.json"));
    let manifest = &index["manifests"][0];
    let digest = manifest["digest"]
        .as_str()
        .expect("manifest digest")
        .to_string();
    blob(&digest, manifest["size"].as_u64().unwrap());
    let manifest = read_json(dir.join("blobs/sha256").join(&digest[7..]));
    let layers = manifest["layers"].as_array().expect("layers");
    for descriptor in layers.iter().chain([&manifest["config"]]) {
        blob(
            descriptor["digest"].as_str().unwrap(),
            descriptor["size"].as_u64().unwrap(),
        );
    }
    digest
}

/// Runs `cmd` to completion; returns how long it took.
fn time_run(cmd: &mut Command) -> Duration {
    let start = Instant::now();
    let status = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "{cmd:?} failed");
    start.elapsed()
}

/// Starts `cmd` and `kill -9`s it after `delay` (if it is still running then).
fn run_and_kill(cmd: &mut Command, delay: Duration) {
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(delay);
    let _ = child.kill(); // SIGKILL
    child.wait().unwrap();
}

/// Random moments spread over `0 ..= 1.2 × full`, repeatable for `seed`.
fn kill_points(seed: u64, full: Duration) -> Vec<Duration> {
    let mut rng = StdRng::seed_from_u64(seed);
    let top = full.as_micros() as u64 * 6 / 5;
    (0..KILLS)
        .map(|_| Duration::from_micros(rng.random_range(0..=top.max(1))))
        .collect()
}

/// Flips the app between two versions (a changed static file), so each build has new output.
fn flip(app: &Path, round: usize) {
    let body = format!("round {}\n", round % 2).repeat(400);
    std::fs::write(app.join("static/file-0003.dat"), body).unwrap();
}

fn build_cmd(home: &Path, app: &Path, layout: &Path) -> Command {
    let mut cmd = binary(home);
    cmd.args(["build", "-q", "-f"])
        .arg(app)
        .arg("--layout")
        .arg(layout);
    cmd
}

#[test]
fn kill_9_during_build_leaves_the_old_or_the_new_layout_whole() {
    let home = tempfile::tempdir().unwrap();
    let app = generated_app(home.path(), 150, 3000);
    let dir = home.path().join("layout");
    flip(&app, 1);
    time_run(&mut build_cmd(home.path(), &app, &dir));
    let mut digests = BTreeMap::new();
    digests.insert(valid_layout(&dir), 1);
    flip(&app, 0);
    let full = time_run(&mut build_cmd(home.path(), &app, &dir));
    digests.insert(valid_layout(&dir), 0);
    for (round, delay) in kill_points(1, full).into_iter().enumerate() {
        let before = valid_layout(&dir);
        flip(&app, round + 1);
        run_and_kill(&mut build_cmd(home.path(), &app, &dir), delay);
        let after = valid_layout(&dir);
        assert!(
            after == before || digests.get(&after) == Some(&((round + 1) % 2)),
            "after a kill at {delay:?} the layout is neither the previous image nor the new one"
        );
    }
    // The next build completes and clears whatever temporary files the kills left.
    flip(&app, 0);
    time_run(&mut build_cmd(home.path(), &app, &dir));
    valid_layout(&dir);
    support::assert_blobs_match_names(&dir);
}

/// `export`, and `export --with-deploy` (the archive also carries the deploy objects): killed at
/// any point, the archive is one of the two exports, and the next run leaves no temporary file.
#[test]
fn kill_9_during_export_leaves_the_previous_archive_whole() {
    let home = tempfile::tempdir().unwrap();
    let app = generated_app(home.path(), 150, 3000);
    let cases: [(&str, &[&str], u64); 2] = [
        ("app.oci.tar", &[], 2),
        (
            "deploy.oci.tar",
            &["--with-deploy", "registry.example/app"],
            6,
        ),
    ];
    for (name, extra, seed) in cases {
        let archive = home.path().join(name);
        let export = |home: &Path| {
            let mut cmd = binary(home);
            cmd.args(["export", "-q", "-y", "-f"])
                .arg(&app)
                .arg("-o")
                .arg(&archive)
                .args(extra);
            cmd
        };
        let mut archives = Vec::new();
        for round in 0..2 {
            flip(&app, round);
            time_run(&mut export(home.path()));
            valid_oci_archive(&archive);
            archives.push(std::fs::read(&archive).unwrap());
        }
        // Exporting rebuilds first: time one export with the build already done, as the killed ones are.
        let full = time_run(&mut export(home.path()));
        for (round, delay) in kill_points(seed, full).into_iter().enumerate() {
            flip(&app, round);
            run_and_kill(&mut export(home.path()), delay);
            let now = std::fs::read(&archive).unwrap();
            assert!(
                archives.contains(&now),
                "{name}: after a kill at {delay:?} the archive is neither export"
            );
        }
        let_just_made_leftovers_age(&[home.path()]);
        time_run(&mut export(home.path()));
        assert_eq!(temp_files_beside(&archive), Vec::<PathBuf>::new(), "{name}");
    }
}

/// Reads `archive` as a reader of an oci-archive would: `oci-layout` and `index.json` are there,
/// every blob's bytes hash to its name, and every manifest the index names is one of them.
fn valid_oci_archive(archive: &Path) {
    let file = std::fs::File::open(archive).unwrap();
    let mut entries = BTreeMap::new();
    for entry in tar::Archive::new(file).entries().unwrap() {
        let mut entry = entry.unwrap_or_else(|e| panic!("{archive:?} is not a tar: {e}"));
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let name = entry.path().unwrap().to_string_lossy().into_owned();
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut bytes)
            .unwrap_or_else(|e| panic!("{archive:?}: {name} is cut short: {e}"));
        entries.insert(name.trim_start_matches("./").to_string(), bytes);
    }
    assert!(entries.contains_key("oci-layout"), "{archive:?}");
    for (name, bytes) in &entries {
        if let Some(hex) = name.strip_prefix("blobs/sha256/") {
            assert_eq!(sha256_hex(bytes), hex, "{archive:?}: the digest of {name}");
        }
    }
    let index: serde_json::Value = serde_json::from_slice(&entries["index.json"]).unwrap();
    for manifest in index["manifests"].as_array().unwrap() {
        let digest = manifest["digest"].as_str().unwrap();
        let blob = format!("blobs/sha256/{}", &digest[7..]);
        assert!(entries.contains_key(&blob), "{archive:?}: {blob} missing");
    }
}

/// `bundle create` rewrites its archive from the previous one and the publishers: killed at any
/// point, the file is the previous bundle or the new one, whole (a valid oci-archive that
/// `bundle inspect` reads), and the next run removes what the killed ones left beside it and in
/// TMPDIR.
#[test]
fn kill_9_during_bundle_create_leaves_the_previous_bundle_whole() {
    let Some(rig) = private_rig_with(&["--bare", "--flux-on-install"]) else {
        return;
    };
    let Some(publishers) = bundle::start_publishers(&rig, &bundle::upstream()) else {
        return;
    };
    // The publishers hold their copies of the rig's charts and modules: the rig is done.
    drop(rig);
    let home = tempfile::tempdir().unwrap();
    let (tmp, out) = (home.path().join("tmp"), home.path().join("out"));
    for dir in [&tmp, &out] {
        std::fs::create_dir(dir).unwrap();
    }
    let archive = out.join("bundle.tar");
    // Two bundles, so that every run rewrites the file: one platform, then two.
    let arches = ["amd64", "amd64,arm64"];
    let create = |round: usize| {
        let mut cmd = binary(home.path());
        cmd.env("TMPDIR", &tmp)
            .args(["bundle", "create", "-q"])
            .args(bundle::create_args(&publishers, &archive))
            .args(["--arch", arches[round % 2]]);
        cmd
    };
    let mut bundles = Vec::new();
    for round in 0..2 {
        time_run(&mut create(round));
        valid_oci_archive(&archive);
        let inspected = support::spin_aks(home.path())
            .args(["bundle", "inspect", "--output", "json"])
            .arg(&archive)
            .output()
            .unwrap();
        assert!(inspected.status.success(), "{inspected:?}");
        bundles.push(std::fs::read(&archive).unwrap());
    }
    // Timed as the killed runs are: each from the other bundle.
    let full = (0..2)
        .map(|round| time_run(&mut create(round)))
        .max()
        .unwrap();
    assert_eq!(
        std::fs::read(&archive).unwrap(),
        bundles[1],
        "not repeatable"
    );
    let mut current = 1;
    for (round, delay) in kill_points(5, full).into_iter().enumerate() {
        // Each killed run writes the bundle the file does not hold.
        run_and_kill(&mut create(1 - current), delay);
        let now = std::fs::read(&archive).unwrap();
        current = (bundles.iter().position(|b| *b == now)).unwrap_or_else(|| {
            panic!("after kill {round} at {delay:?} the bundle is neither the previous one nor the new one")
        });
    }
    let_just_made_leftovers_age(&[&out, &tmp]);
    time_run(&mut create(1));
    assert_eq!(std::fs::read(&archive).unwrap(), bundles[1]);
    assert_eq!(temp_files(&out), Vec::<PathBuf>::new(), "beside the bundle");
    assert_eq!(entries(&tmp), Vec::<PathBuf>::new(), "in TMPDIR");
}

/// Scaffold's in-flight files: staged outputs and the journal of a commit.
fn in_flight(name: &str) -> bool {
    name.ends_with(".spin-aks-new") || name == ".spin-aks-scaffold/journal.json"
}

/// Whether a killed scaffold's journal says it was committing (the next run rolls it forward).
fn committing(out: &Path) -> bool {
    std::fs::read_to_string(out.join(".spin-aks-scaffold/journal.json"))
        .is_ok_and(|journal| journal.contains("\"committing\":true"))
}

#[test]
fn kill_9_during_scaffold_leaves_one_whole_generation() {
    let home = tempfile::tempdir().unwrap();
    let app = generated_app(home.path(), 2, 100);
    let out = home.path().join("deploy");
    let scaffold = |tag: usize| {
        let mut cmd = binary(home.path());
        cmd.env("KUBECONFIG", "/nonexistent/kubeconfig")
            .args(["scaffold", "-y", "--force", "--type", "helm", "-f"])
            .arg(&app)
            .arg("--out")
            .arg(&out)
            .args(["--image", &format!("example.azurecr.io/generated:{tag}")]);
        cmd
    };
    let mut generations = Vec::new();
    let mut full = Duration::ZERO;
    for tag in 0..2 {
        full = time_run(&mut scaffold(tag));
        generations.push(support::scaffold::read_tree(&out));
    }
    let settled = |tree: &BTreeMap<String, Vec<u8>>| {
        let outputs: BTreeMap<_, _> = tree.iter().filter(|(name, _)| !in_flight(name)).collect();
        generations
            .iter()
            .any(|generation| outputs == generation.iter().collect())
    };
    for (round, delay) in kill_points(3, full).into_iter().enumerate() {
        run_and_kill(&mut scaffold(round % 2), delay);
        let tree = support::scaffold::read_tree(&out);
        assert!(
            settled(&tree) || committing(&out),
            "after a kill at {delay:?} the outputs mix generations with no commit to finish: {:?}",
            tree.keys().collect::<Vec<_>>()
        );
    }
    time_run(&mut scaffold(0));
    assert_eq!(
        support::scaffold::read_tree(&out),
        generations[0],
        "the next run finishes or discards what a killed one left"
    );
}

#[test]
fn two_concurrent_pushes_of_the_same_app_keep_both_records() {
    let (Some(_), Some(registry)) = (support::tool("skopeo"), Registry::open()) else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("layout");
    layout::generate(&dir, "1.0.0", 20, &[64, 4096, 30_000]);
    for round in 0..4 {
        let pushes: Vec<_> = ["a", "b"]
            .map(|name| {
                binary(home.path())
                    .args(["push", "-q", "--from-layout"])
                    .arg(&dir)
                    .arg(format!("{}/round{round}/{name}:1", registry.host()))
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .into_iter()
            .collect();
        for push in pushes {
            let output = push.wait_with_output().unwrap();
            assert!(
                output.status.success(),
                "{}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        let state: serde_json::Value =
            serde_json::from_slice(&std::fs::read(home.path().join("state")).unwrap()).unwrap();
        let app = state["apps"].as_object().unwrap().values().next().unwrap();
        let repositories = app["pushed"][registry.host()].as_array().unwrap();
        for name in ["a", "b"] {
            let repository = format!("round{round}/{name}");
            assert!(
                repositories.iter().any(|r| r == repository.as_str()),
                "{repository} missing from {state}"
            );
        }
    }
}

#[test]
fn a_full_disk_fails_clearly_and_keeps_the_previous_layout() {
    let Some(disk) = SmallDisk::mount(2) else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let app = generated_app(home.path(), 20, 1000);
    let dir = disk.path.join("layout");
    time_run(&mut build_cmd(home.path(), &app, &dir));
    let before = valid_layout(&dir);
    for i in 0..40 {
        let bytes = support::apps::bytes(1000 + i, 100_000);
        std::fs::write(app.join(format!("static/big-{i}.dat")), bytes).unwrap();
    }
    let output = build_cmd(home.path(), &app, &dir).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("No space left on device"), "{stderr}");
    assert!(
        stderr.contains(disk.path.to_str().unwrap()),
        "names where: {stderr}"
    );
    assert_eq!(valid_layout(&dir), before);
}

/// A tmpfs of a few MiB, unmounted on drop; `None` (skipping) where mounting is not permitted.
struct SmallDisk {
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(mebibytes: u32) -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("disk");
        std::fs::create_dir(&path).unwrap();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mebibytes}m"), "tmpfs"])
            .arg(&path)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !mounted {
            support::skip("cannot mount a tmpfs here (needs root)");
            return None;
        }
        Some(SmallDisk { path, _dir: dir })
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.path).status();
    }
}

/// Every `.tmp…` file under `dir` (the layout's and the archive's in-flight files).
fn temp_files(dir: &Path) -> Vec<PathBuf> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with(".tmp"))
        .map(|e| e.into_path())
        .collect()
}

/// The `.tmp…` files beside `file`: what a killed writer of it left, which the next one removes.
fn temp_files_beside(file: &Path) -> Vec<PathBuf> {
    let dir = file.parent().unwrap();
    (entries(dir).into_iter())
        .filter(|e| e.file_name().unwrap().to_string_lossy().starts_with(".tmp"))
        .collect()
}

/// Waits out what a kill right after a temporary file or work directory was made leaves in
/// `dirs`: still empty, it is left alone for 2 s (`interrupt::JUST_MADE`: its maker may not have
/// locked it yet), and only a writer after that removes it.
fn let_just_made_leftovers_age(dirs: &[&Path]) {
    let empty = |path: &PathBuf| match std::fs::metadata(path) {
        Ok(meta) if meta.is_dir() => std::fs::read_dir(path).is_ok_and(|mut d| d.next().is_none()),
        Ok(meta) => meta.len() == 0,
        Err(_) => false,
    };
    let leftovers = dirs.iter().flat_map(|dir| entries(dir));
    if leftovers
        .filter(|path| {
            let name = path.file_name().unwrap().to_string_lossy();
            name.starts_with(".tmp-spin-aks-") || name.starts_with("spin-aks-work-")
        })
        .any(|path| empty(&path))
    {
        std::thread::sleep(Duration::from_millis(2200));
    }
}

/// Everything in `dir` (the private TMPDIR).
fn entries(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect()
}

/// Starts `cmd` in its own process group, waits until `busy` sees it mid-way (a temporary file
/// being written), sends `signal` to the whole group as a terminal's Ctrl-C does, and returns
/// its exit code and stderr.
fn interrupt(cmd: &mut Command, busy: impl Fn() -> bool, signal: i32) -> (Option<i32>, String) {
    use std::os::unix::process::CommandExt;
    let mut child = cmd
        .process_group(0)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !busy() {
        assert!(
            child.try_wait().unwrap().is_none(),
            "{cmd:?} ended before it was seen writing a temporary file"
        );
        assert!(Instant::now() < deadline, "{cmd:?} never got busy");
        std::thread::sleep(Duration::from_millis(2));
    }
    // SAFETY: kill(2) on the child's own process group; no memory is involved.
    let sent = unsafe { libc::kill(-(child.id() as i32), signal) };
    assert_eq!(sent, 0, "cannot signal the process group");
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    (output.status.code(), stderr)
}

/// Ctrl-C (SIGINT to the process group) or SIGTERM in the middle of `build`, `export` and
/// `push --from-archive`: exit 130 (143) saying it was interrupted, and not one temporary file
/// left in the layout, beside `-o`, or in TMPDIR. Temporary files are caught mid-write.
#[test]
fn ctrl_c_mid_way_leaves_no_temporary_file_anywhere() {
    let home = tempfile::tempdir().unwrap();
    // Four 24 MB static files: each takes a while to hash and write into a blob.
    let app = generated_app(home.path(), 5, 24 << 20);
    let tmp = home.path().join("tmp");
    let out = home.path().join("out");
    let layout = home.path().join("layout");
    let app_layout = app.join(".spin-aks/oci");
    for dir in [&tmp, &out] {
        std::fs::create_dir(dir).unwrap();
    }
    let archive = home.path().join("whole.oci.tar");
    let run = |args: &[&str]| {
        let mut cmd = binary(home.path());
        cmd.env("TMPDIR", &tmp).args(args).arg("-f").arg(&app);
        cmd
    };
    time_run(run(&["export", "-o", archive.to_str().unwrap()]).env_remove("TMPDIR"));
    std::fs::remove_dir_all(&app_layout).unwrap();

    let in_tmp = || !entries(&tmp).is_empty();
    let in_layout = || !temp_files(&layout).is_empty();
    let beside_out = || !temp_files(&out).is_empty();
    let archive_arg = archive.to_str().unwrap();
    let layout_arg = layout.to_str().unwrap();
    let out_arg = out.join("app.oci.tar");
    let out_arg = out_arg.to_str().unwrap();
    let busy: [&dyn Fn() -> bool; 3] = [&in_layout, &beside_out, &in_tmp];
    let cases = [
        (
            "build",
            run(&["build", "--layout", layout_arg]),
            0,
            libc::SIGINT,
        ),
        (
            "build",
            run(&["build", "--layout", layout_arg]),
            0,
            libc::SIGTERM,
        ),
        ("export", run(&["export", "-o", out_arg]), 1, libc::SIGINT),
        (
            "push",
            run(&["push", "localhost:1/a:1", "--from-archive", archive_arg]),
            2,
            libc::SIGINT,
        ),
    ];
    for (name, mut cmd, seen, signal) in cases {
        let (code, said) = match signal {
            libc::SIGINT => (130, "Ctrl-C (SIGINT)"),
            _ => (143, "SIGTERM"),
        };
        let _ = std::fs::remove_dir_all(&layout);
        let (exit, stderr) = interrupt(&mut cmd, busy[seen], signal);
        assert_eq!(exit, Some(code), "{name}: {stderr}");
        assert!(
            stderr.contains(&format!("interrupted by {said}")),
            "{name}: {stderr}"
        );
        for dir in [&layout, &out, &app_layout] {
            assert_eq!(temp_files(dir), Vec::<PathBuf>::new(), "{name}");
        }
        assert_eq!(entries(&tmp), Vec::<PathBuf>::new(), "{name}: TMPDIR");
        assert!(!out.join("app.oci.tar").exists(), "{name}: a half archive");
    }
}

/// Two builds into one layout at once (different formats, so different blobs): the second
/// waits for the first, saying so with the layout's path and the other process, and both end
/// well; before, each swept the other's in-flight blobs and one failed.
#[test]
fn a_second_build_into_the_same_layout_waits_for_the_first() {
    let home = tempfile::tempdir().unwrap();
    let app = generated_app(home.path(), 5, 8 << 20);
    let dir = home.path().join("layout");
    let build = |format: &str| {
        let mut cmd = binary(home.path());
        cmd.args(["build", "--format", format, "--layout"])
            .arg(&dir)
            .arg("-f")
            .arg(&app)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        cmd
    };
    let mut first = build("spin").spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while temp_files(&dir).is_empty() {
        assert!(
            first.try_wait().unwrap().is_none(),
            "the first build ended before it was seen writing"
        );
        assert!(
            Instant::now() < deadline,
            "the first build never started writing"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    let second = build("image").spawn().unwrap();
    let first_pid = first.id();
    let (first, second) = (
        first.wait_with_output().unwrap(),
        second.wait_with_output().unwrap(),
    );
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(second.status.success(), "{stderr}");
    let waiting = format!(
        "waiting for the OCI layout {}: spin-aks (pid {first_pid}) is writing into it",
        dir.display()
    );
    assert!(stderr.contains(&waiting), "{stderr}");
    let digest = valid_layout(&dir);
    support::assert_blobs_match_names(&dir);
    // The second build ended last: its plain image (tar+gzip layers, no wasm layer) is the one.
    let manifest = std::fs::read_to_string(dir.join("blobs/sha256").join(&digest[7..])).unwrap();
    assert!(manifest.contains("tar+gzip"), "{manifest}");
    assert!(!manifest.contains("layer.v1+wasm"), "{manifest}");
}

/// The state file is written at the end of a push (the repository pushed to, the digest): a
/// push killed at any point leaves it whole, as it was before or after that push, and every
/// record written before is still there.
#[test]
fn kill_9_during_push_leaves_the_state_file_whole() {
    let Some(registry) = Registry::open() else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("layout");
    layout::generate(&dir, "1.0.0", 12, &[64, 4096, 30_000]);
    let push = |repository: &str| {
        let mut cmd = binary(home.path());
        cmd.args(["push", "-q", "--from-layout"])
            .arg(&dir)
            .arg(format!("{}/{repository}:1", registry.host()));
        cmd
    };
    let full = time_run(&mut push("first/app"));
    let state = home.path().join("state");
    let mut records = 1;
    for (round, delay) in kill_points(3, full).into_iter().enumerate() {
        run_and_kill(&mut push(&format!("round{round}/app")), delay);
        let text = std::fs::read(&state).unwrap();
        let parsed: serde_json::Value = serde_json::from_slice(&text)
            .unwrap_or_else(|e| panic!("after a kill at {delay:?} the state file is torn: {e}"));
        let app = parsed["apps"].as_object().unwrap().values().next().unwrap();
        let pushed: Vec<&str> = app["pushed"][registry.host()]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap())
            .collect();
        assert!(pushed.contains(&"first/app"), "{parsed}");
        assert!(pushed.len() >= records, "a record was lost: {parsed}");
        records = pushed.len();
    }
    let_just_made_leftovers_age(&[state.parent().unwrap()]);
    time_run(&mut push("last/app"));
    assert_eq!(temp_files_beside(&state), Vec::<PathBuf>::new());
}

/// `cluster get-credentials` merges into the user's kubeconfig: killed at any point, the file is
/// the one before or the one after, never a torn one, and nothing merged before is lost.
#[tokio::test(flavor = "multi_thread")]
async fn kill_9_during_get_credentials_leaves_the_kubeconfig_whole() {
    use crate::support::arm::entra_user_kubeconfig;
    use crate::support::arm_cli::{Rig, AKS_TOKEN};
    use crate::support::kubeapi::FakeKubeApi;
    const SUB: &str = "11111111-0000-0000-0000-000000000001";
    let rig = Rig::start(SUB).await;
    let api = FakeKubeApi::start(AKS_TOKEN).await;
    for i in 0..=KILLS {
        let name = format!("c{i}");
        let kubeconfig = entra_user_kubeconfig(&name, "rg1", &api.server, &api.ca_pem);
        rig.arm.add_cluster(SUB, "rg1", &name, true, &kubeconfig);
    }
    let file = rig.home.path().join("kube/config");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    let other = "apiVersion: v1\nkind: Config\nclusters:\n- name: other\n  cluster:\n    server: https://other.example:6443\ncontexts:\n- name: other\n  context:\n    cluster: other\n    user: other\nusers:\n- name: other\n  user:\n    token: other-users-token\ncurrent-context: other\n";
    std::fs::write(&file, other).unwrap();
    let get = |cluster: &str| {
        let args = [
            "cluster",
            "get-credentials",
            "-y",
            "-q",
            "--subscription",
            SUB,
            "--resource-group",
            "rg1",
            "--cluster",
            cluster,
            "--file",
            file.to_str().unwrap(),
        ];
        let mut cmd = tokio::process::Command::from(rig.command(&args));
        cmd.stdout(Stdio::null()).stderr(Stdio::null());
        cmd
    };
    let start = Instant::now();
    assert!(get("c0").status().await.unwrap().success());
    let full = start.elapsed();
    let contexts = |text: &str| -> Vec<String> {
        let config: serde_json::Value = serde_saphyr::from_str(text)
            .unwrap_or_else(|e| panic!("the kubeconfig is torn: {e}\n{text}"));
        config["contexts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap().to_string())
            .collect()
    };
    let mut merged = contexts(other).len() + 1;
    for (round, delay) in kill_points(4, full).into_iter().enumerate() {
        let mut child = get(&format!("c{}", round + 1)).spawn().unwrap();
        tokio::time::sleep(delay).await;
        let _ = child.start_kill();
        child.wait().await.unwrap();
        let text = std::fs::read_to_string(&file).unwrap();
        let now = contexts(&text);
        assert!(text.contains("other-users-token"), "{text}");
        assert!(now.contains(&"other".to_string()), "{now:?}");
        assert!(now.len() >= merged, "a merged context was lost: {now:?}");
        merged = now.len();
    }
    let_just_made_leftovers_age(&[file.parent().unwrap()]);
    assert!(get("c0").status().await.unwrap().success());
    assert_eq!(temp_files_beside(&file), Vec::<PathBuf>::new());
}
