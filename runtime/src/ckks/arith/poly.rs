//! `RnsPoly`: limb-major residues of one polynomial (Q limbs, optionally P limbs) and its ring ops.
//!
//! Every operation takes the `RingContext` the polynomial belongs to and panics on shape
//! mismatches (different N, limb counts or representations): those are programming errors
//! that the scheme layer rules out with its own level and scale checks.

use zeroize::Zeroize;

use super::Error;
use super::crt::centered_f64_range;
use super::kernels;
use super::parallel::{Work, for_each_job, for_each_limb, for_each_limb_into, for_each_limb_with};
use super::ring::{GaloisElement, RingContext};

/// Outputs of at least this many bytes are written with non-temporal stores: beyond the
/// per-core L2 they would be evicted before reuse anyway.
const STREAMING_BYTES: usize = 4 << 20;

/// Whether limbs hold coefficients or NTT-domain evaluations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Representation {
    /// Coefficients a_0..a_{N-1}.
    Coefficient,
    /// Evaluations at psi^(2*bitrev(i)+1) (the NTT domain).
    Evaluation,
}

/// One polynomial in RNS form: `limbs x N` residues in one `Vec<u64>`, limb i reduced mod
/// its prime (q_0..q_{q_limbs-1}, then p_0..p_{k-1} when `has_special`).
#[derive(Clone, PartialEq, Eq)]
pub struct RnsPoly {
    data: Vec<u64>,
    n: usize,
    q_limbs: usize,
    special_limbs: usize,
    representation: Representation,
}

/// Shape only: the residues may be secret.
impl std::fmt::Debug for RnsPoly {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RnsPoly")
            .field("n", &self.n)
            .field("q_limbs", &self.q_limbs)
            .field("special_limbs", &self.special_limbs)
            .field("representation", &self.representation)
            .finish_non_exhaustive()
    }
}

impl Zeroize for RnsPoly {
    fn zeroize(&mut self) {
        self.data.zeroize();
    }
}

impl RnsPoly {
    /// The zero polynomial with `q_limbs` Q limbs (level `q_limbs - 1`), plus P if asked.
    ///
    /// # Panics
    /// If `q_limbs` is 0 or exceeds the chain, or P is asked of a ring without special primes.
    pub fn zero(
        ring: &RingContext,
        q_limbs: usize,
        with_special: bool,
        representation: Representation,
    ) -> Self {
        assert!(
            (1..=ring.q().len()).contains(&q_limbs),
            "{q_limbs} Q limbs requested; the chain has {}",
            ring.q().len()
        );
        let special_limbs = if with_special {
            assert!(!ring.p().is_empty(), "the ring has no special primes");
            ring.p().len()
        } else {
            0
        };
        Self {
            data: vec![0; (q_limbs + special_limbs) * ring.n()],
            n: ring.n(),
            q_limbs,
            special_limbs,
            representation,
        }
    }

    /// The polynomial with the given signed coefficients (Coefficient representation).
    pub fn from_i64_coeffs(
        ring: &RingContext,
        coeffs: &[i64],
        q_limbs: usize,
        with_special: bool,
    ) -> Result<Self, Error> {
        Self::from_signed(ring, coeffs, q_limbs, with_special, |m, &c| m.from_i64(c))
    }

    /// The polynomial with the given signed 128-bit coefficients (Coefficient representation).
    pub fn from_i128_coeffs(
        ring: &RingContext,
        coeffs: &[i128],
        q_limbs: usize,
        with_special: bool,
    ) -> Result<Self, Error> {
        Self::from_signed(ring, coeffs, q_limbs, with_special, |m, &c| m.from_i128(c))
    }

    fn from_signed<T: Sync>(
        ring: &RingContext,
        coeffs: &[T],
        q_limbs: usize,
        with_special: bool,
        residue: impl Fn(&super::Modulus, &T) -> u64 + Send + Sync,
    ) -> Result<Self, Error> {
        if coeffs.len() != ring.n() {
            return Err(Error::WrongCoefficientCount {
                expected: ring.n(),
                got: coeffs.len(),
            });
        }
        let mut poly = Self::zero(ring, q_limbs, with_special, Representation::Coefficient);
        for_each_limb(Work::Light, &mut poly.data, ring.n(), |i, limb| {
            let m = ring.limb_modulus(q_limbs, i);
            for (o, c) in limb.iter_mut().zip(coeffs) {
                *o = residue(m, c);
            }
        });
        Ok(poly)
    }

    /// Wraps raw limbs (e.g. deserialized), checking their count and that every residue is
    /// reduced mod its limb's prime.
    pub fn from_limbs(
        ring: &RingContext,
        data: Vec<u64>,
        q_limbs: usize,
        with_special: bool,
        representation: Representation,
    ) -> Result<Self, Error> {
        let special_limbs = if with_special { ring.p().len() } else { 0 };
        let expected = (q_limbs + special_limbs) * ring.n();
        if q_limbs == 0 || q_limbs > ring.q().len() || data.len() != expected {
            return Err(Error::WrongCoefficientCount {
                expected,
                got: data.len(),
            });
        }
        for (i, limb) in data.chunks(ring.n()).enumerate() {
            let q = ring.limb_modulus(q_limbs, i).value();
            if let Some(&value) = limb.iter().find(|&&v| v >= q) {
                return Err(Error::ResidueNotReduced {
                    limb: i,
                    value,
                    modulus: q,
                });
            }
        }
        Ok(Self {
            data,
            n: ring.n(),
            q_limbs,
            special_limbs,
            representation,
        })
    }

