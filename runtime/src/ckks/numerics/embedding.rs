//! The CKKS canonical embedding: n complex slots <-> N real coefficients (unscaled f64), by the special FFT over the orbit of 5 mod 2N.

use num_complex::Complex64;

use super::linalg::DoubleDouble;

/// Smallest supported `log2 N` (N = 2: one slot).
pub const MIN_LOG_N: u32 = 1;
/// Largest supported `log2 N` (the twiddle table holds N/2 complex values).
pub const MAX_LOG_N: u32 = 20;

/// A malformed request to the canonical embedding.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EmbeddingError {
    /// The ring degree is outside the supported range.
    #[error("log2 of the ring degree must be in {min}..={max}, got {log_n}")]
    UnsupportedLogN {
        /// The requested `log2 N`.
        log_n: u32,
        /// Smallest supported value.
        min: u32,
        /// Largest supported value.
        max: u32,
    },
    /// A slot count that is not a power of two in `1..=N/2`.
    #[error("slot count must be a power of two in 1..={max_slots}, got {slots}")]
    InvalidSlotCount {
        /// The requested slot count.
        slots: usize,
        /// `N/2` for this ring.
        max_slots: usize,
    },
    /// A buffer of the wrong length.
    #[error("{what}: expected length {expected}, got {got}")]
    LengthMismatch {
        /// Which buffer.
        what: &'static str,
        /// The length this ring and slot count require.
        expected: usize,
        /// The length given.
        got: usize,
    },
}

/// `exp(2*pi*i*k/m)`, accurate to an ulp: the angle is reduced to the first octant on
/// integers, so that e.g. `unit_root(m/4, m)` is exactly `i` and conjugate roots are exact
/// conjugates. Panics if `m == 0` (there is no 0-th root of unity).
pub fn unit_root(k: u64, m: u64) -> Complex64 {
    assert!(m > 0, "unit_root: the order m must be positive");
    // Work in units of 2*pi/(8m) so that the quarter and eighth turns are integers.
    let full = 8 * u128::from(m);
    let mut x = (8 * u128::from(k % m)) % full;
    let conjugate = x > full / 2;
    if conjugate {
        x = full - x;
    }
    // x in [0, full/2]: angle in [0, pi].
    let second_quadrant = x > full / 4;
    if second_quadrant {
        x -= full / 4;
    }
    // x in [0, full/4]: angle in [0, pi/2]; fold onto [0, pi/4].
    let swapped = x > full / 8;
    if swapped {
        x = full / 4 - x;
    }
    let angle = std::f64::consts::TAU * (x as f64 / full as f64);
    let (mut s, mut c) = angle.sin_cos();
    if swapped {
        std::mem::swap(&mut s, &mut c);
    }
    if second_quadrant {
        // exp(i(pi/2 + phi)) = -sin(phi) + i cos(phi)
        (c, s) = (-s, c);
    }
    if conjugate {
        s = -s;
    }
    Complex64::new(c, s)
}

/// Permutes `values` (length a power of two) into bit-reversed index order, in place.
pub fn bit_reverse_permute<T>(values: &mut [T]) {
    let n = values.len();
    debug_assert!(
        n == 0 || n.is_power_of_two(),
        "bit reversal needs a power-of-two length"
    );
    let mut j = 0usize;
    for i in 1..n {
        // Increment j as a bit-reversed counter.
        let mut bit = n >> 1;
        while j & bit != 0 {
            j ^= bit;
            bit >>= 1;
        }
        j |= bit;
        if i < j {
            values.swap(i, j);
        }
    }
}

