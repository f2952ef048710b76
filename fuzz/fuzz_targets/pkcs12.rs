//! The PKCS#12 reader of Key Vault backing secrets: any bytes give certificates or an error that
//! quotes none of them, never a panic. Seeds (fuzz/corpus/pkcs12): OpenSSL's PFX files in each
//! encryption, some without a MAC so that changed bytes reach the SafeContents and the ciphers.
#![no_main]

use libfuzzer_sys::fuzz_target;
use spin_aks::attest::pkcs12::{certificates, Pkcs12Error};

fuzz_target!(|data: &[u8]| {
    if let Err(Pkcs12Error::Malformed(what)) = certificates(data) {
        assert!(!what.contains("0x"), "{what}");
    }
});
