//! The evaluator: homomorphic add/sub/neg, constant and plaintext products, tensor + relinearization, rescale, level drop, rotations, conjugation and hoisted rotations, over public `EvaluationKeys` only.
//!
//! Key switching is hybrid (Han and Ki, eprint 2019/688): ModUp of each digit of the
//! polynomial to Q_l*P, inner product with the key's (b_j, a_j) read at the level's
//! limbs, ModDown of both halves. Rotations apply the automorphism after the switch (the
//! Galois key maps s to pi^-1(s)), so hoisting (Halevi and Shoup, eprint 2018/244) shares
//! one decomposition among many rotations and permutes only the two output polynomials.
//! Scales are exact f64s following the primes (FLEXIBLEAUTO); operands whose levels,
//! scales or slot counts do not fit are refused with an `Error`.

use std::sync::Mutex;

use crate::ckks::arith::{GaloisElement, Representation, RnsPoly};

use super::Error;
use super::ciphertext::{Ciphertext, Plaintext, TensorCiphertext};
use super::encoder::Encoder;
use super::keys::{EvaluationKeys, SwitchingKey, check_hash};
use super::params::Params;

/// Relative difference below which two scales count as equal (rounding of f64 scale
/// arithmetic; the induced slot error is below 2^-40 of the value).
pub const SCALE_TOLERANCE: f64 = 1.0 / (1u64 << 40) as f64;

/// Whether two scales are equal up to `SCALE_TOLERANCE`.
pub fn scales_match(a: f64, b: f64) -> bool {
    (a - b).abs() <= SCALE_TOLERANCE * a.abs().max(b.abs())
}

/// The ModUp digits of one polynomial (Evaluation domain, over Q_l*P): the shared part of
/// hoisted rotations and key switches.
#[derive(Debug)]
pub struct Decomposed {
    pub(crate) digits: Vec<RnsPoly>,
    pub(crate) level: usize,
}

impl Decomposed {
    /// The level of the decomposed polynomial.
    pub fn level(&self) -> usize {
        self.level
    }
}

/// A ciphertext kept over Q_l*P (both parts carry the P limbs), scaled by P: the lazy
/// output of a hoisted rotation before ModDown, for sums that ModDown once.
#[derive(Debug, Clone)]
pub struct ExtendedCiphertext {
    pub(crate) c0: RnsPoly,
    pub(crate) c1: RnsPoly,
    pub(crate) scale: f64,
    pub(crate) slots: usize,
}

impl ExtendedCiphertext {
    /// The level.
    pub fn level(&self) -> usize {
        self.c0.level()
    }

    /// The first part over Q_l*P.
    pub fn c0_ref(&self) -> &RnsPoly {
        &self.c0
    }
}

/// Homomorphic operations for one parameter set and one set of evaluation keys.
pub struct Evaluator<'k> {
    params: Params,
    keys: &'k EvaluationKeys,
    encoder: Encoder,
    /// Reused polynomial buffers (a fresh multi-megabyte buffer costs page faults).
    pool: Mutex<Vec<RnsPoly>>,
}

impl std::fmt::Debug for Evaluator<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Evaluator({}, {:?})", self.params, self.keys)
    }
}

const POOL_LIMIT: usize = 16;

impl<'k> Evaluator<'k> {
    /// An evaluator; the keys must belong to `params`.
    pub fn new(params: &Params, keys: &'k EvaluationKeys) -> Result<Self, Error> {
        check_hash(params, keys.params_hash, "evaluation keys")?;
        Ok(Self {
            params: params.clone(),
            keys,
            encoder: Encoder::new(params),
            pool: Mutex::new(Vec::new()),
        })
    }

    /// The parameters.
    pub fn params(&self) -> &Params {
        &self.params
    }

    /// The evaluation keys.
    pub fn keys(&self) -> &EvaluationKeys {
        self.keys
    }

    /// The encoder of the parameters.
    pub fn encoder(&self) -> &Encoder {
        &self.encoder
    }

    // ----- buffers -------------------------------------------------------------------

    /// A polynomial of the given shape whose contents the caller overwrites entirely.
    fn take(&self, q_limbs: usize, special: bool) -> RnsPoly {
        if let Ok(mut pool) = self.pool.lock()
            && let Some(i) = pool
                .iter()
                .position(|p| p.q_limbs() == q_limbs && p.has_special() == special)
        {
            let mut poly = pool.swap_remove(i);
            poly.set_representation(Representation::Evaluation);
            return poly;
        }
        RnsPoly::zero(
            self.params.ring(),
            q_limbs,
            special,
            Representation::Evaluation,
        )
    }

