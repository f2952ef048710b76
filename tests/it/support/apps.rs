//! Spin apps for tests: the bundled example copied somewhere fresh, and generated apps with many
//! files, all with real (if tiny) WebAssembly.

use std::path::{Path, PathBuf};

/// The bundled example app's directory in the repository.
pub fn example_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/hello-aks")
}

/// Copies a directory tree (files only, no `.spin-aks`), giving every file the mtime `mtime`.
pub fn copy_app(from: &Path, to: &Path, mtime: std::time::SystemTime) {
    for entry in walkdir::WalkDir::new(from).sort_by_file_name() {
        let entry = entry.unwrap();
        let relative = entry.path().strip_prefix(from).unwrap();
        if relative.starts_with(".spin-aks") {
            continue;
        }
        let target = to.join(relative);
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
            std::fs::File::options()
                .write(true)
                .open(&target)
                .unwrap()
                .set_modified(mtime)
                .unwrap();
        }
    }
}

/// A copy of the example app in `dir`.
pub fn example_copy(dir: &Path) -> PathBuf {
    let app = dir.join("hello-aks");
    copy_app(&example_dir(), &app, std::time::SystemTime::now());
    app
}

/// A minimal valid wasm module whose bytes differ by `seed`.
pub fn wasm(seed: u32) -> Vec<u8> {
    wat::parse_str(format!("(module (global i32 (i32.const {seed})))")).unwrap()
}

/// A component exporting `interface` with one function `greet` returning `result` (a WAT type),
/// and importing `host` (an interface with one function) when given.
pub fn greeter(interface: &str, result: &str, host: Option<&str>) -> Vec<u8> {
    let import = host.map_or(String::new(), |h| {
        format!("(import \"{h}\" (instance (export \"get\" (func (result u32)))))")
    });
    let core = if result == "u64" { "i64" } else { "i32" };
    wat::parse_str(format!(
        r#"(component
          {import}
          (core module $m (func (export "greet") (result {core}) ({core}.const 42)))
          (core instance $i (instantiate $m))
          (func $greet (result {result}) (canon lift (core func $i "greet")))
          (instance $out (export "greet" (func $greet)))
          (export "{interface}" (instance $out)))"#
    ))
    .unwrap()
}

/// A component importing `test:greet/greeter` (`greet: func() -> u32`) and exporting
/// `test:app/runner` (`run: func() -> u32`, calling greet).
pub fn greeted() -> Vec<u8> {
    wat::parse_str(
        r#"(component
          (import "test:greet/greeter" (instance $g (export "greet" (func (result u32)))))
          (alias export $g "greet" (func $greet))
          (core func $lowered (canon lower (func $greet)))
          (core instance $host (export "greet" (func $lowered)))
          (core module $m
            (import "host" "greet" (func $greet (result i32)))
            (func (export "run") (result i32) (call $greet)))
          (core instance $i (instantiate $m (with "host" (instance $host))))
          (func $run (result u32) (canon lift (core func $i "run")))
          (instance $out (export "run" (func $run)))
          (export "test:app/runner" (instance $out)))"#,
    )
    .unwrap()
}

/// Deterministic pseudo-random bytes.
pub fn bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

/// Writes a two-component app with `files` static files (a mix of inlined and layered sizes,
/// some duplicates) and returns its directory.
pub fn generated_app(dir: &Path, files: usize, file_size: usize) -> PathBuf {
    let app = dir.join("generated");
    std::fs::create_dir_all(app.join("static/nested")).unwrap();
    std::fs::write(app.join("web.wasm"), wasm(1)).unwrap();
    std::fs::write(app.join("worker.wasm"), wasm(2)).unwrap();
    for i in 0..files {
        let size = if i % 10 == 0 { 64 } else { file_size };
        let seed = if i % 25 == 0 { 7 } else { i as u64 };
        let sub = if i % 2 == 0 {
            "static"
        } else {
            "static/nested"
        };
        std::fs::write(
            app.join(format!("{sub}/file-{i:04}.dat")),
            bytes(seed, size),
        )
        .unwrap();
    }
    std::fs::write(
        app.join("spin.toml"),
        r#"spin_manifest_version = 2

[application]
name = "generated"
version = "1.0.0"

[[trigger.http]]
route = "/..."
component = "web"

[[trigger.redis]]
address = "redis://redis:6379"
channel = "jobs"
component = "worker"

[component.web]
source = "web.wasm"
files = ["static/**/*"]

[component.worker]
source = "worker.wasm"
files = [{ source = "static/nested", destination = "/data" }]
"#,
    )
    .unwrap();
    app
}
