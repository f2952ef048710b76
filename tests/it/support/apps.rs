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

/// `wasm` with a custom section `name` holding `data` appended (WebAssembly core spec 5.5.3: id
/// 0, size, name, bytes; allowed anywhere in a module or a component).
pub fn with_custom_section(mut wasm: Vec<u8>, name: &str, data: &[u8]) -> Vec<u8> {
    let mut section = leb128(name.len());
    section.extend_from_slice(name.as_bytes());
    section.extend_from_slice(data);
    wasm.push(0);
    wasm.extend(leb128(section.len()));
    wasm.extend(section);
    wasm
}

fn leb128(mut n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

/// The WIT of the greeter interface [`greeter`] and [`greeted`] share, and of the runner.
const GREET_WIT: &str = "package test:greet;\ninterface greeter { greet: func() -> u32; }\n";

/// A core module as a Spin SDK's wit-bindgen leaves it before Spin makes it into a component:
/// the module `fields` (WAT) and a `component-type` section for world `world` of package
/// `test:app` (WIT `wit`, which may use `test:greet/greeter`), naming wit-bindgen `bindgen` as
/// its maker where given.
pub fn core_module(wit: &str, world: &str, fields: &str, bindgen: Option<&str>) -> Vec<u8> {
    let mut resolve = wit_parser::Resolve::default();
    resolve.push_str("greet.wit", GREET_WIT).unwrap();
    let package = resolve
        .push_str("app.wit", &format!("package test:app;\n{wit}"))
        .unwrap();
    let world = resolve.select_world(&[package], Some(world)).unwrap();
    let mut producers = wasm_metadata::Producers::empty();
    if let Some(version) = bindgen {
        producers.add("processed-by", "wit-bindgen-rust", version);
    }
    let section = wit_component::metadata::encode(
        &resolve,
        world,
        wit_component::StringEncoding::UTF8,
        Some(&producers),
    )
    .unwrap();
    let module = wat::parse_str(format!("(module {fields})")).unwrap();
    with_custom_section(module, "component-type", &section)
}

/// [`greeted`] as a core module made with wit-bindgen 0.41.0: it imports `test:greet/greeter`,
/// exports `test:app/runner`, and reads the environment size through WASI preview 1
/// (`environ_sizes_get`), which the adapter answers with `wasi:cli/environment`.
pub fn greeted_module(bindgen: Option<&str>, extra: &str) -> Vec<u8> {
    core_module(
        "interface runner { run: func() -> u32; }\nworld api { import test:greet/greeter; export runner; }",
        "api",
        &format!(
            r#"(import "test:greet/greeter" "greet" (func $greet (result i32)))
            (import "wasi_snapshot_preview1" "environ_sizes_get" (func $sizes (param i32 i32) (result i32)))
            {extra}
            (memory (export "memory") 1)
            (func (export "test:app/runner#run") (result i32)
              (drop (call $sizes (i32.const 0) (i32.const 4)))
              (call $greet))"#
        ),
        bindgen,
    )
}

/// [`greeter`] of `test:greet/greeter` (`u32`) as a core module made with wit-bindgen 0.41.0.
pub fn greeter_module() -> Vec<u8> {
    core_module(
        "world lib { export test:greet/greeter; }",
        "lib",
        r#"(func (export "test:greet/greeter#greet") (result i32) (i32.const 42))"#,
        Some("0.41.0"),
    )
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