    /// N.
    pub fn n(&self) -> usize {
        self.n
    }

    /// Number of Q limbs (level + 1).
    pub fn q_limbs(&self) -> usize {
        self.q_limbs
    }

    /// The level: number of Q limbs minus one.
    pub fn level(&self) -> usize {
        self.q_limbs - 1
    }

    /// Whether the P limbs follow the Q limbs.
    pub fn has_special(&self) -> bool {
        self.special_limbs > 0
    }

    /// Total number of limbs (Q and P).
    pub fn num_limbs(&self) -> usize {
        self.q_limbs + self.special_limbs
    }

    /// Coefficient or Evaluation.
    pub fn representation(&self) -> Representation {
        self.representation
    }

    /// Relabels the representation without transforming (for callers that filled the limbs).
    pub fn set_representation(&mut self, representation: Representation) {
        self.representation = representation;
    }

    /// Limb i (Q limbs first, then P limbs).
    pub fn limb(&self, i: usize) -> &[u64] {
        &self.data[i * self.n..(i + 1) * self.n]
    }

    /// Limb i, mutable; the caller keeps residues in `[0, q_i)`.
    pub fn limb_mut(&mut self, i: usize) -> &mut [u64] {
        &mut self.data[i * self.n..(i + 1) * self.n]
    }

    /// All limbs, limb-major.
    pub fn as_slice(&self) -> &[u64] {
        &self.data
    }

    /// All limbs, limb-major, mutable; the caller keeps residues in `[0, q_i)`.
    pub fn as_mut_slice(&mut self) -> &mut [u64] {
        &mut self.data
    }

    /// The limbs, consuming the polynomial.
    pub fn into_limbs(self) -> Vec<u64> {
        self.data
    }

    fn assert_same_shape(&self, other: &Self) {
        assert!(
            self.n == other.n
                && self.q_limbs == other.q_limbs
                && self.special_limbs == other.special_limbs
                && self.representation == other.representation,
            "shape mismatch: {self:?} vs {other:?}"
        );
    }

    fn assert_ring(&self, ring: &RingContext) {
        assert!(
            self.n == ring.n() && self.q_limbs <= ring.q().len(),
            "polynomial not from this ring"
        );
    }

    /// `self += other`.
    pub fn add_assign(&mut self, ring: &RingContext, other: &Self) {
        self.assert_same_shape(other);
        self.assert_ring(ring);
        let q_limbs = self.q_limbs;
        for_each_limb_with(
            Work::Light,
            &mut self.data,
            &other.data,
            self.n,
            |i, a, b| {
                kernels::add(a, b, ring.limb_modulus(q_limbs, i).value());
            },
        );
    }

    /// `self -= other`.
    pub fn sub_assign(&mut self, ring: &RingContext, other: &Self) {
        self.assert_same_shape(other);
        self.assert_ring(ring);
        let q_limbs = self.q_limbs;
        for_each_limb_with(
            Work::Light,
            &mut self.data,
            &other.data,
            self.n,
            |i, a, b| {
                kernels::sub(a, b, ring.limb_modulus(q_limbs, i).value());
            },
        );
    }

    /// `self = -self`.
    pub fn neg_assign(&mut self, ring: &RingContext) {
        self.assert_ring(ring);
        let q_limbs = self.q_limbs;
        for_each_limb(Work::Light, &mut self.data, self.n, |i, a| {
            kernels::neg(a, ring.limb_modulus(q_limbs, i).value());
        });
    }

    /// `self + other`.
    pub fn add(&self, ring: &RingContext, other: &Self) -> Self {
        self.combine(ring, other, false)
    }

    /// `self - other`.
    pub fn sub(&self, ring: &RingContext, other: &Self) -> Self {
        self.combine(ring, other, true)
    }

    /// `self ± other` limb by limb into a new polynomial of the same shape. Writing the
    /// fresh buffer once, instead of copying `self` and updating the copy, halves the memory
    /// traffic of these bandwidth-bound ops; outputs of [`STREAMING_BYTES`] or more are
    /// written with non-temporal stores, which also skip reading every output line first.
    fn combine(&self, ring: &RingContext, other: &Self, subtract: bool) -> Self {
        self.assert_same_shape(other);
        self.assert_ring(ring);
        let (len, q_limbs) = (self.data.len(), self.q_limbs);
        let streaming = len * size_of::<u64>() >= STREAMING_BYTES;
        let mut data = Vec::with_capacity(len);
        for_each_limb_into(
            Work::Light,
            &mut data.spare_capacity_mut()[..len],
            &self.data,
            &other.data,
            self.n,
            |i, out, a, b| {
                let q = ring.limb_modulus(q_limbs, i).value();
                if streaming && super::simd::add_into_streaming(out, a, b, q, subtract) {
                    return;
                }
                if subtract {
                    kernels::sub_into(out, a, b, q);
                } else {
                    kernels::add_into(out, a, b, q);
                }
            },
        );
        // SAFETY: the kernel wrote every entry of each of the `len / n` limbs of the spare
        // capacity, so the first `len` entries are initialized.
        unsafe { data.set_len(len) };
        Self {
            data,
            n: self.n,
            q_limbs,
            special_limbs: self.special_limbs,
            representation: self.representation,
        }
    }