/// The special FFT of one ring degree `N = 2^log_n`: the twiddles of every butterfly stage,
/// built once and shared by every slot count `n <= N/2` (a stage's twiddles depend only on
/// its length).
///
/// Slot `j` of a plaintext `m(X)` in `R = R[X]/(X^N + 1)` is `m(zeta^(5^j))` with
/// `zeta = exp(i*pi/N)`, `0 <= j < N/2` (Cheon–Kim–Kim–Song; Lattigo `schemes/ckks/encoder.go`).
/// With `n < N/2` slots the plaintext lives in the subring `R[Y]`, `Y = X^gap`,
/// `gap = N/(2n)`: its coefficients sit at multiples of `gap`, and its `N/2` full-ring
/// slots are the `n` slots repeated `gap` times.
///
/// Rotation convention (what the evaluator's Galois keys rely on): the automorphism
/// `X -> X^(5^k mod 2N)` rotates the slot vector **left** by `k`, i.e. the new slot `j`
/// holds the old slot `j + k (mod n)`; `X -> X^(2N-1) = X^-1` conjugates every slot.
#[derive(Debug, Clone)]
pub struct CanonicalEmbedding {
    log_n: u32,
    /// `twiddles[h - 1 + j] = exp(2*pi*i * (5^j mod 8h) / 8h)` for the stage of half-length
    /// `h` (blocks of `2h`), `j < h`: the root `zeta_{4*2h}^{5^j}` of that sub-transform.
    twiddles: Vec<Complex64>,
}

impl CanonicalEmbedding {
    /// Builds the tables for ring degree `N = 2^log_n`.
    pub fn new(log_n: u32) -> Result<Self, EmbeddingError> {
        if !(MIN_LOG_N..=MAX_LOG_N).contains(&log_n) {
            return Err(EmbeddingError::UnsupportedLogN {
                log_n,
                min: MIN_LOG_N,
                max: MAX_LOG_N,
            });
        }
        let max_slots = 1usize << (log_n - 1);
        let mut twiddles = Vec::with_capacity(max_slots.saturating_sub(1));
        let mut half = 1usize;
        while half < max_slots {
            let order = 8 * half as u64;
            let mut power = 1u64;
            for _ in 0..half {
                twiddles.push(unit_root(power, order));
                power = power * 5 % order;
            }
            half *= 2;
        }
        Ok(Self { log_n, twiddles })
    }

    /// `log2 N`.
    pub fn log_n(&self) -> u32 {
        self.log_n
    }

    /// The ring degree `N`.
    pub fn ring_degree(&self) -> usize {
        1 << self.log_n
    }

    /// `N/2`, the largest slot count.
    pub fn max_slots(&self) -> usize {
        1 << (self.log_n - 1)
    }

    /// The Galois element `5^k mod 2N` whose automorphism `X -> X^g` rotates the slots left
    /// by `k` (new slot `j` = old slot `j + k`); negative `k` rotates right.
    pub fn rotation_galois_element(&self, k: i64) -> u64 {
        let two_n = 2 * self.ring_degree() as u64;
        // 5 has order N/2 modulo 2N.
        let exponent = k.rem_euclid(self.max_slots() as i64) as u64;
        pow_mod(5, exponent, two_n)
    }

    /// The Galois element `2N - 1` (`X -> X^-1`), which conjugates every slot.
    pub fn conjugation_galois_element(&self) -> u64 {
        2 * self.ring_degree() as u64 - 1
    }

    /// Checks that `slots` is a power of two in `1..=N/2`.
    pub fn check_slots(&self, slots: usize) -> Result<(), EmbeddingError> {
        if slots.is_power_of_two() && slots <= self.max_slots() {
            Ok(())
        } else {
            Err(EmbeddingError::InvalidSlotCount {
                slots,
                max_slots: self.max_slots(),
            })
        }
    }

    /// The twiddles of the butterfly stage of half-length `half` (a power of two `< N/2`):
    /// `exp(2*pi*i * (5^j mod 8 half) / (8 half))` for `j < half`.
    pub fn stage_twiddles(&self, half: usize) -> &[Complex64] {
        debug_assert!(half.is_power_of_two() && half < self.max_slots());
        &self.twiddles[half - 1..2 * half - 1]
    }

    /// Decode direction on `n = values.len()` slots, in place: `w -> z` with
    /// `z_j = sum_k w_k rho_j^k`, `rho_j = exp(2*pi*i * 5^j / 4n)` (natural order in and out).
    pub fn special_fft(&self, values: &mut [Complex64]) -> Result<(), EmbeddingError> {
        self.check_slots(values.len())?;
        bit_reverse_permute(values);
        self.decode_butterflies(values);
        Ok(())
    }

