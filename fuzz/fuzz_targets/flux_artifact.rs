//! The Flux artifact reader (`export --with-deploy`'s carried deploy artifacts, checks): any bytes
//! as the gzipped layer, and as the tar inside it, give the files or an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use spin_aks::oci::flux_artifact;

fuzz_target!(|data: &[u8]| {
    let _ = flux_artifact::read_layer(data);
    let _ = flux_artifact::read_tar(data);
});