    fn give(&self, poly: RnsPoly) {
        if let Ok(mut pool) = self.pool.lock()
            && pool.len() < POOL_LIMIT
        {
            pool.push(poly);
        }
    }

    // ----- checks --------------------------------------------------------------------

    fn check_ct(&self, ct: &Ciphertext) -> Result<(), Error> {
        check_hash(&self.params, ct.params_hash, "ciphertext")
    }

    fn check_pair(&self, op: &'static str, a: &Ciphertext, b: &Ciphertext) -> Result<(), Error> {
        self.check_ct(a)?;
        self.check_ct(b)?;
        if a.level != b.level {
            return Err(Error::LevelMismatch {
                op,
                left: a.level,
                right: b.level,
            });
        }
        if a.slots != b.slots {
            return Err(Error::SlotsMismatch {
                op,
                left: a.slots,
                right: b.slots,
            });
        }
        Ok(())
    }

    fn check_scales(op: &'static str, a: f64, b: f64) -> Result<(), Error> {
        if scales_match(a, b) {
            Ok(())
        } else {
            Err(Error::ScaleMismatch {
                op,
                left_log2: a.log2(),
                right_log2: b.log2(),
            })
        }
    }

    /// The plaintext's polynomial at the ciphertext's level (its first Q limbs; no P).
    fn plain_at(
        &self,
        op: &'static str,
        ct: &Ciphertext,
        pt: &Plaintext,
    ) -> Result<RnsPoly, Error> {
        check_hash(&self.params, pt.params_hash, "plaintext")?;
        if pt.level < ct.level {
            return Err(Error::LevelMismatch {
                op,
                left: ct.level,
                right: pt.level,
            });
        }
        if pt.slots != ct.slots {
            return Err(Error::SlotsMismatch {
                op,
                left: ct.slots,
                right: pt.slots,
            });
        }
        let mut poly = pt.poly.clone();
        poly.drop_special_limbs();
        if pt.level > ct.level {
            poly.truncate_q_limbs(ct.level + 1);
        }
        Ok(poly)
    }

    // ----- additive ------------------------------------------------------------------

    /// a + b (same level, scale and slots).
    pub fn add(&self, a: &Ciphertext, b: &Ciphertext) -> Result<Ciphertext, Error> {
        self.check_pair("add", a, b)?;
        Self::check_scales("add", a.scale, b.scale)?;
        let ring = self.params.ring();
        Ok(Ciphertext {
            c0: a.c0.add(ring, &b.c0),
            c1: a.c1.add(ring, &b.c1),
            level: a.level,
            scale: a.scale,
            slots: a.slots,
            params_hash: a.params_hash,
            c1_seed: None,
        })
    }

    /// a += b.
    pub fn add_assign(&self, a: &mut Ciphertext, b: &Ciphertext) -> Result<(), Error> {
        self.check_pair("add", a, b)?;
        Self::check_scales("add", a.scale, b.scale)?;
        let ring = self.params.ring();
        a.c0.add_assign(ring, &b.c0);
        a.c1.add_assign(ring, &b.c1);
        a.c1_seed = None;
        Ok(())
    }

    /// a - b.
    pub fn sub(&self, a: &Ciphertext, b: &Ciphertext) -> Result<Ciphertext, Error> {
        self.check_pair("sub", a, b)?;
        Self::check_scales("sub", a.scale, b.scale)?;
        let ring = self.params.ring();
        Ok(Ciphertext {
            c0: a.c0.sub(ring, &b.c0),
            c1: a.c1.sub(ring, &b.c1),
            level: a.level,
            scale: a.scale,
            slots: a.slots,
            params_hash: a.params_hash,
            c1_seed: None,
        })
    }

    /// a -= b.
    pub fn sub_assign(&self, a: &mut Ciphertext, b: &Ciphertext) -> Result<(), Error> {
        self.check_pair("sub", a, b)?;
        Self::check_scales("sub", a.scale, b.scale)?;
        let ring = self.params.ring();
        a.c0.sub_assign(ring, &b.c0);
        a.c1.sub_assign(ring, &b.c1);
        a.c1_seed = None;
        Ok(())
    }

    /// -a.
    pub fn neg(&self, a: &Ciphertext) -> Result<Ciphertext, Error> {
        let mut out = a.clone();
        self.neg_assign(&mut out)?;
        Ok(out)
    }

