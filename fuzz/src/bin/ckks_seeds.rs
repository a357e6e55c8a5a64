//! Writes valid seed files for the CKKS fuzz targets into `seeds/<target>/` (selector byte 0 + file).

use std::path::Path;

use ensi_fuzz::tiny_params;
use ensi_runtime::ckks::scheme::serialize::{
    ciphertext_to_bytes, evaluation_keys_to_bytes, params_literal_to_bytes, public_key_to_bytes,
    secret_key_to_bytes,
};
use ensi_runtime::ckks::scheme::{Encryptor, KeyGenerator};

fn put(target: &str, name: &str, file: &[u8]) {
    let dir = Path::new("seeds").join(target);
    std::fs::create_dir_all(&dir).expect("seed folder");
    let mut bytes = vec![0u8];
    bytes.extend_from_slice(file);
    std::fs::write(dir.join(name), bytes).expect("seed file");
}

fn main() {
    let params = tiny_params();
    let mut keygen = KeyGenerator::from_seed(&params, [1; 32]).expect("keygen");
    put("ckks_params_literal", "tiny", &params_literal_to_bytes(params.literal()));
    put("ckks_public_key", "tiny", &public_key_to_bytes(&keygen.public_key()));
    let keys = keygen.evaluation_keys(&[1], true).expect("keys");
    put("ckks_evaluation_keys", "tiny", &evaluation_keys_to_bytes(&keys));
    let mut enc = Encryptor::with_secret_key(&params, keygen.secret_key()).expect("enc").with_seed([2; 32]);
    let ct = enc.encrypt_real_top(&[0.25; 8]).expect("encrypt");
    put("ckks_ciphertext", "full", &ciphertext_to_bytes(&params, &ct, false));
    put("ckks_ciphertext", "seeded", &ciphertext_to_bytes(&params, &ct, true));
    put("ckks_secret_key", "tiny", &secret_key_to_bytes(keygen.secret_key()));
}
