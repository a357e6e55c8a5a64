//! Fuzzes `public_key_from_bytes`: any input is an error or a public key, never a panic.
#![no_main]

use ensi_fuzz::{file_bytes, tiny_params};
use ensi_runtime::ckks::scheme::serialize::{Kind, public_key_from_bytes};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let params = tiny_params();
    let Some(bytes) = file_bytes(input, Kind::PublicKey, &params) else { return };
    let _ = public_key_from_bytes(&params, &bytes);
});