    /// `-self`.
    pub fn neg(&self, ring: &RingContext) -> Self {
        let mut out = self.clone();
        out.neg_assign(ring);
        out
    }

    /// Entry-wise product `self *= other` (the ring product in the Evaluation domain).
    pub fn mul_assign(&mut self, ring: &RingContext, other: &Self) {
        self.assert_same_shape(other);
        self.assert_ring(ring);
        let q_limbs = self.q_limbs;
        for_each_limb_with(
            Work::Light,
            &mut self.data,
            &other.data,
            self.n,
            |i, a, b| {
                kernels::mul(a, b, ring.limb_modulus(q_limbs, i));
            },
        );
    }

    /// Entry-wise product `self * other`.
    pub fn mul(&self, ring: &RingContext, other: &Self) -> Self {
        let mut out = self.clone();
        out.mul_assign(ring, other);
        out
    }

    /// Multiply-accumulate `self += a * b`, entry-wise.
    pub fn mul_acc(&mut self, ring: &RingContext, a: &Self, b: &Self) {
        self.assert_same_shape(a);
        self.assert_same_shape(b);
        self.assert_ring(ring);
        let (n, q_limbs) = (self.n, self.q_limbs);
        for_each_limb_with(Work::Light, &mut self.data, &a.data, n, |i, out, a_limb| {
            let b_limb = &b.data[i * n..(i + 1) * n];
            kernels::mul_acc(out, a_limb, b_limb, ring.limb_modulus(q_limbs, i));
        });
    }

    /// `self = sum_j lhs[j] * rhs[j]`, entry-wise, accumulated in u128 and reduced once per
    /// group of terms that cannot overflow (the inner product of key switching).
    ///
    /// # Panics
    /// If the lists differ in length or any shape differs from `self`.
    pub fn inner_product_assign(&mut self, ring: &RingContext, lhs: &[&Self], rhs: &[&Self]) {
        assert_eq!(
            lhs.len(),
            rhs.len(),
            "inner product of lists of different lengths"
        );
        for p in lhs.iter().chain(rhs) {
            self.assert_same_shape(p);
        }
        self.assert_ring(ring);
        let (n, q_limbs) = (self.n, self.q_limbs);
        for_each_limb(Work::Heavy, &mut self.data, n, |i, out| {
            let m = ring.limb_modulus(q_limbs, i);
            let range = i * n..(i + 1) * n;
            let terms: Vec<(&[u64], &[u64])> = lhs
                .iter()
                .zip(rhs)
                .map(|(a, b)| (&a.data[range.clone()], &b.data[range.clone()]))
                .collect();
            kernels::inner_product(out, &terms, m);
        });
    }

    /// `out0 = sum_j lhs[j] * rhs0[j]` and `out1 = sum_j lhs[j] * rhs1[j]` in one pass that
    /// reads each `lhs[j]` once: the two halves of a key switch's inner product with the
    /// key (b_j, a_j), where the ModUp digits are `lhs`.
    ///
    /// `rhs0`/`rhs1` may carry more Q limbs than the outputs (a key stored over all of Q*P
    /// and used at a lower level): only their limbs of the outputs' primes are read (the
    /// first Q limbs and the P limbs), so a key is never copied down to a level.
    ///
    /// # Panics
    /// If the lists differ in length, `lhs` or `out1` differ in shape from `out0`, or a
    /// right-hand polynomial lacks one of `out0`'s limbs.
    pub fn inner_product_pair(
        ring: &RingContext,
        out0: &mut Self,
        out1: &mut Self,
        lhs: &[&Self],
        rhs0: &[&Self],
        rhs1: &[&Self],
    ) {
        assert!(
            lhs.len() == rhs0.len() && lhs.len() == rhs1.len(),
            "inner product of lists of different lengths"
        );
        for p in lhs.iter().copied().chain([&*out1]) {
            out0.assert_same_shape(p);
        }
        for p in rhs0.iter().chain(rhs1) {
            assert!(
                p.n == out0.n
                    && p.q_limbs >= out0.q_limbs
                    && p.special_limbs == out0.special_limbs
                    && p.representation == out0.representation,
                "shape mismatch: {p:?} cannot serve {out0:?}"
            );
        }
        out0.assert_ring(ring);
        let (n, q_limbs) = (out0.n, out0.q_limbs);
        // Limb i of the outputs is limb `i` of a right-hand polynomial with `rq` Q limbs
        // when i is a Q limb, limb `rq + (i - q_limbs)` when it is a P limb.
        let rhs_range = move |p: &Self, i: usize| {
            let j = if i < q_limbs {
                i
            } else {
                p.q_limbs + i - q_limbs
            };
            j * n..(j + 1) * n
        };
        let jobs: Vec<(&mut [u64], &mut [u64])> = out0
            .data
            .chunks_mut(n)
            .zip(out1.data.chunks_mut(n))
            .collect();
        for_each_job(jobs, n * lhs.len() * 2, |i, (o0, o1)| {
            let m = ring.limb_modulus(q_limbs, i);
            let range = i * n..(i + 1) * n;
            let terms: Vec<(&[u64], &[u64], &[u64])> = lhs
                .iter()
                .zip(rhs0)
                .zip(rhs1)
                .map(|((a, b0), b1)| {
                    (
                        &a.data[range.clone()],
                        &b0.data[rhs_range(b0, i)],
                        &b1.data[rhs_range(b1, i)],
                    )
                })
                .collect();
            kernels::inner_product_pair(o0, o1, &terms, m);
        });
    }

