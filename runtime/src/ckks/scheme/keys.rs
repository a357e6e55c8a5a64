//! Keys: the secret key (zeroized, redacted), the seeded public key, hybrid switching keys over Q*P (relinearization, Galois), the public `EvaluationKeys` bundle and the `KeyGenerator`.
//!
//! A switching key from u to v has one pair (b_j, a_j) per digit j over Q*P with
//! b_j = -a_j v + e_j + g_j u, where the gadget g_j is P times the CRT idempotent of digit
//! j: P mod q_i on the digit's limbs, 0 on every other limb (Han and Ki, eprint 2019/688).
//! The decomposition of a polynomial is then just ModUp of its digit limbs, and the
//! arithmetic layer's identity "ModUp x gadget -> ModDown" makes the switch exact up to
//! the key noise. `a_j` is expanded from a 32-byte seed, so files ship the seed.
//! Galois keys switch from s to pi_g^-1(s): the automorphism is applied after the key
//! switch, to two polynomials over Q, instead of to dnum digits over Q*P (as Lattigo).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::ckks::arith::sampling::{
    gaussian_poly, os_rng, ternary_coeffs, ternary_fixed_weight_coeffs,
};
use crate::ckks::arith::{GaloisElement, Representation, RingContext, RnsPoly};

use super::Error;
use super::params::{Params, SecretDistribution, Security, hex_prefix};

/// The secret key s: ternary coefficients and their NTT over Q*P.
///
/// Zeroized on drop; `Debug` prints only the parameters' hash; no `Clone`; serializable
/// only with the `serialize-secret` feature.
pub struct SecretKey {
    /// The coefficients in {-1, 0, 1}.
    pub(crate) coeffs: Vec<i8>,
    /// s over all Q limbs then P, Evaluation domain.
    pub(crate) poly_qp: RnsPoly,
    /// s over all Q limbs, Evaluation domain (encryption and decryption).
    pub(crate) poly_q: RnsPoly,
    pub(crate) params_hash: [u8; 32],
}

impl Zeroize for SecretKey {
    fn zeroize(&mut self) {
        self.coeffs.zeroize();
        self.poly_qp.zeroize();
        self.poly_q.zeroize();
    }
}

impl Drop for SecretKey {
    fn drop(&mut self) {
        self.zeroize();
    }
}

impl ZeroizeOnDrop for SecretKey {}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SecretKey(<redacted>, params {})",
            hex_prefix(&self.params_hash)
        )
    }
}

impl SecretKey {
    /// Builds the key from its ternary coefficients.
    pub(crate) fn from_coeffs(params: &Params, coeffs: Vec<i8>) -> Result<Self, Error> {
        let ring = params.ring();
        if coeffs.len() != ring.n() {
            return Err(Error::LengthMismatch {
                what: "secret key coefficients",
                expected: ring.n(),
                got: coeffs.len(),
            });
        }
        if coeffs.iter().any(|c| !(-1..=1).contains(c)) {
            return Err(Error::InvalidArgument(
                "secret key coefficients must be in {-1, 0, 1}".into(),
            ));
        }
        let wide: Zeroizing<Vec<i64>> =
            Zeroizing::new(coeffs.iter().map(|&c| i64::from(c)).collect());
        let q_limbs = params.max_level() + 1;
        let mut poly_qp = RnsPoly::from_i64_coeffs(ring, &wide, q_limbs, true)?;
        poly_qp.ntt(ring);
        let mut poly_q = RnsPoly::from_i64_coeffs(ring, &wide, q_limbs, false)?;
        poly_q.ntt(ring);
        Ok(Self {
            coeffs,
            poly_qp,
            poly_q,
            params_hash: params.hash(),
        })
    }

    /// Hash of the parameters the key belongs to.
    pub fn params_hash(&self) -> [u8; 32] {
        self.params_hash
    }

    /// s over the first `q_limbs` Q limbs (Evaluation domain).
    pub(crate) fn at_q_limbs(&self, q_limbs: usize) -> RnsPoly {
        let mut s = self.poly_q.clone();
        if q_limbs < s.q_limbs() {
            s.truncate_q_limbs(q_limbs);
        }
        s
    }
}

/// The public key (b, a) over Q with b = -a s + e; `a` is expanded from `seed`.
#[derive(Clone, PartialEq)]
pub struct PublicKey {
    pub(crate) b: RnsPoly,
    pub(crate) a: RnsPoly,
    pub(crate) seed: [u8; 32],
    pub(crate) params_hash: [u8; 32],
    pub(crate) security: Security,
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "PublicKey(params {}, {})",
            hex_prefix(&self.params_hash),
            self.security.label()
        )
    }
}