    /// a = -a.
    pub fn neg_assign(&self, a: &mut Ciphertext) -> Result<(), Error> {
        self.check_ct(a)?;
        let ring = self.params.ring();
        a.c0.neg_assign(ring);
        a.c1.neg_assign(ring);
        a.c1_seed = None;
        Ok(())
    }

    /// ct + pt (the plaintext at the ciphertext's level or above, same scale and slots).
    pub fn add_plain(&self, ct: &Ciphertext, pt: &Plaintext) -> Result<Ciphertext, Error> {
        let mut out = ct.clone();
        self.add_plain_assign(&mut out, pt)?;
        Ok(out)
    }

    /// ct += pt.
    pub fn add_plain_assign(&self, ct: &mut Ciphertext, pt: &Plaintext) -> Result<(), Error> {
        self.check_ct(ct)?;
        Self::check_scales("add_plain", ct.scale, pt.scale)?;
        let poly = self.plain_at("add_plain", ct, pt)?;
        ct.c0.add_assign(self.params.ring(), &poly);
        Ok(())
    }

    /// ct - pt.
    pub fn sub_plain(&self, ct: &Ciphertext, pt: &Plaintext) -> Result<Ciphertext, Error> {
        self.check_ct(ct)?;
        Self::check_scales("sub_plain", ct.scale, pt.scale)?;
        let poly = self.plain_at("sub_plain", ct, pt)?;
        let mut out = ct.clone();
        out.c0.sub_assign(self.params.ring(), &poly);
        Ok(out)
    }

    /// ct + c in every slot, c encoded at the ciphertext's scale (coefficient 0 only).
    pub fn add_const(&self, ct: &Ciphertext, c: f64) -> Result<Ciphertext, Error> {
        let mut out = ct.clone();
        self.add_const_assign(&mut out, c)?;
        Ok(out)
    }

    /// ct += c.
    pub fn add_const_assign(&self, ct: &mut Ciphertext, c: f64) -> Result<(), Error> {
        self.check_ct(ct)?;
        let residues = self.encoder.encode_const(c, ct.level, ct.scale, false)?;
        ct.c0.add_scalar_assign(self.params.ring(), &residues);
        Ok(())
    }

    // ----- multiplicative by constants and plaintexts ----------------------------------

    /// ct * c with c encoded as round(c * const_scale): the result's scale is
    /// ct.scale * const_scale (choose const_scale = q_level to keep the scale after a rescale).
    pub fn mul_const(
        &self,
        ct: &Ciphertext,
        c: f64,
        const_scale: f64,
    ) -> Result<Ciphertext, Error> {
        let mut out = ct.clone();
        self.mul_const_assign(&mut out, c, const_scale)?;
        Ok(out)
    }

    /// ct *= c at `const_scale`.
    pub fn mul_const_assign(
        &self,
        ct: &mut Ciphertext,
        c: f64,
        const_scale: f64,
    ) -> Result<(), Error> {
        self.check_ct(ct)?;
        let residues = self.encoder.encode_const(c, ct.level, const_scale, false)?;
        let ring = self.params.ring();
        ct.c0.mul_scalar_assign(ring, &residues);
        ct.c1.mul_scalar_assign(ring, &residues);
        ct.scale *= const_scale;
        ct.c1_seed = None;
        Ok(())
    }

    /// ct * k for an integer k (exact; the scale is unchanged).
    pub fn mul_int(&self, ct: &Ciphertext, k: i64) -> Result<Ciphertext, Error> {
        self.check_ct(ct)?;
        let ring = self.params.ring();
        let residues = ring.scalar_residues(i128::from(k), ct.level + 1, false);
        let mut out = ct.clone();
        out.c0.mul_scalar_assign(ring, &residues);
        out.c1.mul_scalar_assign(ring, &residues);
        out.c1_seed = None;
        Ok(out)
    }

    /// ct * pt (slot-wise); the result's scale is the product of the scales.
    pub fn mul_plain(&self, ct: &Ciphertext, pt: &Plaintext) -> Result<Ciphertext, Error> {
        let mut out = ct.clone();
        self.mul_plain_assign(&mut out, pt)?;
        Ok(out)
    }