    /// Multiplies limb i by `scalars[i]` (one residue per limb, each < its prime; Shoup).
    ///
    /// # Panics
    /// If there is not one scalar per limb.
    pub fn mul_scalar_assign(&mut self, ring: &RingContext, scalars: &[u64]) {
        assert_eq!(scalars.len(), self.num_limbs(), "one scalar per limb");
        self.assert_ring(ring);
        let q_limbs = self.q_limbs;
        for_each_limb(Work::Light, &mut self.data, self.n, |i, a| {
            let m = ring.limb_modulus(q_limbs, i);
            kernels::mul_shoup(a, m.shoup(scalars[i]), m);
        });
    }

    /// Adds the constant polynomial with residue `scalars[i]` on limb i: every slot in the
    /// Evaluation domain, coefficient 0 in the Coefficient domain.
    ///
    /// # Panics
    /// If there is not one scalar per limb.
    pub fn add_scalar_assign(&mut self, ring: &RingContext, scalars: &[u64]) {
        assert_eq!(scalars.len(), self.num_limbs(), "one scalar per limb");
        self.assert_ring(ring);
        let (q_limbs, representation) = (self.q_limbs, self.representation);
        for_each_limb(Work::Light, &mut self.data, self.n, |i, a| {
            let m = ring.limb_modulus(q_limbs, i);
            let c = m.reduce(scalars[i]);
            match representation {
                Representation::Evaluation => kernels::add_scalar(a, c, m.value()),
                Representation::Coefficient => a[0] = m.add(a[0], c),
            }
        });
    }

    /// Coefficient -> Evaluation (no-op if already there).
    pub fn ntt(&mut self, ring: &RingContext) {
        self.assert_ring(ring);
        if self.representation == Representation::Evaluation {
            return;
        }
        let q_limbs = self.q_limbs;
        for_each_limb(Work::Heavy, &mut self.data, self.n, |i, limb| {
            ring.limb_kernel(q_limbs, i).forward(limb);
        });
        self.representation = Representation::Evaluation;
    }

    /// Evaluation -> Coefficient (no-op if already there).
    pub fn intt(&mut self, ring: &RingContext) {
        self.assert_ring(ring);
        if self.representation == Representation::Coefficient {
            return;
        }
        let q_limbs = self.q_limbs;
        for_each_limb(Work::Heavy, &mut self.data, self.n, |i, limb| {
            ring.limb_kernel(q_limbs, i).inverse(limb);
        });
        self.representation = Representation::Coefficient;
    }

    /// The polynomial in the given representation.
    pub fn to_representation(&mut self, ring: &RingContext, representation: Representation) {
        match representation {
            Representation::Coefficient => self.intt(ring),
            Representation::Evaluation => self.ntt(ring),
        }
    }

    /// `a(X^g)` in the same representation.
    pub fn automorphism(&self, ring: &RingContext, g: GaloisElement) -> Self {
        let mut out = Self {
            data: vec![0; self.data.len()],
            ..*self
        };
        self.automorphism_into(ring, g, &mut out);
        out
    }

    /// `out = a(X^g)`, `out` of the same shape as `self`.
    ///
    /// Coefficient domain: X^i -> X^(i*g mod 2N), negated when i*g mod 2N >= N.
    /// Evaluation domain: the index permutation of `RingContext::ntt_permutation`.
    pub fn automorphism_into(&self, ring: &RingContext, g: GaloisElement, out: &mut Self) {
        self.assert_ring(ring);
        out.representation = self.representation;
        self.assert_same_shape(out);
        let (n, q_limbs) = (self.n, self.q_limbs);
        match self.representation {
            Representation::Evaluation => {
                let permutation = ring.ntt_permutation(g);
                for_each_limb_with(Work::Light, &mut out.data, &self.data, n, |_, o, a| {
                    kernels::gather_automorphism(o, a, &permutation);
                });
            }
            Representation::Coefficient => {
                let mask = 2 * n - 1;
                let g = g.value() as usize;
                for_each_limb_with(Work::Light, &mut out.data, &self.data, n, |i, o, a| {
                    let q = ring.limb_modulus(q_limbs, i).value();
                    let mut index = 0usize;
                    for &coefficient in a {
                        // index = i*g mod 2N, stepped by g.
                        let target = index & (n - 1);
                        let negate = index >= n;
                        let negated = (q - coefficient) * u64::from(coefficient != 0);
                        o[target] = if negate { negated } else { coefficient };
                        index = (index + g) & mask;
                    }
                });
            }
        }
    }

