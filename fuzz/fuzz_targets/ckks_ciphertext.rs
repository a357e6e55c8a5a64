//! Fuzzes `ciphertext_from_bytes`; a ciphertext that loads is decrypted and rescaled.
#![no_main]

use ensi_fuzz::{file_bytes, tiny_params};
use ensi_runtime::ckks::scheme::serialize::{Kind, ciphertext_from_bytes};
use ensi_runtime::ckks::scheme::{Decryptor, EvaluationKeys, Evaluator, KeyGenerator};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let params = tiny_params();
    let Some(bytes) = file_bytes(input, Kind::Ciphertext, &params) else { return };
    let Ok(ct) = ciphertext_from_bytes(&params, &bytes) else { return };
    let keygen = KeyGenerator::from_seed(&params, [1; 32]).expect("keygen");
    let _ = Decryptor::new(&params, keygen.secret_key()).expect("dec").decrypt_complex(&ct);
    let keys = EvaluationKeys::empty(&params);
    let eval = Evaluator::new(&params, &keys).expect("evaluator");
    let _ = eval.rescale(&ct);
    let _ = eval.add(&ct, &ct);
});