    /// ct *= pt.
    pub fn mul_plain_assign(&self, ct: &mut Ciphertext, pt: &Plaintext) -> Result<(), Error> {
        self.check_ct(ct)?;
        let ring = self.params.ring();
        if pt.level == ct.level && !pt.has_special() && pt.slots == ct.slots {
            check_hash(&self.params, pt.params_hash, "plaintext")?;
            ct.c0.mul_assign(ring, &pt.poly);
            ct.c1.mul_assign(ring, &pt.poly);
        } else {
            let poly = self.plain_at("mul_plain", ct, pt)?;
            ct.c0.mul_assign(ring, &poly);
            ct.c1.mul_assign(ring, &poly);
        }
        ct.scale *= pt.scale;
        ct.c1_seed = None;
        Ok(())
    }

    // ----- ciphertext products -------------------------------------------------------

    /// The tensor product (a0 b0, a0 b1 + a1 b0, a1 b1), scale a.scale * b.scale.
    pub fn tensor(&self, a: &Ciphertext, b: &Ciphertext) -> Result<TensorCiphertext, Error> {
        self.check_pair("mul", a, b)?;
        let ring = self.params.ring();
        let mut c0 = self.take(a.level + 1, false);
        c0.as_mut_slice().copy_from_slice(a.c0.as_slice());
        c0.mul_assign(ring, &b.c0);
        let mut c1 = self.take(a.level + 1, false);
        c1.as_mut_slice().copy_from_slice(a.c0.as_slice());
        c1.mul_assign(ring, &b.c1);
        c1.mul_acc(ring, &a.c1, &b.c0);
        let mut c2 = self.take(a.level + 1, false);
        c2.as_mut_slice().copy_from_slice(a.c1.as_slice());
        c2.mul_assign(ring, &b.c1);
        Ok(TensorCiphertext {
            c: [c0, c1, c2],
            scale: a.scale * b.scale,
            slots: a.slots,
            params_hash: a.params_hash,
        })
    }

    /// The tensor square (a0^2, 2 a0 a1, a1^2).
    pub fn tensor_square(&self, a: &Ciphertext) -> Result<TensorCiphertext, Error> {
        self.check_ct(a)?;
        let ring = self.params.ring();
        let mut c0 = self.take(a.level + 1, false);
        c0.as_mut_slice().copy_from_slice(a.c0.as_slice());
        c0.mul_assign(ring, &a.c0);
        let mut c1 = self.take(a.level + 1, false);
        c1.as_mut_slice().copy_from_slice(a.c0.as_slice());
        c1.mul_assign(ring, &a.c1);
        let double = c1.clone();
        c1.add_assign(ring, &double);
        let mut c2 = self.take(a.level + 1, false);
        c2.as_mut_slice().copy_from_slice(a.c1.as_slice());
        c2.mul_assign(ring, &a.c1);
        Ok(TensorCiphertext {
            c: [c0, c1, c2],
            scale: a.scale * a.scale,
            slots: a.slots,
            params_hash: a.params_hash,
        })
    }

    /// Sum of two tensor products (same level, scale, slots), to relinearize once.
    pub fn add_tensor_assign(
        &self,
        a: &mut TensorCiphertext,
        b: &TensorCiphertext,
    ) -> Result<(), Error> {
        if a.level() != b.level() {
            return Err(Error::LevelMismatch {
                op: "add_tensor",
                left: a.level(),
                right: b.level(),
            });
        }
        Self::check_scales("add_tensor", a.scale, b.scale)?;
        let ring = self.params.ring();
        for (x, y) in a.c.iter_mut().zip(&b.c) {
            x.add_assign(ring, y);
        }
        Ok(())
    }

    /// Relinearizes a tensor product with the relinearization key (s^2 -> s).
    pub fn relinearize(&self, t: TensorCiphertext) -> Result<Ciphertext, Error> {
        let key = self.keys.relin.as_ref().ok_or(Error::MissingRelinKey)?;
        let [mut c0, mut c1, c2] = t.c;
        let decomposed = self.decompose_poly(&c2);
        self.give(c2);
        let (mut d0, mut d1) = self.key_product(&decomposed, key);
        self.recycle(decomposed);
        let ring = self.params.ring();
        ring.mod_down_into(&mut d0, &mut c0, true);
        ring.mod_down_into(&mut d1, &mut c1, true);
        self.give(d0);
        self.give(d1);
        Ok(Ciphertext::from_parts(
            c0,
            c1,
            t.scale,
            t.slots,
            t.params_hash,
        ))
    }