    /// Keeps the first `q_limbs` Q limbs (dropping q_{q_limbs}..), and the P limbs if any.
    ///
    /// # Panics
    /// If `q_limbs` is 0 or more than the current count.
    pub fn truncate_q_limbs(&mut self, q_limbs: usize) {
        assert!(
            (1..=self.q_limbs).contains(&q_limbs),
            "cannot keep {q_limbs} of {} Q limbs",
            self.q_limbs
        );
        let n = self.n;
        if self.special_limbs > 0 {
            self.data.copy_within(self.q_limbs * n.., q_limbs * n);
        }
        self.data.truncate((q_limbs + self.special_limbs) * n);
        self.q_limbs = q_limbs;
    }

    /// Drops the last `count` Q limbs.
    ///
    /// # Panics
    /// If that would leave no Q limb.
    pub fn drop_last_q_limbs(&mut self, count: usize) {
        assert!(
            count < self.q_limbs,
            "cannot drop {count} of {} Q limbs",
            self.q_limbs
        );
        self.truncate_q_limbs(self.q_limbs - count);
    }

    /// Drops the P limbs (no-op without them).
    pub fn drop_special_limbs(&mut self) {
        self.data.truncate(self.q_limbs * self.n);
        self.special_limbs = 0;
    }

    /// The centered value of every coefficient, `(-M/2, M/2]` for M the product of the
    /// limbs' primes (Q limbs, and P limbs if present), correctly rounded to f64.
    ///
    /// Exact CRT (Garner mixed radix, no cancellation); a u128 path when M < 2^127.
    ///
    /// # Panics
    /// If the polynomial is in the Evaluation domain.
    pub fn to_centered_f64(&self, ring: &RingContext) -> Vec<f64> {
        let mut out = vec![0.0; self.n];
        self.to_centered_f64_into(ring, &mut out);
        out
    }

    /// `to_centered_f64` into a slice of length N.
    pub fn to_centered_f64_into(&self, ring: &RingContext, out: &mut [f64]) {
        self.assert_ring(ring);
        let moduli = ring.limb_moduli(self.q_limbs, self.special_limbs > 0);
        self.centered_from_limbs(&moduli, out);
    }

    /// The centered value of every coefficient reconstructed from the first `limbs` Q limbs
    /// only: exact (and correctly rounded) when every |coefficient| < (q_0 ... q_{limbs-1})/2,
    /// e.g. a decrypted plaintext of magnitude well below q_0 needs one limb.
    ///
    /// # Panics
    /// If the polynomial is in the Evaluation domain, `limbs` is 0 or exceeds the Q limbs.
    pub fn to_centered_f64_prefix(&self, ring: &RingContext, limbs: usize, out: &mut [f64]) {
        self.assert_ring(ring);
        assert!(
            (1..=self.q_limbs).contains(&limbs),
            "{limbs} of {} Q limbs",
            self.q_limbs
        );
        self.centered_from_limbs(&ring.q()[..limbs], out);
    }

    fn centered_from_limbs(&self, moduli: &[super::Modulus], out: &mut [f64]) {
        assert_eq!(
            self.representation,
            Representation::Coefficient,
            "reconstruct coefficients, not evaluations"
        );
        assert_eq!(out.len(), self.n, "one output per coefficient");
        let data = &self.data[..moduli.len() * self.n];
        let chunk = 4096;
        let job =
            |start: usize, out: &mut [f64]| centered_f64_range(moduli, data, self.n, start, out);
        if self.n * moduli.len() >= 1 << 15 && rayon::current_num_threads() > 1 {
            use rayon::prelude::*;
            out.par_chunks_mut(chunk)
                .enumerate()
                .for_each(|(k, o)| job(k * chunk, o));
        } else {
            out.chunks_mut(chunk)
                .enumerate()
                .for_each(|(k, o)| job(k * chunk, o));
        }
    }
}

