//! The example app's committed wasm is exactly what its WAT sources compile to.

use std::path::Path;

#[test]
fn committed_example_wasm_matches_its_wat_source() {
    let app = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/hello-aks");
    for name in ["hello", "api"] {
        let wat = std::fs::read_to_string(app.join(format!("src/{name}.wat"))).unwrap();
        let compiled = wat::parse_str(&wat).unwrap();
        let committed = std::fs::read(app.join(format!("wasm/{name}.wasm"))).unwrap();
        assert_eq!(
            compiled, committed,
            "examples/hello-aks/wasm/{name}.wasm is stale: regenerate it from src/{name}.wat"
        );
    }
}
