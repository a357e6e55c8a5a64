//! Encryption (symmetric with a seeded `a`, or public-key) and decryption with decoding from the fewest limbs.

use num_complex::Complex64;
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};
use zeroize::Zeroize;

use crate::ckks::arith::sampling::{gaussian_coeffs, os_rng, ternary_coeffs};
use crate::ckks::arith::{Representation, RnsPoly};

use super::Error;
use super::ciphertext::{Ciphertext, Plaintext};
use super::encoder::{Encoder, lift};
use super::keys::{PublicKey, SecretKey, check_hash};
use super::params::Params;

#[derive(Clone, Copy)]
enum Key<'k> {
    Public(&'k PublicKey),
    Secret(&'k SecretKey),
}

/// Encrypts plaintexts or slot values under a public key or (client side, best precision)
/// the secret key.
pub struct Encryptor<'k> {
    params: Params,
    encoder: Encoder,
    key: Key<'k>,
    rng: ChaCha20Rng,
}

impl std::fmt::Debug for Encryptor<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.key {
            Key::Public(_) => "public",
            Key::Secret(_) => "symmetric",
        };
        write!(f, "Encryptor({kind}, {})", self.params)
    }
}

impl<'k> Encryptor<'k> {
    /// Public-key encryption: c = v*(b, a) + (m + e0, e1), v ternary.
    pub fn with_public_key(params: &Params, key: &'k PublicKey) -> Result<Self, Error> {
        check_hash(params, key.params_hash, "public key")?;
        Self::build(params, Key::Public(key))
    }

    /// Symmetric encryption: c = (m + e - a s, a) with `a` expanded from a fresh seed (the
    /// ciphertext can ship the seed). The fresh error is just e.
    pub fn with_secret_key(params: &Params, key: &'k SecretKey) -> Result<Self, Error> {
        check_hash(params, key.params_hash, "secret key")?;
        Self::build(params, Key::Secret(key))
    }

    fn build(params: &Params, key: Key<'k>) -> Result<Self, Error> {
        Ok(Self {
            params: params.clone(),
            encoder: Encoder::new(params),
            key,
            rng: os_rng()?,
        })
    }

    /// Replaces the randomness by a seeded stream (reproducible tests). Never for real data.
    pub fn with_seed(mut self, seed: [u8; 32]) -> Self {
        self.rng = ChaCha20Rng::from_seed(seed);
        self
    }

    /// Encodes and encrypts complex slot values at `level` and `scale`; the encryption
    /// error is added to the integer coefficients before the one NTT.
    pub fn encrypt_complex(
        &mut self,
        values: &[Complex64],
        level: usize,
        scale: f64,
    ) -> Result<Ciphertext, Error> {
        let max = self.params.max_level();
        if level > max {
            return Err(Error::LevelAboveTop { level, max });
        }
        let mut coeffs = self.encoder.integer_coeffs(values, scale)?;
        let error = gaussian_coeffs(&mut self.rng, self.params.n());
        for (c, &e) in coeffs.iter_mut().zip(error.iter()) {
            *c += i128::from(e);
        }
        let m_plus_e = self.encoder.poly_from_integers(&coeffs, level, false)?;
        Ok(self.finish(m_plus_e, scale, values.len()))
    }

    /// Encodes and encrypts real slot values at `level` and `scale`.
    pub fn encrypt_real(
        &mut self,
        values: &[f64],
        level: usize,
        scale: f64,
    ) -> Result<Ciphertext, Error> {
        self.encrypt_complex(&lift(values), level, scale)
    }

    /// Encrypts real values at the top level and its default scale.
    pub fn encrypt_real_top(&mut self, values: &[f64]) -> Result<Ciphertext, Error> {
        let top = self.params.max_level();
        self.encrypt_real(values, top, self.params.default_scale(top))
    }

    /// Encrypts a plaintext (it must be over Q only).
    pub fn encrypt(&mut self, plaintext: &Plaintext) -> Result<Ciphertext, Error> {
        check_hash(&self.params, plaintext.params_hash, "plaintext")?;
        if plaintext.has_special() {
            return Err(Error::InvalidArgument(
                "a plaintext over Q*P cannot be encrypted; encode it over Q".into(),
            ));
        }
        let ring = self.params.ring();
        let error = gaussian_coeffs(&mut self.rng, self.params.n());
        let mut e = small_poly_ntt(&self.params, &error, plaintext.level + 1);
        e.add_assign(ring, &plaintext.poly);
        Ok(self.finish(e, plaintext.scale, plaintext.slots))
    }

    /// An encryption of zero at `level`, `scale`, `slots`.
    pub fn encrypt_zero(
        &mut self,
        level: usize,
        scale: f64,
        slots: usize,
    ) -> Result<Ciphertext, Error> {
        self.params.embedding().check_slots(slots)?;
        self.encrypt_complex(&vec![Complex64::new(0.0, 0.0); slots], level, scale)
    }

