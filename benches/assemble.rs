//! Assembly throughput: a generated app (wasm plus many data files) written into an OCI layout
//! in both formats. Throughput is reported against the app's input bytes.

use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use spin_aks::app::{self, compat};
use spin_aks::build::assemble::AssembleOptions;
use spin_aks::build::{plain_image, spin_artifact};
use spin_aks::oci::Layout;

const FILES: usize = 100;
const FILE_SIZE: usize = 200 * 1024;

fn generate(dir: &Path) {
    std::fs::create_dir_all(dir.join("static")).unwrap();
    std::fs::write(dir.join("app.wasm"), b"\0asm\x01\0\0\0").unwrap();
    for i in 0..FILES {
        let bytes: Vec<u8> = (0..FILE_SIZE).map(|j| (i * 31 + j * 7) as u8).collect();
        std::fs::write(dir.join(format!("static/{i:03}.bin")), bytes).unwrap();
    }
    std::fs::write(
        dir.join("spin.toml"),
        "spin_manifest_version = 2\n[application]\nname = \"bench\"\nversion = \"1.0.0\"\n\
         [[trigger.http]]\nroute = \"/...\"\ncomponent = \"web\"\n\
         [component.web]\nsource = \"app.wasm\"\nfiles = [\"static/*\"]\n",
    )
    .unwrap();
}

fn assembly(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path());
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let app = app::load(dir.path()).unwrap();
    let resolved = runtime
        .block_on(app::resolve(app, &mut Vec::new()))
        .unwrap();
    let options = AssembleOptions {
        source_date_epoch: None,
        archive_layers: false,
        target: compat::target_shim(compat::DEFAULT_TARGET_SHIM).unwrap(),
    };
    let mut group = c.benchmark_group("assemble");
    group.throughput(Throughput::Bytes((FILES * FILE_SIZE) as u64));
    group.sample_size(10);
    group.bench_function("spin_artifact", |b| {
        b.iter(|| {
            let out = tempfile::tempdir_in(dir.path()).unwrap();
            let layout = Layout::create(out.path()).unwrap();
            spin_artifact::assemble(&resolved, &layout, &options, &mut Vec::new()).unwrap()
        })
    });
    group.bench_function("plain_image", |b| {
        b.iter(|| {
            let out = tempfile::tempdir_in(dir.path()).unwrap();
            let layout = Layout::create(out.path()).unwrap();
            plain_image::assemble(&resolved, &layout, &options, &mut Vec::new()).unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, assembly);
criterion_main!(benches);