    /// Encode direction, the exact inverse of [`Self::special_fft`] (the `1/n` is spread as
    /// a `1/2` per stage, which keeps every intermediate bounded by the input).
    pub fn special_ifft(&self, values: &mut [Complex64]) -> Result<(), EmbeddingError> {
        self.check_slots(values.len())?;
        self.encode_butterflies(values);
        bit_reverse_permute(values);
        Ok(())
    }

    /// The `log2 n` Cooley–Tukey stages of [`Self::special_fft`] on bit-reversed input.
    fn decode_butterflies(&self, values: &mut [Complex64]) {
        let n = values.len();
        let mut half = 1;
        while half < n {
            let twiddles = self.stage_twiddles(half);
            for block in values.chunks_exact_mut(2 * half) {
                let (low, high) = block.split_at_mut(half);
                for ((u, v), t) in low.iter_mut().zip(high.iter_mut()).zip(twiddles) {
                    let a = *u;
                    let b = *v * t;
                    *u = a + b;
                    *v = a - b;
                }
            }
            half *= 2;
        }
    }

    /// The `log2 n` Gentleman–Sande stages of [`Self::special_ifft`], output bit-reversed.
    fn encode_butterflies(&self, values: &mut [Complex64]) {
        let n = values.len();
        let mut half = n / 2;
        while half >= 1 {
            let twiddles = self.stage_twiddles(half);
            for block in values.chunks_exact_mut(2 * half) {
                let (low, high) = block.split_at_mut(half);
                for ((u, v), t) in low.iter_mut().zip(high.iter_mut()).zip(twiddles) {
                    let a = *u;
                    let b = *v;
                    *u = (a + b) * 0.5;
                    *v = (a - b) * t.conj() * 0.5;
                }
            }
            half /= 2;
        }
    }

    /// Encode direction ("inverse embedding"): `n` complex slots -> the `N` real coefficients
    /// of the polynomial of the subring `R[X^(N/2n)]` whose slots they are.
    pub fn slots_to_coeffs(&self, slots: &[Complex64]) -> Result<Vec<f64>, EmbeddingError> {
        let mut coeffs = vec![0.0; self.ring_degree()];
        self.slots_to_coeffs_into(slots, &mut coeffs)?;
        Ok(coeffs)
    }

    /// [`Self::slots_to_coeffs`] into a caller's buffer of length `N` (fully overwritten).
    pub fn slots_to_coeffs_into(
        &self,
        slots: &[Complex64],
        coeffs: &mut [f64],
    ) -> Result<(), EmbeddingError> {
        self.check_coeff_len(coeffs.len())?;
        let mut w = slots.to_vec();
        self.special_ifft(&mut w)?;
        self.scatter(&w, coeffs);
        Ok(())
    }

    /// Real slots (imaginary parts 0) -> `N` real coefficients.
    pub fn real_slots_to_coeffs(&self, slots: &[f64]) -> Result<Vec<f64>, EmbeddingError> {
        let mut w: Vec<Complex64> = slots.iter().map(|&x| Complex64::new(x, 0.0)).collect();
        self.special_ifft(&mut w)?;
        let mut coeffs = vec![0.0; self.ring_degree()];
        self.scatter(&w, &mut coeffs);
        Ok(coeffs)
    }

    /// Decode direction: `N` real coefficients -> `slots` complex slots. With `slots < N/2`
    /// only the coefficients at multiples of the gap are read: the result is the slot vector
    /// of the projection onto the subring, i.e. the average of the `N/2` full-ring slots over
    /// their `gap` replicas (what a plaintext that drifted off the subring by noise decodes to).
    pub fn coeffs_to_slots(
        &self,
        coeffs: &[f64],
        slots: usize,
    ) -> Result<Vec<Complex64>, EmbeddingError> {
        let mut out = vec![Complex64::new(0.0, 0.0); slots];
        self.coeffs_to_slots_into(coeffs, &mut out)?;
        Ok(out)
    }

    /// [`Self::coeffs_to_slots`] into a caller's buffer whose length is the slot count.
    pub fn coeffs_to_slots_into(
        &self,
        coeffs: &[f64],
        slots: &mut [Complex64],
    ) -> Result<(), EmbeddingError> {
        self.check_coeff_len(coeffs.len())?;
        self.check_slots(slots.len())?;
        self.gather(coeffs, slots);
        self.special_fft(slots)
    }