impl PublicKey {
    /// Hash of the parameters.
    pub fn params_hash(&self) -> [u8; 32] {
        self.params_hash
    }

    /// Security marker of the parameters.
    pub fn security(&self) -> Security {
        self.security
    }
}

/// A hybrid switching key: per digit j, (b_j, a_j) over all of Q and P, Evaluation domain.
#[derive(Clone, PartialEq)]
pub struct SwitchingKey {
    pub(crate) seed: [u8; 32],
    pub(crate) b: Vec<RnsPoly>,
    pub(crate) a: Vec<RnsPoly>,
}

impl fmt::Debug for SwitchingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SwitchingKey({} digits)", self.b.len())
    }
}

impl SwitchingKey {
    /// Number of digits (dnum at the top level).
    pub fn digits(&self) -> usize {
        self.b.len()
    }

    /// Bytes held in memory (b and a of every digit).
    pub fn size_bytes(&self) -> usize {
        8 * self
            .b
            .iter()
            .chain(&self.a)
            .map(|p| p.as_slice().len())
            .sum::<usize>()
    }

    /// The seed of digit j's `a`, derived from the key's seed.
    pub(crate) fn digit_seed(seed: &[u8; 32], digit: usize) -> [u8; 32] {
        let mut input = [0u8; 40];
        input[..32].copy_from_slice(seed);
        input[32..].copy_from_slice(&(digit as u64).to_le_bytes());
        blake3::derive_key("ensi ckks switching-key digit a v1", &input)
    }

    /// Expands the `a` of every digit of a key truncated to `level` (Q limbs 0..=level, P).
    pub(crate) fn expand_a_at(
        params: &Params,
        seed: &[u8; 32],
        digits: usize,
        level: usize,
    ) -> Vec<RnsPoly> {
        let ring = params.ring();
        (0..digits)
            .map(|j| {
                RnsPoly::uniform_from_seed(
                    ring,
                    &Self::digit_seed(seed, j),
                    level + 1,
                    true,
                    Representation::Evaluation,
                )
            })
            .collect()
    }

    /// The highest level this key serves (its Q limbs minus one): the top level, or less
    /// for a key generated truncated.
    pub fn level(&self) -> usize {
        self.b.first().map_or(0, |b| b.q_limbs().saturating_sub(1))
    }
}

/// The two switching keys of the sparse-secret encapsulation (Bossuat, Troncoso-Pastoriza,
/// Hubaux, eprint 2022/024): the dense secret s to an ephemeral sparse secret s' of Hamming
/// weight h over the ring of q_0 and p_0 only (an RLWE sample under s' must not live at a
/// large modulus: log2(q_0 p_0) ~ 121 bits, as Lattigo's), and s' back to s over all of
/// Q*P.
#[derive(Clone)]
pub struct EncapsulationKeys {
    /// Hamming weight of the ephemeral secret.
    pub(crate) hamming_weight: u32,
    /// The ring of q_0 and p_0 the dense-to-sparse key lives in.
    pub(crate) sparse_ring: Arc<RingContext>,
    /// s -> s' over q_0 p_0 (one digit; polynomials of `sparse_ring`).
    pub(crate) to_sparse: SwitchingKey,
    /// s' -> s, every level.
    pub(crate) to_dense: SwitchingKey,
}

impl PartialEq for EncapsulationKeys {
    fn eq(&self, other: &Self) -> bool {
        self.hamming_weight == other.hamming_weight
            && self.to_sparse == other.to_sparse
            && self.to_dense == other.to_dense
    }
}

/// The ring of q_0 and p_0 of a parameter set (where the dense-to-sparse key lives).
pub(crate) fn sparse_ring(params: &Params) -> Result<Arc<RingContext>, Error> {
    let ring = params.ring();
    let q0 = ring.q()[0].value();
    let p0 = ring.p()[0].value();
    Ok(RingContext::new(params.log_n(), &[q0], &[p0], 1)?)
}

impl fmt::Debug for EncapsulationKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EncapsulationKeys(h = {})", self.hamming_weight)
    }
}

impl EncapsulationKeys {
    /// Hamming weight of the ephemeral sparse secret.
    pub fn hamming_weight(&self) -> u32 {
        self.hamming_weight
    }