    /// a * b, relinearized (not rescaled): scale a.scale * b.scale.
    pub fn mul_relin(&self, a: &Ciphertext, b: &Ciphertext) -> Result<Ciphertext, Error> {
        if self.keys.relin.is_none() {
            return Err(Error::MissingRelinKey);
        }
        let t = self.tensor(a, b)?;
        self.relinearize(t)
    }

    /// a^2, relinearized (not rescaled).
    pub fn square(&self, a: &Ciphertext) -> Result<Ciphertext, Error> {
        if self.keys.relin.is_none() {
            return Err(Error::MissingRelinKey);
        }
        let t = self.tensor_square(a)?;
        self.relinearize(t)
    }

    // ----- levels and scales -----------------------------------------------------------

    /// Divides by the last prime q_l (exact rounding) and drops it: scale / q_l, level - 1.
    pub fn rescale(&self, ct: &Ciphertext) -> Result<Ciphertext, Error> {
        let mut out = ct.clone();
        self.rescale_assign(&mut out)?;
        Ok(out)
    }

    /// In-place `rescale`.
    pub fn rescale_assign(&self, ct: &mut Ciphertext) -> Result<(), Error> {
        self.check_ct(ct)?;
        if ct.level == 0 {
            return Err(Error::LevelTooLow {
                op: "rescale",
                level: 0,
                needed: 1,
            });
        }
        let ring = self.params.ring();
        let q_last = ring.q()[ct.level].value() as f64;
        ring.rescale_many(&mut [&mut ct.c0, &mut ct.c1]);
        ct.level -= 1;
        ct.scale /= q_last;
        ct.c1_seed = None;
        Ok(())
    }

    /// Drops `count` levels (limbs) without changing the scale.
    pub fn drop_levels(&self, ct: &Ciphertext, count: usize) -> Result<Ciphertext, Error> {
        let mut out = ct.clone();
        self.drop_levels_assign(&mut out, count)?;
        Ok(out)
    }

    /// In-place `drop_levels`.
    pub fn drop_levels_assign(&self, ct: &mut Ciphertext, count: usize) -> Result<(), Error> {
        self.check_ct(ct)?;
        if count > ct.level {
            return Err(Error::LevelTooLow {
                op: "drop_levels",
                level: ct.level,
                needed: count,
            });
        }
        if count > 0 {
            ct.c0.drop_last_q_limbs(count);
            ct.c1.drop_last_q_limbs(count);
            ct.level -= count;
            ct.c1_seed = None;
        }
        Ok(())
    }

    /// Drops levels down to `level`.
    pub fn drop_to_level(&self, ct: &Ciphertext, level: usize) -> Result<Ciphertext, Error> {
        if level > ct.level {
            return Err(Error::LevelTooLow {
                op: "drop_to_level",
                level: ct.level,
                needed: level,
            });
        }
        self.drop_levels(ct, ct.level - level)
    }

    // ----- key switching ---------------------------------------------------------------

    /// The ModUp digits of `poly` (Q only, Evaluation domain).
    pub(crate) fn decompose_poly(&self, poly: &RnsPoly) -> Decomposed {
        let ring = self.params.ring();
        let level = poly.level();
        let digits = (0..ring.digits_at_level(level))
            .map(|j| {
                let mut out = self.take(level + 1, true);
                ring.mod_up_centered_into(poly, j, &mut out);
                out
            })
            .collect();
        Decomposed { digits, level }
    }

    /// Decomposes c1 of a ciphertext once, for any number of hoisted rotations.
    pub fn decompose(&self, ct: &Ciphertext) -> Result<Decomposed, Error> {
        self.check_ct(ct)?;
        Ok(self.decompose_poly(&ct.c1))
    }

    /// Returns a decomposition's buffers to the pool.
    pub fn recycle(&self, decomposed: Decomposed) {
        for d in decomposed.digits {
            self.give(d);
        }
    }

    /// The inner product of a decomposition with a key, over Q_l*P (no ModDown).
    pub(crate) fn key_product(
        &self,
        decomposed: &Decomposed,
        key: &SwitchingKey,
    ) -> (RnsPoly, RnsPoly) {
        let ring = self.params.ring();
        let level = decomposed.level;
        let count = decomposed.digits.len();
        let mut d0 = self.take(level + 1, true);
        let mut d1 = self.take(level + 1, true);
        let lhs: Vec<&RnsPoly> = decomposed.digits.iter().collect();
        let b: Vec<&RnsPoly> = key.b[..count].iter().collect();
        let a: Vec<&RnsPoly> = key.a[..count].iter().collect();
        RnsPoly::inner_product_pair(ring, &mut d0, &mut d1, &lhs, &b, &a);
        (d0, d1)
    }

