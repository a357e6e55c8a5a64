//! Shared fixtures of the CKKS integration tests: a key set, random slot vectors, precision checks.

#![allow(dead_code, reason = "each test binary uses a different subset")]
#![allow(clippy::expect_used, reason = "a failed fixture fails the test")]

use ensi_runtime::ckks::numerics::precision::PrecisionStats;
use ensi_runtime::ckks::scheme::{
    Ciphertext, Decryptor, Encryptor, EvaluationKeys, KeyGenerator, NamedSet, Params, PublicKey,
};
use num_complex::Complex64;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha20Rng;

/// Parameters, keys and a deterministic randomness source.
pub struct Fixture {
    pub params: Params,
    pub keygen: KeyGenerator,
    pub public: PublicKey,
    pub keys: EvaluationKeys,
    pub rng: std::cell::RefCell<ChaCha20Rng>,
}

impl Fixture {
    /// Keys for `set` with rotations `rotations` and conjugation.
    pub fn new(set: NamedSet, rotations: &[i64]) -> Self {
        Self::from_params(set.params().expect("named set"), rotations)
    }

    /// Keys for `params` with rotations `rotations` and conjugation.
    pub fn from_params(params: Params, rotations: &[i64]) -> Self {
        let mut keygen = KeyGenerator::from_seed(&params, [42; 32]).expect("keygen");
        let public = keygen.public_key();
        let keys = keygen.evaluation_keys(rotations, true).expect("keys");
        Self {
            params,
            keygen,
            public,
            keys,
            rng: std::cell::RefCell::new(ChaCha20Rng::from_seed([9; 32])),
        }
    }

    /// Uniform complex values, real and imaginary parts in [-1, 1].
    pub fn complex(&self, slots: usize) -> Vec<Complex64> {
        let mut rng = self.rng.borrow_mut();
        (0..slots)
            .map(|_| Complex64::new(rng.random_range(-1.0..1.0), rng.random_range(-1.0..1.0)))
            .collect()
    }

    /// Uniform real values in [-1, 1].
    pub fn real(&self, slots: usize) -> Vec<f64> {
        let mut rng = self.rng.borrow_mut();
        (0..slots).map(|_| rng.random_range(-1.0..1.0)).collect()
    }

    /// Symmetric encryption at the top level and default scale.
    pub fn encrypt(&self, values: &[Complex64]) -> Ciphertext {
        self.encrypt_at(values, self.params.max_level())
    }

    /// Symmetric encryption at `level` and its default scale.
    pub fn encrypt_at(&self, values: &[Complex64], level: usize) -> Ciphertext {
        let mut enc = Encryptor::with_secret_key(&self.params, self.keygen.secret_key())
            .expect("encryptor")
            .with_seed([3; 32]);
        enc.encrypt_complex(values, level, self.params.default_scale(level))
            .expect("encrypt")
    }

    /// Decrypts to complex slots.
    pub fn decrypt(&self, ct: &Ciphertext) -> Vec<Complex64> {
        Decryptor::new(&self.params, self.keygen.secret_key())
            .expect("decryptor")
            .decrypt_complex(ct)
            .expect("decrypt")
    }

    /// Precision of `ct` against `want`.
    pub fn stats(&self, ct: &Ciphertext, want: &[Complex64]) -> PrecisionStats {
        PrecisionStats::complex(want, &self.decrypt(ct)).expect("same length")
    }

    /// Asserts mean L2 precision of at least `min_mean_bits` (and prints the stats).
    pub fn check(&self, what: &str, ct: &Ciphertext, want: &[Complex64], min_mean_bits: f64) {
        let stats = self.stats(ct, want);
        eprintln!("{what:<28} {}", stats.summary());
        assert!(
            stats.l2.mean >= min_mean_bits,
            "{what}: mean precision {:.2} bits < {min_mean_bits} ({})",
            stats.l2.mean,
            stats.summary()
        );
    }
}

/// Slot-wise rotation left by k.
pub fn rotate_left<T: Copy>(values: &[T], k: i64) -> Vec<T> {
    let n = values.len() as i64;
    (0..n)
        .map(|j| values[(j + k).rem_euclid(n) as usize])
        .collect()
}