    /// The key from the dense secret to the sparse one (over q_0 p_0 only).
    pub fn to_sparse(&self) -> &SwitchingKey {
        &self.to_sparse
    }

    /// The ring of q_0 and p_0 of the dense-to-sparse key.
    pub fn sparse_ring(&self) -> &Arc<RingContext> {
        &self.sparse_ring
    }

    /// The key from the sparse secret back to the dense one.
    pub fn to_dense(&self) -> &SwitchingKey {
        &self.to_dense
    }

    /// Bytes held in memory by both keys.
    pub fn size_bytes(&self) -> usize {
        self.to_sparse.size_bytes() + self.to_dense.size_bytes()
    }
}

/// The public keys an evaluator needs: relinearization and Galois keys, with the
/// parameters' hash. Holds no secret.
#[derive(Clone, PartialEq)]
pub struct EvaluationKeys {
    pub(crate) params_hash: [u8; 32],
    pub(crate) security: Security,
    pub(crate) relin: Option<SwitchingKey>,
    pub(crate) galois: BTreeMap<u64, SwitchingKey>,
    /// The sparse-secret encapsulation keys of bootstrapping, if generated.
    pub(crate) encapsulation: Option<EncapsulationKeys>,
}

impl fmt::Debug for EvaluationKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EvaluationKeys")
            .field("params", &hex_prefix(&self.params_hash))
            .field("security", &self.security.label())
            .field("relin", &self.relin.is_some())
            .field("galois_elements", &self.galois.keys().collect::<Vec<_>>())
            .field("encapsulation", &self.encapsulation)
            .finish()
    }
}

impl EvaluationKeys {
    /// An empty bundle for `params` (keys are added with `KeyGenerator`).
    pub fn empty(params: &Params) -> Self {
        Self {
            params_hash: params.hash(),
            security: params.security(),
            relin: None,
            galois: BTreeMap::new(),
            encapsulation: None,
        }
    }

    /// Hash of the parameters.
    pub fn params_hash(&self) -> [u8; 32] {
        self.params_hash
    }

    /// Security marker of the parameters.
    pub fn security(&self) -> Security {
        self.security
    }

    /// The relinearization key, if present.
    pub fn relin(&self) -> Option<&SwitchingKey> {
        self.relin.as_ref()
    }

    /// The Galois key of element g, if present.
    pub fn galois(&self, g: u64) -> Option<&SwitchingKey> {
        self.galois.get(&g)
    }

    /// The Galois elements with a key, ascending.
    pub fn galois_elements(&self) -> Vec<u64> {
        self.galois.keys().copied().collect()
    }

    /// Adds (or replaces) the relinearization key.
    pub fn set_relin(&mut self, key: SwitchingKey) {
        self.relin = Some(key);
    }

    /// Adds (or replaces) the key of Galois element g.
    pub fn insert_galois(&mut self, g: u64, key: SwitchingKey) {
        self.galois.insert(g, key);
    }

    /// The sparse-secret encapsulation keys, if present.
    pub fn encapsulation(&self) -> Option<&EncapsulationKeys> {
        self.encapsulation.as_ref()
    }

    /// Adds (or replaces) the encapsulation keys.
    pub fn set_encapsulation(&mut self, keys: EncapsulationKeys) {
        self.encapsulation = Some(keys);
    }

    /// Number of switching keys (relinearization, Galois, encapsulation).
    pub fn key_count(&self) -> usize {
        usize::from(self.relin.is_some())
            + self.galois.len()
            + 2 * usize::from(self.encapsulation.is_some())
    }

    /// Bytes held in memory by every key.
    pub fn size_bytes(&self) -> usize {
        self.relin
            .iter()
            .chain(self.galois.values())
            .map(SwitchingKey::size_bytes)
            .sum::<usize>()
            + self
                .encapsulation
                .as_ref()
                .map_or(0, EncapsulationKeys::size_bytes)
    }
}

/// Generates a secret key and the public and evaluation keys derived from it. Holds the
/// secret key and its randomness; both are wiped on drop.
pub struct KeyGenerator {
    params: Params,
    /// Always `Some` while the generator lives; `into_secret_key` takes it.
    secret: Option<SecretKey>,
    rng: ChaCha20Rng,
}

impl fmt::Debug for KeyGenerator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyGenerator({:?})", self.secret())
    }
}

impl Drop for KeyGenerator {
    fn drop(&mut self) {
        // Overwrites the generator's state in place.
        self.rng = ChaCha20Rng::from_seed([0; 32]);
    }
}

