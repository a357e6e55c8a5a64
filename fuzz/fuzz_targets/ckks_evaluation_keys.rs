//! Fuzzes `evaluation_keys_from_bytes`; a key set that loads is used for one rotation.
#![no_main]

use ensi_fuzz::{file_bytes, tiny_params};
use ensi_runtime::ckks::scheme::serialize::{Kind, evaluation_keys_from_bytes};
use ensi_runtime::ckks::scheme::{Encryptor, Evaluator, KeyGenerator};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let params = tiny_params();
    let Some(bytes) = file_bytes(input, Kind::EvaluationKeys, &params) else { return };
    let Ok(keys) = evaluation_keys_from_bytes(&params, &bytes) else { return };
    let keygen = KeyGenerator::from_seed(&params, [1; 32]).expect("keygen");
    let mut enc = Encryptor::with_secret_key(&params, keygen.secret_key()).expect("enc").with_seed([2; 32]);
    let ct = enc.encrypt_real_top(&[0.5; 8]).expect("encrypt");
    let eval = Evaluator::new(&params, &keys).expect("same parameters");
    for g in keys.galois_elements() {
        let element = params.ring().galois_element(g).expect("validated on load");
        let _ = eval.apply_galois(&ct, element);
    }
    let _ = eval.mul_relin(&ct, &ct);
});