    /// The rotated ciphertext (pi(c0 + ModDown(e0)), pi(ModDown(e1))) from a key product
    /// (e0, e1) over Q_l*P; the product's buffers go back to the pool.
    fn finish_galois(
        &self,
        ct: &Ciphertext,
        mut e0: RnsPoly,
        mut e1: RnsPoly,
        g: GaloisElement,
    ) -> Ciphertext {
        let ring = self.params.ring();
        let q_limbs = ct.level + 1;
        let mut t0 = self.take(q_limbs, false);
        t0.as_mut_slice().copy_from_slice(ct.c0.as_slice());
        ring.mod_down_into(&mut e0, &mut t0, true);
        let mut t1 = self.take(q_limbs, false);
        ring.mod_down_into(&mut e1, &mut t1, false);
        self.give(e0);
        self.give(e1);
        let mut c0 = self.take(q_limbs, false);
        t0.automorphism_into(ring, g, &mut c0);
        let mut c1 = self.take(q_limbs, false);
        t1.automorphism_into(ring, g, &mut c1);
        self.give(t0);
        self.give(t1);
        Ciphertext::from_parts(c0, c1, ct.scale, ct.slots, ct.params_hash)
    }

    /// The key switch of c1 with `key` then pi_g (a rotation or conjugation).
    fn switch_and_permute(
        &self,
        ct: &Ciphertext,
        key: &SwitchingKey,
        g: GaloisElement,
    ) -> Ciphertext {
        let decomposed = self.decompose_poly(&ct.c1);
        let (e0, e1) = self.key_product(&decomposed, key);
        self.recycle(decomposed);
        self.finish_galois(ct, e0, e1, g)
    }

    /// Switches the secret of `ct` with an arbitrary switching key from u to v (a
    /// ciphertext under u becomes one under v): hybrid key switch of c1, no automorphism.
    /// The key must serve the ciphertext's level (see `SwitchingKey::level`).
    pub fn switch_key(&self, ct: &Ciphertext, key: &SwitchingKey) -> Result<Ciphertext, Error> {
        self.check_ct(ct)?;
        if key.level() < ct.level {
            return Err(Error::LevelTooLow {
                op: "key switch (the key is truncated below the ciphertext)",
                level: key.level(),
                needed: ct.level,
            });
        }
        let decomposed = self.decompose_poly(&ct.c1);
        let (mut e0, mut e1) = self.key_product(&decomposed, key);
        self.recycle(decomposed);
        let ring = self.params.ring();
        let mut c0 = ct.c0.clone();
        ring.mod_down_into(&mut e0, &mut c0, true);
        let mut c1 = self.take(ct.level + 1, false);
        ring.mod_down_into(&mut e1, &mut c1, false);
        self.give(e0);
        self.give(e1);
        Ok(Ciphertext::from_parts(
            c0,
            c1,
            ct.scale,
            ct.slots,
            ct.params_hash,
        ))
    }

    /// ct * i in every slot: multiplication by the monomial X^(N/2) (exact, no level, no
    /// scale change).
    pub fn mul_by_i(&self, ct: &Ciphertext) -> Result<Ciphertext, Error> {
        self.check_ct(ct)?;
        let ring = self.params.ring();
        let n = ring.n();
        let mut coeffs = vec![0i64; n];
        coeffs[n / 2] = 1;
        let mut monomial = RnsPoly::from_i64_coeffs(ring, &coeffs, ct.level + 1, false)?;
        monomial.ntt(ring);
        let mut out = ct.clone();
        out.c0.mul_assign(ring, &monomial);
        out.c1.mul_assign(ring, &monomial);
        out.c1_seed = None;
        Ok(out)
    }