impl ZeroizeOnDrop for KeyGenerator {}

impl KeyGenerator {
    /// A fresh secret key from OS entropy.
    pub fn new(params: &Params) -> Result<Self, Error> {
        Self::from_rng(params, os_rng()?)
    }

    /// A deterministic key generator (tests, reproducible benches). Never for real data.
    pub fn from_seed(params: &Params, seed: [u8; 32]) -> Result<Self, Error> {
        Self::from_rng(params, ChaCha20Rng::from_seed(seed))
    }

    fn from_rng(params: &Params, mut rng: ChaCha20Rng) -> Result<Self, Error> {
        let n = params.n();
        let wide = match params.secret_distribution() {
            SecretDistribution::FixedHammingWeight { h } => {
                ternary_fixed_weight_coeffs(&mut rng, n, h as usize)?
            }
            _ => ternary_coeffs(&mut rng, n),
        };
        let coeffs: Vec<i8> = wide.iter().map(|&c| c as i8).collect();
        let secret = SecretKey::from_coeffs(params, coeffs)?;
        Ok(Self {
            params: params.clone(),
            secret: Some(secret),
            rng,
        })
    }

    /// A generator around an existing secret key (e.g. loaded by the client).
    pub fn from_secret_key(params: &Params, secret: SecretKey) -> Result<Self, Error> {
        check_hash(params, secret.params_hash, "secret key")?;
        Ok(Self {
            params: params.clone(),
            secret: Some(secret),
            rng: os_rng()?,
        })
    }

    /// The parameters.
    pub fn params(&self) -> &Params {
        &self.params
    }

    /// The secret key.
    pub fn secret_key(&self) -> &SecretKey {
        self.secret()
    }

    fn secret(&self) -> &SecretKey {
        match &self.secret {
            Some(secret) => secret,
            None => unreachable!("only into_secret_key takes the key, consuming the generator"),
        }
    }

    /// Takes the secret key out (the generator is consumed and its randomness wiped).
    pub fn into_secret_key(mut self) -> SecretKey {
        match self.secret.take() {
            Some(secret) => secret,
            None => unreachable!("only into_secret_key takes the key, consuming the generator"),
        }
    }

    fn fresh_seed(&mut self) -> [u8; 32] {
        let mut seed = [0u8; 32];
        self.rng.fill_bytes(&mut seed);
        seed
    }

    /// The public key (b = -a s + e, a) over Q, `a` from a fresh seed.
    pub fn public_key(&mut self) -> PublicKey {
        let seed = self.fresh_seed();
        let ring = self.params.ring();
        let q_limbs = self.params.max_level() + 1;
        let a = RnsPoly::uniform_from_seed(ring, &seed, q_limbs, false, Representation::Evaluation);
        let mut b = gaussian_poly(ring, &mut self.rng, q_limbs, false);
        b.ntt(ring);
        let secret = match &self.secret {
            Some(secret) => secret,
            None => unreachable!("only into_secret_key takes the key"),
        };
        b.sub_assign(ring, &a.mul(ring, &secret.poly_q));
        PublicKey {
            b,
            a,
            seed,
            params_hash: self.params.hash(),
            security: self.params.security(),
        }
    }

    /// A switching key from `u` to `v` (both over Q*P, Evaluation domain).
    fn switching_key(&mut self, u: &RnsPoly, v: &RnsPoly) -> SwitchingKey {
        let level = self.params.max_level();
        self.switching_key_at(u, v, level)
    }

    /// A switching key from `u` to `v` truncated to `level`: Q limbs 0..=level and P,
    /// the digits of that level (`u` and `v` over all of Q*P; only their first limbs and
    /// P are read).
    fn switching_key_at(&mut self, u: &RnsPoly, v: &RnsPoly, level: usize) -> SwitchingKey {
        let params = self.params.clone();
        let ring = params.ring();
        let q_limbs = level + 1;
        let digits = ring.digits_at_level(level);
        let seed = self.fresh_seed();
        let a = SwitchingKey::expand_a_at(&params, &seed, digits, level);
        let truncate = |p: &RnsPoly| {
            let mut t = p.clone();
            if t.q_limbs() > q_limbs {
                t.truncate_q_limbs(q_limbs);
            }
            t
        };
        let mut u = truncate(u);
        let mut v = truncate(v);
        let b = a
            .iter()
            .enumerate()
            .map(|(j, a_j)| {
                let range = ring.digit_range(level, j);
                let mut b_j = gaussian_poly(ring, &mut self.rng, q_limbs, true);
                b_j.ntt(ring);
                b_j.sub_assign(ring, &a_j.mul(ring, &v));
                let gadget: Vec<u64> = (0..u.num_limbs())
                    .map(|i| {
                        if range.contains(&i) {
                            ring.p_mod_q()[i]
                        } else {
                            0
                        }
                    })
                    .collect();
                let mut gu = u.clone();
                gu.mul_scalar_assign(ring, &gadget);
                b_j.add_assign(ring, &gu);
                gu.zeroize();
                b_j
            })
            .collect();
        u.zeroize();
        v.zeroize();
        SwitchingKey { seed, b, a }
    }