    /// The ciphertext of `m_plus_e` (Evaluation domain, Q limbs of the level, error in).
    fn finish(&mut self, mut m_plus_e: RnsPoly, scale: f64, slots: usize) -> Ciphertext {
        let ring = self.params.ring().clone();
        let q_limbs = m_plus_e.q_limbs();
        match self.key {
            Key::Secret(sk) => {
                let mut seed = [0u8; 32];
                self.rng.fill_bytes(&mut seed);
                let a = RnsPoly::uniform_from_seed(
                    &ring,
                    &seed,
                    q_limbs,
                    false,
                    Representation::Evaluation,
                );
                let s = sk.at_q_limbs(q_limbs);
                m_plus_e.sub_assign(&ring, &a.mul(&ring, &s));
                let mut ct = Ciphertext::from_parts(m_plus_e, a, scale, slots, self.params.hash());
                ct.c1_seed = Some(seed);
                ct
            }
            Key::Public(pk) => {
                let mut v = small_poly_ntt(
                    &self.params,
                    &ternary_coeffs(&mut self.rng, ring.n()),
                    q_limbs,
                );
                let mut e1 = small_poly_ntt(
                    &self.params,
                    &gaussian_coeffs(&mut self.rng, ring.n()),
                    q_limbs,
                );
                let (mut b, mut a) = (pk.b.clone(), pk.a.clone());
                b.truncate_q_limbs(q_limbs);
                a.truncate_q_limbs(q_limbs);
                m_plus_e.mul_acc(&ring, &v, &b);
                e1.mul_acc(&ring, &v, &a);
                v.zeroize();
                Ciphertext::from_parts(m_plus_e, e1, scale, slots, self.params.hash())
            }
        }
    }
}

/// The polynomial of small signed coefficients (|c| < every prime), over the first
/// `q_limbs` Q limbs, in the NTT domain. The residue of c is c or q + c: a branch-free loop
/// the compiler vectorizes, instead of a Barrett reduction per coefficient and limb.
fn small_poly_ntt(params: &Params, coeffs: &[i64], q_limbs: usize) -> RnsPoly {
    let ring = params.ring();
    let mut poly = RnsPoly::zero(ring, q_limbs, false, Representation::Coefficient);
    for (i, m) in ring.q()[..q_limbs].iter().enumerate() {
        let q = m.value() as i64;
        for (o, &c) in poly.limb_mut(i).iter_mut().zip(coeffs) {
            *o = (c + (q & (c >> 63))) as u64;
        }
    }
    poly.ntt(ring);
    poly
}

/// Decrypts with the secret key.
pub struct Decryptor<'k> {
    params: Params,
    encoder: Encoder,
    key: &'k SecretKey,
}

impl std::fmt::Debug for Decryptor<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Decryptor({})", self.params)
    }
}

impl<'k> Decryptor<'k> {
    /// A decryptor for `key`.
    pub fn new(params: &Params, key: &'k SecretKey) -> Result<Self, Error> {
        check_hash(params, key.params_hash, "secret key")?;
        Ok(Self {
            params: params.clone(),
            encoder: Encoder::new(params),
            key,
        })
    }

    /// The plaintext c0 + c1 s over every limb of the ciphertext's level.
    pub fn decrypt(&self, ct: &Ciphertext) -> Result<Plaintext, Error> {
        check_hash(&self.params, ct.params_hash, "ciphertext")?;
        let poly = self.phase(ct, ct.level + 1);
        Ok(Plaintext {
            poly,
            level: ct.level,
            scale: ct.scale,
            slots: ct.slots,
            params_hash: ct.params_hash,
        })
    }

    /// c0 + c1 s on the first `limbs` limbs (Evaluation domain).
    fn phase(&self, ct: &Ciphertext, limbs: usize) -> RnsPoly {
        let ring = self.params.ring();
        let prefix = |p: &RnsPoly| {
            let mut out = RnsPoly::zero(ring, limbs, false, Representation::Evaluation);
            let n = ring.n();
            out.as_mut_slice()
                .copy_from_slice(&p.as_slice()[..limbs * n]);
            out
        };
        let mut m = prefix(&ct.c0);
        m.mul_acc(ring, &prefix(&ct.c1), &self.key.at_q_limbs(limbs));
        m
    }

    /// Decrypts and decodes to complex slots, reading only the limbs the message needs
    /// (values up to 2^`DECODE_HEADROOM_BITS`; see `decrypt` + `Encoder` for more).
    pub fn decrypt_complex(&self, ct: &Ciphertext) -> Result<Vec<Complex64>, Error> {
        check_hash(&self.params, ct.params_hash, "ciphertext")?;
        let limbs = self.encoder.decode_limbs(ct.scale, ct.level + 1);
        let mut m = self.phase(ct, limbs);
        m.intt(self.params.ring());
        self.encoder.decode_coefficient_poly(&m, ct.scale, ct.slots)
    }

    /// Decrypts and decodes to the real parts of the slots.
    pub fn decrypt_real(&self, ct: &Ciphertext) -> Result<Vec<f64>, Error> {
        Ok(self.decrypt_complex(ct)?.iter().map(|z| z.re).collect())
    }
}