impl RingContext {
    /// The residues of a signed integer on each limb of a polynomial with `q_limbs` Q limbs
    /// (then P if asked), for `mul_scalar_assign` and `add_scalar_assign`.
    pub fn scalar_residues(&self, value: i128, q_limbs: usize, with_special: bool) -> Vec<u64> {
        self.limb_moduli(q_limbs, with_special)
            .iter()
            .map(|m| m.from_i128(value))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use num_bigint::BigInt;

    use super::*;
    use crate::ckks::arith::Modulus;
    use crate::ckks::arith::ntt::NttBackend;
    use crate::ckks::arith::test_util::{
        centered_bigints, random_poly, residue, schoolbook, test_ring, test_ring_62,
    };

    #[test]
    fn entrywise_ops_match_per_element_arithmetic() {
        for ring in [
            test_ring(5, 3, 2, 2, NttBackend::Fast),
            test_ring_62(5, 3, 2, 2),
        ] {
            let a = random_poly(&ring, 1, 3, true, Representation::Evaluation);
            let b = random_poly(&ring, 2, 3, true, Representation::Evaluation);
            let c = random_poly(&ring, 3, 3, true, Representation::Evaluation);
            let moduli = ring.limb_moduli(3, true);
            let check = |got: &RnsPoly, f: &dyn Fn(&Modulus, u64, u64, u64) -> u64| {
                for (i, m) in moduli.iter().enumerate() {
                    for k in 0..ring.n() {
                        let want = f(m, a.limb(i)[k], b.limb(i)[k], c.limb(i)[k]);
                        assert_eq!(got.limb(i)[k], want, "limb {i} entry {k}");
                    }
                }
            };
            let wide = |m: &Modulus, v: u128| (v % m.value() as u128) as u64;
            check(&a.add(&ring, &b), &|m, x, y, _| {
                wide(m, x as u128 + y as u128)
            });
            check(&a.sub(&ring, &b), &|m, x, y, _| {
                wide(m, x as u128 + m.value() as u128 - y as u128)
            });
            check(&a.neg(&ring), &|m, x, _, _| {
                wide(m, m.value() as u128 - x as u128)
            });
            check(&a.mul(&ring, &b), &|m, x, y, _| {
                wide(m, x as u128 * y as u128)
            });
            let mut acc = c.clone();
            acc.mul_acc(&ring, &a, &b);
            check(&acc, &|m, x, y, z| {
                wide(m, x as u128 * y as u128 + z as u128)
            });
            let mut dot = RnsPoly::zero(&ring, 3, true, Representation::Evaluation);
            dot.inner_product_assign(&ring, &[&a, &b, &c, &a], &[&b, &c, &a, &a]);
            check(&dot, &|m, x, y, z| {
                let q = m.value() as u128;
                let terms = [(x, y), (y, z), (z, x), (x, x)];
                (terms
                    .iter()
                    .map(|&(u, v)| u as u128 * v as u128 % q)
                    .sum::<u128>()
                    % q) as u64
            });
            let scalars = ring.scalar_residues(-123_456_789_012_345_678_901_234, 3, true);
            let mut scaled = a.clone();
            scaled.mul_scalar_assign(&ring, &scalars);
            check(&scaled, &|m, x, _, _| {
                wide(
                    m,
                    x as u128 * m.from_i128(-123_456_789_012_345_678_901_234) as u128,
                )
            });
            let mut shifted = a.clone();
            shifted.add_scalar_assign(&ring, &scalars);
            check(&shifted, &|m, x, _, _| {
                m.add(x, m.from_i128(-123_456_789_012_345_678_901_234))
            });
        }
    }

    #[test]
    fn inner_product_pair_matches_two_inner_products() {
        for ring in [
            test_ring(6, 3, 2, 2, NttBackend::Fast),
            test_ring_62(5, 3, 2, 2),
        ] {
            let polys: Vec<RnsPoly> = (0..9)
                .map(|k| random_poly(&ring, 100 + k, 3, true, Representation::Evaluation))
                .collect();
            let lhs: Vec<&RnsPoly> = polys[..3].iter().collect();
            let rhs0: Vec<&RnsPoly> = polys[3..6].iter().collect();
            let rhs1: Vec<&RnsPoly> = polys[6..].iter().collect();
            let mut want0 = RnsPoly::zero(&ring, 3, true, Representation::Evaluation);
            let mut want1 = want0.clone();
            want0.inner_product_assign(&ring, &lhs, &rhs0);
            want1.inner_product_assign(&ring, &lhs, &rhs1);
            let (mut got0, mut got1) = (polys[0].clone(), polys[1].clone());
            RnsPoly::inner_product_pair(&ring, &mut got0, &mut got1, &lhs, &rhs0, &rhs1);
            assert_eq!((got0, got1), (want0, want1));
        }
    }

    /// A key stored over all of Q*P serves an inner product at a lower level.
    #[test]
    fn inner_product_pair_reads_a_longer_key_at_its_limbs() {
        let ring = test_ring(6, 4, 2, 2, NttBackend::Fast);
        let digits: Vec<RnsPoly> = (0..2)
            .map(|k| random_poly(&ring, 120 + k, 2, true, Representation::Evaluation))
            .collect();
        let keys: Vec<RnsPoly> = (0..4)
            .map(|k| random_poly(&ring, 130 + k, 4, true, Representation::Evaluation))
            .collect();
        let short: Vec<RnsPoly> = keys
            .iter()
            .map(|k| {
                let mut s = k.clone();
                s.truncate_q_limbs(2);
                s
            })
            .collect();
        let lhs: Vec<&RnsPoly> = digits.iter().collect();
        let run = |rhs: &[RnsPoly]| {
            let mut out0 = RnsPoly::zero(&ring, 2, true, Representation::Evaluation);
            let mut out1 = out0.clone();
            let r0: Vec<&RnsPoly> = rhs[..2].iter().collect();
            let r1: Vec<&RnsPoly> = rhs[2..].iter().collect();
            RnsPoly::inner_product_pair(&ring, &mut out0, &mut out1, &lhs, &r0, &r1);
            (out0, out1)
        };
        assert_eq!(run(&keys), run(&short));
    }

    #[test]
    fn ntt_product_is_the_negacyclic_product() {
        for backend in [NttBackend::Fast, NttBackend::Reference] {
            let ring = test_ring(6, 3, 2, 2, backend);
            let a = random_poly(&ring, 5, 3, true, Representation::Coefficient);
            let b = random_poly(&ring, 6, 3, true, Representation::Coefficient);
            let (mut fa, mut fb) = (a.clone(), b.clone());
            fa.ntt(&ring);
            fb.ntt(&ring);
            let mut product = fa.mul(&ring, &fb);
            product.intt(&ring);
            for (i, m) in ring.limb_moduli(3, true).iter().enumerate() {
                assert_eq!(product.limb(i), schoolbook(a.limb(i), b.limb(i), m.value()));
            }
        }
    }

    #[test]
    fn backends_agree_bit_for_bit_inside_a_ring() {
        let fast = test_ring(8, 3, 2, 2, NttBackend::Fast);
        let reference = test_ring(8, 3, 2, 2, NttBackend::Reference);
        let a = random_poly(&fast, 9, 3, true, Representation::Coefficient);
        let (mut x, mut y) = (a.clone(), a.clone());
        x.ntt(&fast);
        y.ntt(&reference);
        assert_eq!(x, y);
        x.intt(&reference);
        y.intt(&fast);
        assert_eq!(x, a);
        assert_eq!(y, a);
    }

    #[test]
    fn automorphisms_commute_with_the_ntt() {
        for ring in [
            test_ring(7, 2, 1, 1, NttBackend::Fast),
            test_ring(3, 2, 1, 1, NttBackend::Reference),
        ] {
            let a = random_poly(&ring, 12, 2, true, Representation::Coefficient);
            let mut elements = vec![
                ring.conjugation(),
                ring.rotation(1),
                ring.rotation(-3),
                ring.rotation(0),
            ];
            elements.push(ring.galois_element(2 * ring.n() as u64 - 3).expect("odd"));
            for g in elements {
                // Coefficient map against its definition X^i -> X^(i g).
                let coeff = a.automorphism(&ring, g);
                let two_n = 2 * ring.n() as u64;
                for (l, m) in ring.limb_moduli(2, true).iter().enumerate() {
                    for i in 0..ring.n() {
                        let e = (i as u64 * g.value()) % two_n;
                        let want = if e < ring.n() as u64 {
                            a.limb(l)[i]
                        } else {
                            m.neg(a.limb(l)[i])
                        };
                        assert_eq!(coeff.limb(l)[(e % ring.n() as u64) as usize], want);
                    }
                }
                let mut via_coeff = coeff;
                via_coeff.ntt(&ring);
                let mut evaluated = a.clone();
                evaluated.ntt(&ring);
                let via_ntt = evaluated.automorphism(&ring, g);
                assert_eq!(via_ntt, via_coeff, "g = {}", g.value());
            }
        }
    }

    /// Above 4096 slots the NTT-domain map runs block by block; check it on N = 2^13
    /// against the plain permutation for every rotation step and conjugation.
    #[test]
    fn blocked_ntt_automorphism_matches_the_permutation() {
        let ring = test_ring(13, 1, 0, 1, NttBackend::Fast);
        let a = random_poly(&ring, 77, 1, false, Representation::Evaluation);
        let mut elements: Vec<GaloisElement> = (-5..40).map(|k| ring.rotation(k)).collect();
        elements.push(ring.conjugation());
        for g in elements {
            let permutation = ring.ntt_permutation(g);
            let want: Vec<u64> = permutation.iter().map(|&p| a.limb(0)[p as usize]).collect();
            assert_eq!(
                a.automorphism(&ring, g).limb(0),
                &want[..],
                "g = {}",
                g.value()
            );
        }
    }

    #[test]
    fn centered_reconstruction_matches_bigint() {
        // 1, 2, 3 limbs (u128 path), many limbs with 62-bit primes (word path), and with P.
        let cases = [
            (test_ring(4, 1, 0, 1, NttBackend::Fast), 1, false),
            (test_ring(4, 3, 2, 1, NttBackend::Fast), 2, false),
            (test_ring(4, 3, 2, 1, NttBackend::Fast), 3, false),
            (test_ring(4, 3, 2, 1, NttBackend::Fast), 3, true),
            (test_ring_62(4, 20, 2, 1), 20, true),
            (test_ring_62(4, 20, 2, 1), 5, false),
            (ascending_ring(), 2, false),
        ];
        for (ring, q_limbs, special) in cases {
            let mut polys = vec![random_poly(
                &ring,
                q_limbs as u8,
                q_limbs,
                special,
                Representation::Coefficient,
            )];
            // Values around 0 and ±M/2, and ±2^53 +- 1.
            let small: Vec<i128> = (0..ring.n() as i128)
                .map(|i| (i - 8) * ((1i128 << 53) + 1))
                .collect();
            polys.push(
                RnsPoly::from_i128_coeffs(&ring, &small, q_limbs, special).expect("N coefficients"),
            );
            let mut near_half = polys[0].clone();
            let moduli = ring.limb_moduli(q_limbs, special);
            for (i, m) in moduli.iter().enumerate() {
                let q = m.value();
                // -1, 1, (M-1)/2 (= -2^-1 mod q_i) and (M+1)/2 (= 2^-1, centered to -(M-1)/2).
                near_half.limb_mut(i)[..4].copy_from_slice(&[q - 1, 1, (q - 1) / 2, q.div_ceil(2)]);
            }
            polys.push(near_half);
            for poly in polys {
                let got = poly.to_centered_f64(&ring);
                for (c, value) in centered_bigints(&ring, &poly).iter().enumerate() {
                    let expected: f64 = value.to_string().parse().expect("decimal");
                    assert_eq!(got[c], expected, "coefficient {c} of {poly:?}");
                }
            }
        }
    }

    /// q_0 < q_1, the other order of the two-limb fast path.
    fn ascending_ring() -> std::sync::Arc<RingContext> {
        let mut q = crate::ckks::arith::primes::primes_below(4, 40, 1, &[]).expect("prime");
        q.extend(crate::ckks::arith::primes::primes_below(4, 61, 1, &[]).expect("prime"));
        RingContext::new(4, &q, &[], 1).expect("ring")
    }

    #[test]
    fn prefix_reconstruction_is_exact_for_small_values() {
        let ring = test_ring(5, 4, 0, 1, NttBackend::Fast);
        let values: Vec<i64> = (0..32)
            .map(|i| (i - 16) * 123_456_789_013 + i * i)
            .collect();
        let poly = RnsPoly::from_i64_coeffs(&ring, &values, 4, false).expect("N coefficients");
        let full = poly.to_centered_f64(&ring);
        for limbs in 1..=4 {
            let mut out = vec![0.0; 32];
            poly.to_centered_f64_prefix(&ring, limbs, &mut out);
            assert_eq!(out, full, "{limbs} limbs");
        }
        assert_eq!(full, values.iter().map(|&v| v as f64).collect::<Vec<_>>());
    }

    #[test]
    fn signed_constructors_round_trip() {
        let ring = test_ring(5, 3, 1, 1, NttBackend::Fast);
        let coeffs: Vec<i64> = (0..32).map(|i| (i - 16) * 1_000_000_007).collect();
        let poly = RnsPoly::from_i64_coeffs(&ring, &coeffs, 3, true).expect("N coefficients");
        let back: Vec<i64> = poly
            .to_centered_f64(&ring)
            .iter()
            .map(|&v| v as i64)
            .collect();
        assert_eq!(back, coeffs);
        let wide: Vec<i128> = (0..32).map(|i| (i - 16) * (1i128 << 100)).collect();
        let poly = RnsPoly::from_i128_coeffs(&ring, &wide, 3, false).expect("N coefficients");
        for (value, &want) in centered_bigints(&ring, &poly).iter().zip(&wide) {
            assert_eq!(*value, BigInt::from(want));
        }
        assert_eq!(
            RnsPoly::from_i64_coeffs(&ring, &coeffs[..5], 3, true).map_err(|e| e.to_string()),
            Err("expected 32 coefficients, got 5".into())
        );
        let bad = vec![u64::MAX; 32 * 3];
        assert_eq!(
            RnsPoly::from_limbs(&ring, bad, 3, false, Representation::Coefficient)
                .map_err(|e| e.to_string()),
            Err(format!(
                "limb 0 holds {}, not reduced mod {}",
                u64::MAX,
                ring.q()[0].value()
            ))
        );
    }

    #[test]
    fn dropping_limbs_keeps_the_rest() {
        let ring = test_ring(4, 4, 2, 2, NttBackend::Fast);
        let a = random_poly(&ring, 21, 4, true, Representation::Evaluation);
        let mut b = a.clone();
        b.drop_last_q_limbs(2);
        assert_eq!((b.q_limbs(), b.num_limbs()), (2, 4));
        assert_eq!(b.limb(1), a.limb(1));
        assert_eq!(b.limb(2), a.limb(4), "P limbs move down");
        assert_eq!(b.limb(3), a.limb(5));
        b.drop_special_limbs();
        assert_eq!((b.num_limbs(), b.has_special()), (2, false));
        // A seeded polynomial's limbs do not depend on how many limbs were drawn.
        let short = random_poly(&ring, 21, 2, true, Representation::Evaluation);
        let mut long = a.clone();
        long.truncate_q_limbs(2);
        assert_eq!(short, long);
        // Residues agree with the bigint view after dropping.
        let mut c = random_poly(&ring, 22, 3, false, Representation::Coefficient);
        let values = centered_bigints(&ring, &c);
        c.drop_last_q_limbs(1);
        for (k, v) in values.iter().enumerate() {
            assert_eq!(c.limb(1)[k], residue(v, ring.q()[1].value()));
        }
    }

    #[test]
    fn ops_agree_in_a_one_thread_pool() {
        let ring = test_ring(12, 3, 1, 1, NttBackend::Fast);
        let a = random_poly(&ring, 30, 3, true, Representation::Coefficient);
        let b = random_poly(&ring, 31, 3, true, Representation::Coefficient);
        let run = || {
            let mut x = a.add(&ring, &b);
            x.ntt(&ring);
            let mut y = x.mul(&ring, &x).automorphism(&ring, ring.rotation(5));
            y.intt(&ring);
            (y.to_centered_f64(&ring), y)
        };
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .expect("pool");
        assert_eq!(pool.install(run), run());
    }
}