    /// The relinearization key: switches s^2 to s.
    pub fn relin_key(&mut self) -> SwitchingKey {
        let ring = self.params.ring().clone();
        let s = self.secret().poly_qp.clone();
        let mut s2 = s.mul(&ring, &s);
        let key = self.switching_key(&s2, &s);
        s2.zeroize();
        key
    }

    /// The Galois key of element g: switches s to pi_g^-1(s) (the evaluator applies pi_g
    /// after the switch).
    pub fn galois_key(&mut self, g: GaloisElement) -> Result<SwitchingKey, Error> {
        let ring = self.params.ring().clone();
        let inverse = ring.galois_element(galois_inverse(g.value(), 2 * ring.n() as u64))?;
        let s = self.secret().poly_qp.clone();
        let mut permuted = s.automorphism(&ring, inverse);
        let key = self.switching_key(&s, &permuted);
        permuted.zeroize();
        Ok(key)
    }

    /// The sparse-secret encapsulation keys of bootstrapping: a fresh ephemeral secret s'
    /// with exactly `hamming_weight` coefficients in {-1, 1}, the key s -> s' over q_0*P
    /// only, and s' -> s over all of Q*P. s' is wiped once both keys exist.
    pub fn encapsulation_keys(&mut self, hamming_weight: u32) -> Result<EncapsulationKeys, Error> {
        let ring = self.params.ring().clone();
        let coeffs = ternary_fixed_weight_coeffs(&mut self.rng, ring.n(), hamming_weight as usize)?;
        let mut sparse =
            RnsPoly::from_i64_coeffs(&ring, &coeffs, self.params.max_level() + 1, true)?;
        sparse.ntt(&ring);
        let dense = self.secret().poly_qp.clone();
        let to_dense = self.switching_key(&sparse, &dense);
        sparse.zeroize();
        let mut dense = dense;
        dense.zeroize();

        // s -> s' in the ring of q_0 and p_0: b = -a s' + e + (p_0 mod q_0, 0) s.
        let small = sparse_ring(&self.params)?;
        let mut sparse = RnsPoly::from_i64_coeffs(&small, &coeffs, 1, true)?;
        sparse.ntt(&small);
        drop(coeffs);
        let dense_coeffs: Zeroizing<Vec<i64>> =
            Zeroizing::new(self.secret().coeffs.iter().map(|&c| i64::from(c)).collect());
        let mut dense = RnsPoly::from_i64_coeffs(&small, &dense_coeffs, 1, true)?;
        dense.ntt(&small);
        let seed = self.fresh_seed();
        let a = expand_sparse_a(&small, &seed);
        let mut b = gaussian_poly(&small, &mut self.rng, 1, true);
        b.ntt(&small);
        b.sub_assign(&small, &a.mul(&small, &sparse));
        dense.mul_scalar_assign(&small, &[small.p_mod_q()[0], 0]);
        b.add_assign(&small, &dense);
        sparse.zeroize();
        dense.zeroize();
        Ok(EncapsulationKeys {
            hamming_weight,
            sparse_ring: small,
            to_sparse: SwitchingKey {
                seed,
                b: vec![b],
                a: vec![a],
            },
            to_dense,
        })
    }

    /// The Galois key of element g truncated to `level` (for rotations used only at or
    /// below that level, e.g. by SlotsToCoeffs): smaller in memory and in files.
    pub fn galois_key_at_level(
        &mut self,
        g: GaloisElement,
        level: usize,
    ) -> Result<SwitchingKey, Error> {
        let ring = self.params.ring().clone();
        let inverse = ring.galois_element(galois_inverse(g.value(), 2 * ring.n() as u64))?;
        let s = self.secret().poly_qp.clone();
        let mut permuted = s.automorphism(&ring, inverse);
        let key = self.switching_key_at(&s, &permuted, level.min(self.params.max_level()));
        permuted.zeroize();
        let mut s = s;
        s.zeroize();
        Ok(key)
    }