    /// `N` real coefficients -> the real parts of `slots` slots.
    pub fn coeffs_to_real_slots(
        &self,
        coeffs: &[f64],
        slots: usize,
    ) -> Result<Vec<f64>, EmbeddingError> {
        Ok(self
            .coeffs_to_slots(coeffs, slots)?
            .iter()
            .map(|z| z.re)
            .collect())
    }

    fn check_coeff_len(&self, len: usize) -> Result<(), EmbeddingError> {
        if len == self.ring_degree() {
            Ok(())
        } else {
            Err(EmbeddingError::LengthMismatch {
                what: "coefficients",
                expected: self.ring_degree(),
                got: len,
            })
        }
    }

    /// `w_k = c_{k gap} + i c_{k gap + N/2}`: the subring polynomial of degree `2n` folded
    /// into `n` complex numbers, since `X^(N/2) = i` at every root `zeta^(5^j)`.
    fn gather(&self, coeffs: &[f64], w: &mut [Complex64]) {
        let half = self.max_slots();
        let gap = half / w.len();
        for (k, wk) in w.iter_mut().enumerate() {
            *wk = Complex64::new(coeffs[k * gap], coeffs[k * gap + half]);
        }
    }

    fn scatter(&self, w: &[Complex64], coeffs: &mut [f64]) {
        let half = self.max_slots();
        let gap = half / w.len();
        coeffs.fill(0.0);
        for (k, wk) in w.iter().enumerate() {
            coeffs[k * gap] = wk.re;
            coeffs[k * gap + half] = wk.im;
        }
    }
}

/// `base^exponent mod modulus` for moduli below 2^32 (ring orders 2N).
fn pow_mod(base: u64, mut exponent: u64, modulus: u64) -> u64 {
    let mut result = 1 % modulus;
    let mut b = base % modulus;
    while exponent > 0 {
        if exponent & 1 == 1 {
            result = result * b % modulus;
        }
        b = b * b % modulus;
        exponent >>= 1;
    }
    result
}

/// Reference decode by definition, O(N n): evaluates the polynomial at `zeta^(5^j)`,
/// `j < slots`, with the exponent reduced exactly modulo `2N` and the sums accumulated in
/// double-double, so that its only error is the rounding of the roots. For tests.
pub fn naive_coeffs_to_slots(coeffs: &[f64], slots: usize) -> Vec<Complex64> {
    let n_ring = coeffs.len() as u64;
    let two_n = 2 * n_ring;
    let roots: Vec<Complex64> = (0..two_n).map(|k| unit_root(k, two_n)).collect();
    let mut power = 1u64;
    let mut out = Vec::with_capacity(slots);
    for _ in 0..slots {
        let (mut re, mut im) = (DoubleDouble::default(), DoubleDouble::default());
        let mut exponent = 0u64;
        for &c in coeffs {
            let root = roots[exponent as usize];
            re = re.add_product(root.re, c);
            im = im.add_product(root.im, c);
            exponent = (exponent + power) % two_n;
        }
        out.push(Complex64::new(re.to_f64(), im.to_f64()));
        power = power * 5 % two_n;
    }
    out
}

