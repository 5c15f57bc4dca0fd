//! Checkpoint files (`craik receipts verify --checkpoint FILE`) from
//! arbitrary bytes: checked against no key, and against a trusted one.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

/// Base64 of an Ed25519 public key (the key of fuzz/seeds/checkpoint/valid.json).
const TRUSTED: &str = "4qwL+HSpSP3OU3wNNL/mHC6enPh9UVYeioW1WNMpl+k=";

fuzz_target!(|data: &[u8]| {
    let path = Path::new("fuzz.checkpoint");
    for trusted in [None, Some(TRUSTED)] {
        let _ = craik::audit::checkpoint::parse(data, path, trusted);
    }
});