    /// The Galois key of g, refusing a key truncated below `level` (keys generated for
    /// the lower levels of a circuit, see `KeyGenerator::galois_key_at_level`).
    fn galois_key(
        &self,
        g: GaloisElement,
        level: usize,
        what: impl FnOnce() -> String,
    ) -> Result<&'k SwitchingKey, Error> {
        let key = self
            .keys
            .galois(g.value())
            .ok_or_else(|| Error::MissingGaloisKey {
                what: what(),
                galois_element: g.value(),
            })?;
        if key.level() < level {
            return Err(Error::LevelTooLow {
                op: "automorphism (the Galois key is truncated below the ciphertext)",
                level: key.level(),
                needed: level,
            });
        }
        Ok(key)
    }

    /// The Galois element of a left rotation by `steps` of `slots` slots that has a key
    /// (steps equal modulo the slot count rotate alike).
    pub fn rotation_element(&self, steps: i64, slots: usize) -> Result<GaloisElement, Error> {
        let ring = self.params.ring();
        let n = slots as i64;
        let reduced = steps.rem_euclid(n);
        for candidate in [steps, reduced, reduced - n] {
            let g = ring.rotation(candidate);
            if g.value() == 1 || self.keys.galois(g.value()).is_some() {
                return Ok(g);
            }
        }
        Err(Error::MissingGaloisKey {
            what: format!("rotation by {steps}"),
            galois_element: ring.rotation(steps).value(),
        })
    }

    /// Applies X -> X^g: key switch of c1 (s -> pi^-1(s)), then pi_g on (c0 + d0, d1).
    pub fn apply_galois(&self, ct: &Ciphertext, g: GaloisElement) -> Result<Ciphertext, Error> {
        self.check_ct(ct)?;
        if g.value() == 1 {
            return Ok(ct.clone());
        }
        let key = self.galois_key(g, ct.level, || format!("Galois element {}", g.value()))?;
        Ok(self.switch_and_permute(ct, key, g))
    }

    /// Rotates the slots left by `steps` (new slot j = old slot j + steps).
    pub fn rotate(&self, ct: &Ciphertext, steps: i64) -> Result<Ciphertext, Error> {
        self.check_ct(ct)?;
        let g = self.rotation_element(steps, ct.slots)?;
        if g.value() == 1 {
            return Ok(ct.clone());
        }
        let key = self.galois_key(g, ct.level, || format!("rotation by {steps}"))?;
        Ok(self.switch_and_permute(ct, key, g))
    }

    /// Conjugates every slot.
    pub fn conjugate(&self, ct: &Ciphertext) -> Result<Ciphertext, Error> {
        self.check_ct(ct)?;
        let g = self.params.ring().conjugation();
        let key = self.galois_key(g, ct.level, || "conjugation".into())?;
        Ok(self.switch_and_permute(ct, key, g))
    }

    /// Rotations of one ciphertext by each of `steps`, sharing one decomposition of c1.
    pub fn rotate_hoisted(&self, ct: &Ciphertext, steps: &[i64]) -> Result<Vec<Ciphertext>, Error> {
        self.check_ct(ct)?;
        let elements = steps
            .iter()
            .map(|&k| self.rotation_element(k, ct.slots))
            .collect::<Result<Vec<_>, _>>()?;
        let decomposed = self.decompose_poly(&ct.c1);
        let out = elements
            .iter()
            .zip(steps)
            .map(|(&g, &k)| {
                if g.value() == 1 {
                    return Ok(ct.clone());
                }
                let key = self.galois_key(g, ct.level, || format!("rotation by {k}"))?;
                let (e0, e1) = self.key_product(&decomposed, key);
                Ok(self.finish_galois(ct, e0, e1, g))
            })
            .collect();
        self.recycle(decomposed);
        out
    }

    // ----- lazy (Q*P) forms for double hoisting ------------------------------------------

    /// ct lifted to Q_l*P and multiplied by P (P limbs zero): the identity rotation in the
    /// form of `rotate_hoisted_lazy`.
    pub fn lift_times_p(&self, ct: &Ciphertext) -> ExtendedCiphertext {
        let ring = self.params.ring();
        let n = ring.n();
        let q_limbs = ct.level + 1;
        let scalars: Vec<u64> = ring.p_mod_q()[..q_limbs]
            .iter()
            .copied()
            .chain(std::iter::repeat_n(0, ring.p().len()))
            .collect();
        let lift = |poly: &RnsPoly| {
            let mut out = self.take(q_limbs, true);
            out.as_mut_slice()[..q_limbs * n].copy_from_slice(poly.as_slice());
            out.mul_scalar_assign(ring, &scalars);
            out
        };
        ExtendedCiphertext {
            c0: lift(&ct.c0),
            c1: lift(&ct.c1),
            scale: ct.scale,
            slots: ct.slots,
        }
    }

    /// A hoisted rotation left by `steps`, kept over Q_l*P (times P, before ModDown):
    /// (pi(P c0 + d0), pi(d1)) from the shared decomposition of c1 and `p_c0` = P*c0 over Q_l*P.
    pub fn rotate_hoisted_lazy(
        &self,
        ct: &Ciphertext,
        p_c0: &RnsPoly,
        decomposed: &Decomposed,
        steps: i64,
    ) -> Result<ExtendedCiphertext, Error> {
        let g = self.rotation_element(steps, ct.slots)?;
        let ring = self.params.ring();
        if g.value() == 1 {
            let lifted = self.lift_times_p(ct);
            return Ok(lifted);
        }
        let key = self.galois_key(g, ct.level, || format!("rotation by {steps}"))?;
        let (mut d0, d1) = self.key_product(decomposed, key);
        d0.add_assign(ring, p_c0);
        let mut c0 = self.take(ct.level + 1, true);
        d0.automorphism_into(ring, g, &mut c0);
        let mut c1 = self.take(ct.level + 1, true);
        d1.automorphism_into(ring, g, &mut c1);
        self.give(d0);
        self.give(d1);
        Ok(ExtendedCiphertext {
            c0,
            c1,
            scale: ct.scale,
            slots: ct.slots,
        })
    }

    /// ModDown of both parts: the ciphertext over Q_l (divided by P, rounded).
    pub fn mod_down(&self, ext: ExtendedCiphertext) -> Ciphertext {
        let ring = self.params.ring();
        let ExtendedCiphertext {
            mut c0,
            mut c1,
            scale,
            slots,
        } = ext;
        let q_limbs = c0.q_limbs();
        let mut d0 = self.take(q_limbs, false);
        ring.mod_down_into(&mut c0, &mut d0, false);
        let mut d1 = self.take(q_limbs, false);
        ring.mod_down_into(&mut c1, &mut d1, false);
        self.give(c0);
        self.give(c1);
        Ciphertext::from_parts(d0, d1, scale, slots, self.params.hash())
    }

    /// A zero extended ciphertext at `level` (an accumulator).
    pub fn extended_zero(&self, level: usize, scale: f64, slots: usize) -> ExtendedCiphertext {
        let ring = self.params.ring();
        ExtendedCiphertext {
            c0: RnsPoly::zero(ring, level + 1, true, Representation::Evaluation),
            c1: RnsPoly::zero(ring, level + 1, true, Representation::Evaluation),
            scale,
            slots,
        }
    }

    /// acc += x * pt over Q_l*P (the plaintext encoded over Q*P at the same level).
    pub fn mul_plain_acc_extended(
        &self,
        acc: &mut ExtendedCiphertext,
        x: &ExtendedCiphertext,
        pt: &Plaintext,
    ) -> Result<(), Error> {
        if !pt.has_special() || pt.level != x.level() || acc.level() != x.level() {
            return Err(Error::InvalidArgument(format!(
                "extended product needs a Q*P plaintext at level {} (got level {}, P limbs: {})",
                x.level(),
                pt.level,
                pt.has_special()
            )));
        }
        let ring = self.params.ring();
        acc.c0.mul_acc(ring, &x.c0, &pt.poly);
        acc.c1.mul_acc(ring, &x.c1, &pt.poly);
        Ok(())
    }

    /// acc += x over Q_l*P.
    pub fn add_extended_assign(&self, acc: &mut ExtendedCiphertext, x: &ExtendedCiphertext) {
        let ring = self.params.ring();
        acc.c0.add_assign(ring, &x.c0);
        acc.c1.add_assign(ring, &x.c1);
    }

    /// Returns an extended ciphertext's buffers to the pool.
    pub fn recycle_extended(&self, ext: ExtendedCiphertext) {
        self.give(ext.c0);
        self.give(ext.c1);
    }

    /// Rotation of `ct` by `steps` added lazily into `acc` over Q_l*P (no ModDown): for
    /// sums of rotations of different ciphertexts (the giant steps of a linear transform).
    pub fn rotate_acc_extended(
        &self,
        acc: &mut ExtendedCiphertext,
        ct: &Ciphertext,
        steps: i64,
    ) -> Result<(), Error> {
        self.check_ct(ct)?;
        let decomposed = self.decompose_poly(&ct.c1);
        let p_c0 = self.lift_times_p(ct);
        let rotated = self.rotate_hoisted_lazy(ct, &p_c0.c0, &decomposed, steps)?;
        self.recycle(decomposed);
        self.add_extended_assign(acc, &rotated);
        self.recycle_extended(rotated);
        self.recycle_extended(p_c0);
        Ok(())
    }
}