/// Reference encode by definition, O(N n): the coefficients of the real polynomial of
/// `R[X^(N/2n)]` taking the values `slots` at `zeta^(5^j)` (and their conjugates at
/// `zeta^(-5^j)`), by the inverse DFT over the `2n` roots of the subring.
pub fn naive_slots_to_coeffs(slots: &[Complex64], ring_degree: usize) -> Vec<f64> {
    let n = slots.len();
    let gap = ring_degree / (2 * n);
    let order = 4 * n as u64; // the subring variable Y = X^gap evaluates at 4n-th roots
    let roots: Vec<Complex64> = (0..order).map(|k| unit_root(k, order)).collect();
    let mut coeffs = vec![0.0; ring_degree];
    for k in 0..2 * n {
        let mut acc = Complex64::new(0.0, 0.0);
        let mut power = 1u64;
        for z in slots {
            // rho_j^(-k) with rho_j = zeta_{4n}^{5^j}
            let exponent = (order - (power * k as u64) % order) % order;
            acc += z * roots[exponent as usize];
            power = power * 5 % order;
        }
        coeffs[k * gap] = 2.0 * acc.re / (2 * n) as f64;
    }
    coeffs
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngExt, SeedableRng};
    use rand_chacha::ChaCha20Rng;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    fn random_slots(rng: &mut ChaCha20Rng, n: usize) -> Vec<Complex64> {
        (0..n)
            .map(|_| Complex64::new(rng.random_range(-1.0..1.0), rng.random_range(-1.0..1.0)))
            .collect()
    }

    fn max_dist(a: &[Complex64], b: &[Complex64]) -> f64 {
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).norm())
            .fold(0.0, f64::max)
    }

    fn max_dist_real(a: &[f64], b: &[f64]) -> f64 {
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f64::max)
    }

    /// Every power-of-two slot count of a ring, thinned out for the largest rings.
    fn slot_counts(max_slots: usize) -> Vec<usize> {
        let all: Vec<usize> = (0..)
            .map(|k| 1usize << k)
            .take_while(|&n| n <= max_slots)
            .collect();
        if all.len() <= 8 {
            all
        } else {
            vec![1, 2, 8, max_slots / 8, max_slots / 2, max_slots]
        }
    }

    /// `X -> X^g` on the coefficients of `R[X]/(X^N + 1)`: `X^k -> +-X^(kg mod N)`.
    fn automorphism(coeffs: &[f64], g: u64) -> Vec<f64> {
        let n = coeffs.len() as u64;
        let mut out = vec![0.0; coeffs.len()];
        for (k, &c) in coeffs.iter().enumerate() {
            let e = (k as u64 * g) % (2 * n);
            if e < n {
                out[e as usize] += c
            } else {
                out[(e - n) as usize] -= c
            }
        }
        out
    }

    #[test]
    fn unit_roots_are_exact_at_symmetric_points() {
        for m in [4u64, 8, 12, 1 << 10, 1 << 17] {
            assert_eq!(unit_root(m / 4, m), Complex64::new(0.0, 1.0));
            assert_eq!(unit_root(m / 2, m), Complex64::new(-1.0, 0.0));
            assert_eq!(unit_root(m + 1, m), unit_root(1, m));
            for k in [1, 3, m / 8 + 1, m / 3, m - 1] {
                assert_eq!(unit_root(m - k, m), unit_root(k, m).conj());
                let direct =
                    Complex64::from_polar(1.0, std::f64::consts::TAU * k as f64 / m as f64);
                assert!((unit_root(k, m) - direct).norm() < 1e-15, "m={m} k={k}");
            }
        }
    }

    #[test]
    fn bit_reversal_is_an_involution_with_known_image() {
        let mut v: Vec<usize> = (0..16).collect();
        bit_reverse_permute(&mut v);
        assert_eq!(v, [0, 8, 4, 12, 2, 10, 6, 14, 1, 9, 5, 13, 3, 11, 7, 15]);
        bit_reverse_permute(&mut v);
        assert_eq!(v, (0..16).collect::<Vec<_>>());
    }

    /// Round trip slots -> coefficients -> slots: max error <= 2e-15 on |values| <= sqrt 2.
    #[test]
    fn round_trip_is_exact_to_rounding() -> TestResult {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        for log_n in 1..=14 {
            let emb = CanonicalEmbedding::new(log_n)?;
            for n in slot_counts(emb.max_slots()) {
                let z = random_slots(&mut rng, n);
                let back = emb.coeffs_to_slots(&emb.slots_to_coeffs(&z)?, n)?;
                let err = max_dist(&z, &back);
                assert!(err < 2e-15, "log_n={log_n} n={n}: round trip error {err:e}");
            }
        }
        Ok(())
    }

    /// Against the O(N n) definitions, N = 2^4..2^12, full and sparse slot counts: encode
    /// within 1e-15; decode (slots of size ~sqrt(2n) from unit coefficients) within
    /// 1e-15 sqrt(2n).
    #[test]
    fn agrees_with_the_naive_embedding() -> TestResult {
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        for log_n in 4..=12 {
            let emb = CanonicalEmbedding::new(log_n)?;
            for n in slot_counts(emb.max_slots()) {
                let z = random_slots(&mut rng, n);
                let coeffs = emb.slots_to_coeffs(&z)?;
                let naive_coeffs = naive_slots_to_coeffs(&z, emb.ring_degree());
                let enc_err = max_dist_real(&coeffs, &naive_coeffs);
                assert!(enc_err < 1e-15, "encode log_n={log_n} n={n}: {enc_err:e}");

                // Decode of a subring polynomial with random coefficients (scale ~1).
                let gap = emb.max_slots() / n;
                let mut c = vec![0.0; emb.ring_degree()];
                for k in (0..emb.ring_degree()).step_by(gap) {
                    c[k] = rng.random_range(-1.0..1.0);
                }
                let fast = emb.coeffs_to_slots(&c, n)?;
                let naive = naive_coeffs_to_slots(&c, n);
                let dec_err = max_dist(&fast, &naive) / ((2 * n) as f64).sqrt();
                assert!(dec_err < 1e-15, "decode log_n={log_n} n={n}: {dec_err:e}");
            }
        }
        Ok(())
    }

    #[test]
    fn both_directions_are_linear() -> TestResult {
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let emb = CanonicalEmbedding::new(11)?;
        for n in [4, 256, 1024] {
            let (x, y) = (random_slots(&mut rng, n), random_slots(&mut rng, n));
            let (alpha, beta) = (0.75, -3.5);
            let mix: Vec<Complex64> = x
                .iter()
                .zip(&y)
                .map(|(a, b)| a * alpha + b * beta)
                .collect();
            let (cx, cy) = (emb.slots_to_coeffs(&x)?, emb.slots_to_coeffs(&y)?);
            let cmix: Vec<f64> = cx
                .iter()
                .zip(&cy)
                .map(|(a, b)| a * alpha + b * beta)
                .collect();
            assert!(max_dist_real(&emb.slots_to_coeffs(&mix)?, &cmix) < 1e-15);
            let back = emb.coeffs_to_slots(&cmix, n)?;
            assert!(max_dist(&back, &mix) < 1e-14);
        }
        Ok(())
    }

    /// The 5-orbit and its conjugates are all the primitive 2N-th roots: the inverse DFT over
    /// all of them, fed `z` on the orbit and `conj z` on its negation, is real and equals the
    /// special-FFT encoding (within 1e-15).
    #[test]
    fn conjugate_symmetry_makes_real_coefficients() -> TestResult {
        let mut rng = ChaCha20Rng::seed_from_u64(4);
        for log_n in 2..=10 {
            let emb = CanonicalEmbedding::new(log_n)?;
            let (n_ring, two_n) = (emb.ring_degree(), 2 * emb.ring_degree() as u64);
            let z = random_slots(&mut rng, emb.max_slots());
            let mut values = vec![Complex64::new(0.0, 0.0); two_n as usize];
            let mut power = 1u64;
            for zj in &z {
                values[power as usize] = *zj;
                values[(two_n - power) as usize] = zj.conj();
                power = power * 5 % two_n;
            }
            let coeffs = emb.slots_to_coeffs(&z)?;
            for (k, &ck) in coeffs.iter().enumerate() {
                let mut acc = Complex64::new(0.0, 0.0);
                for e in (1..two_n).step_by(2) {
                    acc += values[e as usize] * unit_root(two_n - e * k as u64 % two_n, two_n);
                }
                acc /= n_ring as f64;
                assert!(
                    acc.im.abs() < 1e-15 && (acc.re - ck).abs() < 1e-15,
                    "log_n={log_n} k={k}"
                );
            }
        }
        Ok(())
    }

    /// Pins the slot order the evaluator's Galois keys rely on: X -> X^(5^k) rotates the
    /// slots left by k (new j = old j + k), X -> X^-1 conjugates, full and sparse.
    #[test]
    fn automorphisms_rotate_and_conjugate_slots() -> TestResult {
        let mut rng = ChaCha20Rng::seed_from_u64(5);
        for log_n in [4, 7, 10] {
            let emb = CanonicalEmbedding::new(log_n)?;
            for n in slot_counts(emb.max_slots()) {
                let z = random_slots(&mut rng, n);
                let c = emb.slots_to_coeffs(&z)?;
                for k in [1i64, 2, 3, -1, -5, n as i64 - 1, emb.max_slots() as i64] {
                    let g = emb.rotation_galois_element(k);
                    let rotated = emb.coeffs_to_slots(&automorphism(&c, g), n)?;
                    let shift = k.rem_euclid(n as i64) as usize;
                    let expected: Vec<Complex64> = (0..n).map(|j| z[(j + shift) % n]).collect();
                    let err = max_dist(&rotated, &expected);
                    assert!(err < 1e-14, "log_n={log_n} n={n} k={k}: {err:e}");
                    // The rotated polynomial stays in the subring.
                    let back = emb.slots_to_coeffs(&rotated)?;
                    assert!(max_dist_real(&back, &automorphism(&c, g)) < 1e-14);
                }
                let conj =
                    emb.coeffs_to_slots(&automorphism(&c, emb.conjugation_galois_element()), n)?;
                let expected: Vec<Complex64> = z.iter().map(|v| v.conj()).collect();
                assert!(
                    max_dist(&conj, &expected) < 1e-14,
                    "conjugation log_n={log_n} n={n}"
                );
            }
        }
        Ok(())
    }

    #[test]
    fn galois_elements_of_rotations() -> TestResult {
        let emb = CanonicalEmbedding::new(5)?; // 2N = 64, 5 has order 16
        assert_eq!(emb.rotation_galois_element(0), 1);
        assert_eq!(emb.rotation_galois_element(1), 5);
        assert_eq!(emb.rotation_galois_element(2), 25);
        assert_eq!(emb.rotation_galois_element(16), 1);
        assert_eq!(emb.rotation_galois_element(-1) * 5 % 64, 1);
        assert_eq!(emb.conjugation_galois_element(), 63);
        Ok(())
    }

    /// With n < N/2, decoding a polynomial off the subring gives the replica average of its
    /// N/2 full-ring slots (the projection onto the subring).
    #[test]
    fn sparse_decode_averages_the_replicas() -> TestResult {
        let mut rng = ChaCha20Rng::seed_from_u64(6);
        let emb = CanonicalEmbedding::new(8)?;
        let c: Vec<f64> = (0..emb.ring_degree())
            .map(|_| rng.random_range(-1.0..1.0))
            .collect();
        let full = emb.coeffs_to_slots(&c, emb.max_slots())?;
        for n in [1, 4, 32] {
            let sparse = emb.coeffs_to_slots(&c, n)?;
            let replicas = emb.max_slots() / n;
            for (j, s) in sparse.iter().enumerate() {
                let mean: Complex64 =
                    (0..replicas).map(|r| full[j + r * n]).sum::<Complex64>() / replicas as f64;
                assert!((s - mean).norm() < 1e-13, "n={n} j={j}");
            }
        }
        Ok(())
    }

    #[test]
    fn real_forms_drop_the_imaginary_part() -> TestResult {
        let emb = CanonicalEmbedding::new(6)?;
        let x: Vec<f64> = (0..16).map(|i| (i as f64 * 0.37).sin()).collect();
        let coeffs = emb.real_slots_to_coeffs(&x)?;
        let lifted: Vec<Complex64> = x.iter().map(|&v| Complex64::new(v, 0.0)).collect();
        assert_eq!(coeffs, emb.slots_to_coeffs(&lifted)?);
        let back = emb.coeffs_to_real_slots(&coeffs, 16)?;
        assert!(max_dist_real(&back, &x) < 1e-15);
        Ok(())
    }

    #[test]
    fn rejects_bad_shapes_with_clear_messages() -> TestResult {
        assert_eq!(
            CanonicalEmbedding::new(0)
                .map(|_| ())
                .map_err(|e| e.to_string()),
            Err("log2 of the ring degree must be in 1..=20, got 0".to_string())
        );
        let emb = CanonicalEmbedding::new(4)?;
        let three = vec![Complex64::new(0.0, 0.0); 3];
        assert_eq!(
            emb.slots_to_coeffs(&three).map_err(|e| e.to_string()),
            Err("slot count must be a power of two in 1..=8, got 3".to_string())
        );
        assert_eq!(
            emb.coeffs_to_slots(&[0.0; 8], 4).map_err(|e| e.to_string()),
            Err("coefficients: expected length 16, got 8".to_string())
        );
        assert!(emb.coeffs_to_slots(&[0.0; 16], 16).is_err());
        Ok(())
    }
}
