//! Fuzzes `secret_key_from_bytes` (feature `serialize-secret`).
#![no_main]

use ensi_fuzz::{file_bytes, tiny_params};
use ensi_runtime::ckks::scheme::serialize::{Kind, secret_key_from_bytes};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let params = tiny_params();
    let Some(bytes) = file_bytes(input, Kind::SecretKey, &params) else { return };
    let _ = secret_key_from_bytes(&params, &bytes);
});
