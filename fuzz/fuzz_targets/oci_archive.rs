//! The oci-archive reader (`push --from-archive`): any bytes as the archive; unpacking never
//! panics and never writes outside its directory (`..`, absolute paths, links, huge sizes).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().expect("temp dir");
    let archive = dir.path().join("app.tar");
    std::fs::write(&archive, data).expect("write archive");
    let inside = dir.path().join("inside");
    std::fs::create_dir(&inside).expect("unpack dir");
    if let Ok(layout) = spin_aks::oci::archive::unpack(&archive, &inside) {
        let _ = layout.image(None);
    }
    let mut names: Vec<_> = std::fs::read_dir(dir.path())
        .expect("list")
        .map(|e| e.expect("entry").file_name())
        .collect();
    names.sort();
    assert_eq!(names, ["app.tar", "inside"], "nothing lands beside the unpack directory");
});