    /// Evaluation keys: relinearization, one Galois key per rotation step (left by k,
    /// negative k right; steps equal mod N/2 share a key) and conjugation if asked.
    pub fn evaluation_keys(
        &mut self,
        rotations: &[i64],
        conjugation: bool,
    ) -> Result<EvaluationKeys, Error> {
        let ring = self.params.ring().clone();
        let mut elements: Vec<GaloisElement> =
            rotations.iter().map(|&k| ring.rotation(k)).collect();
        if conjugation {
            elements.push(ring.conjugation());
        }
        self.evaluation_keys_for(&elements, true)
    }

    /// Evaluation keys for explicit Galois elements (identity skipped), with or without
    /// the relinearization key.
    pub fn evaluation_keys_for(
        &mut self,
        elements: &[GaloisElement],
        relin: bool,
    ) -> Result<EvaluationKeys, Error> {
        let mut keys = EvaluationKeys::empty(&self.params);
        if relin {
            keys.relin = Some(self.relin_key());
        }
        for &g in elements {
            if g.value() == 1 || keys.galois.contains_key(&g.value()) {
                continue;
            }
            let key = self.galois_key(g)?;
            keys.galois.insert(g.value(), key);
        }
        Ok(keys)
    }
}

/// The `a` of the dense-to-sparse key from its seed, in the ring of q_0 and p_0.
pub(crate) fn expand_sparse_a(small: &RingContext, seed: &[u8; 32]) -> RnsPoly {
    RnsPoly::uniform_from_seed(
        small,
        &SwitchingKey::digit_seed(seed, 0),
        1,
        true,
        Representation::Evaluation,
    )
}

/// g^-1 mod 2N for odd g (the unit group mod 2N has order N, so g^(N-1) = g^-1).
pub(crate) fn galois_inverse(g: u64, two_n: u64) -> u64 {
    let mut result = 1u64;
    let mut base = g % two_n;
    let mut e = two_n / 2 - 1;
    while e > 0 {
        if e & 1 == 1 {
            result = result * base % two_n;
        }
        base = base * base % two_n;
        e >>= 1;
    }
    result
}

pub(crate) fn check_hash(
    params: &Params,
    found: [u8; 32],
    what: &'static str,
) -> Result<(), Error> {
    if found == params.hash() {
        Ok(())
    } else {
        Err(Error::ParamsMismatch {
            what,
            expected: params.short_hash(),
            found: hex_prefix(&found),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ckks::scheme::params::TEST_INSECURE_N10;

    #[test]
    fn secret_key_debug_is_redacted() {
        let params = TEST_INSECURE_N10.params().expect("set");
        let keygen = KeyGenerator::from_seed(&params, [7; 32]).expect("keygen");
        let shown = format!("{:?}", keygen.secret_key());
        assert!(
            shown.starts_with("SecretKey(<redacted>, params "),
            "{shown}"
        );
        assert!(format!("{keygen:?}").contains("<redacted>"));
        let sk = keygen.into_secret_key();
        assert!(sk.coeffs.iter().all(|c| (-1..=1).contains(c)));
    }

    #[test]
    fn galois_inverse_inverts() {
        for g in [5u64, 25, 125, 2047, 3] {
            assert_eq!(g * galois_inverse(g, 2048) % 2048, 1);
        }
    }

    #[test]
    fn keys_are_deterministic_from_a_seed() {
        let params = TEST_INSECURE_N10.params().expect("set");
        let mut a = KeyGenerator::from_seed(&params, [1; 32]).expect("keygen");
        let mut b = KeyGenerator::from_seed(&params, [1; 32]).expect("keygen");
        assert!(a.public_key() == b.public_key());
        let ka = a.evaluation_keys(&[1, -1], true).expect("keys");
        let kb = b.evaluation_keys(&[1, -1], true).expect("keys");
        assert!(ka == kb);
        assert_eq!(ka.galois_elements().len(), 3);
        // a of each digit is the seed's expansion.
        let relin = ka.relin().expect("relin");
        assert!(
            SwitchingKey::expand_a_at(&params, &relin.seed, relin.digits(), params.max_level())
                == relin.a
        );
    }
}
