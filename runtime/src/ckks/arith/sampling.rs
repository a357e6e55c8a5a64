//! ChaCha20 sampling: uniform mod each limb, ternary, fixed-Hamming-weight ternary, discrete Gaussian.
//!
//! Secrets come from `os_rng()` (a ChaCha20 stream keyed by 32 bytes of OS entropy) or, in
//! tests, `seeded_rng`. Public randomness (the `a` of keys and symmetric ciphertexts) is
//! `RnsPoly::uniform_from_seed`: limb i is drawn from ChaCha20 stream number i (the prime's
//! index in q_0..q_L, p_0..p_{k-1}), so the same seed and ring give the same polynomial and
//! a limb does not depend on how many limbs were asked for. Every draw is unbiased
//! (rejection sampling); secret-dependent coefficient vectors come back as `Zeroizing`.

use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::{CryptoRng, Rng, SeedableRng};
use zeroize::{Zeroize, Zeroizing};

use super::Error;
use super::modulus::Modulus;
use super::parallel::{Work, for_each_limb};
use super::poly::{Representation, RnsPoly};
use super::ring::RingContext;

/// The error distribution's standard deviation (HE standard; OpenFHE 3.19, SEAL 3.2).
pub const GAUSSIAN_SIGMA: f64 = 3.2;

/// Tail cut of the discrete Gaussian, in standard deviations (as SEAL): samples satisfy
/// |x| <= floor(6 * sigma) = 19; the mass cut off is below 2^-26 per coefficient at
/// sigma = 3.2 and is redistributed proportionally by the normalization.
pub const GAUSSIAN_TAIL_SIGMAS: f64 = 6.0;

/// A ChaCha20 generator keyed by 32 bytes from the operating system (for secrets).
pub fn os_rng() -> Result<ChaCha20Rng, Error> {
    let mut seed = Zeroizing::new([0u8; 32]);
    getrandom::fill(&mut seed[..]).map_err(|e| Error::Entropy {
        message: e.to_string(),
    })?;
    Ok(ChaCha20Rng::from_seed(*seed))
}

/// A ChaCha20 generator from a fixed seed (tests, reproducible runs).
pub fn seeded_rng(seed: [u8; 32]) -> ChaCha20Rng {
    ChaCha20Rng::from_seed(seed)
}

/// A uniform value in `[0, bound)` by rejection on the bit length of `bound - 1`.
#[inline]
fn uniform_below<R: Rng + ?Sized>(rng: &mut R, bound: u64) -> u64 {
    debug_assert!(bound > 0);
    let mask = u64::MAX >> (bound - 1).leading_zeros().min(63);
    loop {
        let x = rng.next_u64() & mask;
        if x < bound {
            return x;
        }
    }
}

fn fill_uniform<R: Rng + ?Sized>(rng: &mut R, modulus: &Modulus, limb: &mut [u64]) {
    for x in limb.iter_mut() {
        *x = uniform_below(rng, modulus.value());
    }
}

impl RnsPoly {
    /// The uniform polynomial expanded from `seed` (ChaCha20, one stream per prime index).
    ///
    /// Uniform residues are uniform in either domain; `representation` only labels the result.
    pub fn uniform_from_seed(
        ring: &RingContext,
        seed: &[u8; 32],
        q_limbs: usize,
        with_special: bool,
        representation: Representation,
    ) -> Self {
        let mut poly = Self::zero(ring, q_limbs, with_special, representation);
        let q_total = ring.q().len();
        for_each_limb(Work::Heavy, poly.as_mut_slice(), ring.n(), |i, limb| {
            let prime_index = if i < q_limbs {
                i
            } else {
                q_total + i - q_limbs
            };
            let mut rng = ChaCha20Rng::from_seed(*seed);
            rng.set_stream(prime_index as u64);
            fill_uniform(&mut rng, ring.limb_modulus(q_limbs, i), limb);
        });
        poly
    }
}

/// A uniform polynomial drawn from `rng`, limb by limb.
pub fn uniform_poly<R: Rng + ?Sized>(
    ring: &RingContext,
    rng: &mut R,
    q_limbs: usize,
    with_special: bool,
    representation: Representation,
) -> RnsPoly {
    let mut poly = RnsPoly::zero(ring, q_limbs, with_special, representation);
    let n = ring.n();
    for (i, limb) in poly.as_mut_slice().chunks_mut(n).enumerate() {
        fill_uniform(rng, ring.limb_modulus(q_limbs, i), limb);
    }
    poly
}

/// N coefficients uniform in {-1, 0, 1} (each with probability 1/3).
pub fn ternary_coeffs<R: CryptoRng + ?Sized>(rng: &mut R, n: usize) -> Zeroizing<Vec<i64>> {
    let mut out = Zeroizing::new(vec![0i64; n]);
    let mut bits = 0u64;
    let mut available = 0;
    for c in out.iter_mut() {
        // Two fresh bits per try; 3 is rejected, so 0, 1, 2 are equally likely.
        let value = loop {
            if available == 0 {
                bits = rng.next_u64();
                available = 32;
            }
            let two = bits & 3;
            bits >>= 2;
            available -= 1;
            if two < 3 {
                break two as i64;
            }
        };
        *c = value - 1;
    }
    bits.zeroize();
    out
}

/// N coefficients in {-1, 0, 1} with exactly `weight` non-zero ones, at uniformly random
/// positions (partial Fisher-Yates) with uniform signs.
pub fn ternary_fixed_weight_coeffs<R: CryptoRng + ?Sized>(
    rng: &mut R,
    n: usize,
    weight: usize,
) -> Result<Zeroizing<Vec<i64>>, Error> {
    if weight > n {
        return Err(Error::HammingWeightTooLarge { weight, n });
    }
    let mut positions = Zeroizing::new((0..n).collect::<Vec<usize>>());
    for i in 0..weight {
        let j = i + uniform_below(rng, (n - i) as u64) as usize;
        positions.swap(i, j);
    }
    let mut out = Zeroizing::new(vec![0i64; n]);
    let mut signs = 0u64;
    for (k, &position) in positions[..weight].iter().enumerate() {
        if k % 64 == 0 {
            signs = rng.next_u64();
        }
        out[position] = if (signs >> (k % 64)) & 1 == 1 { 1 } else { -1 };
    }
    signs.zeroize();
    Ok(out)
}

/// A discrete Gaussian on the integers by cumulative-table inversion.
///
/// P(x) is proportional to exp(-x^2 / (2 sigma^2)) for |x| <= bound, 0 beyond. Sampling
/// compares one 64-bit uniform word with every table entry (no data-dependent branch or
/// early exit), so its time does not depend on the sample. Table precision is f64's
/// (probabilities accurate to about 2^-53).
#[derive(Clone, Debug)]
pub struct DiscreteGaussian {
    bound: i64,
    /// thresholds[k] = floor(2^64 * P(X <= -bound + k)), k = 0..2*bound.
    thresholds: Vec<u64>,
}

impl DiscreteGaussian {
    /// The table for a standard deviation `sigma > 0` and tail cut `tail_sigmas * sigma`.
    pub fn new(sigma: f64, tail_sigmas: f64) -> Self {
        let bound = (tail_sigmas * sigma).floor() as i64;
        let weights: Vec<f64> = (-bound..=bound)
            .map(|x| (-((x * x) as f64) / (2.0 * sigma * sigma)).exp())
            .collect();
        let total: f64 = weights.iter().sum();
        let mut cumulative = 0.0;
        let thresholds = weights[..weights.len() - 1]
            .iter()
            .map(|w| {
                cumulative += w / total;
                // f64 -> u64 saturates, so a cumulative of 1.0 maps to u64::MAX.
                (cumulative * 18_446_744_073_709_551_616.0) as u64
            })
            .collect();
        Self { bound, thresholds }
    }

    /// The largest |x| this distribution returns.
    pub fn bound(&self) -> i64 {
        self.bound
    }

    /// One sample.
    #[inline]
    pub fn sample<R: CryptoRng + ?Sized>(&self, rng: &mut R) -> i64 {
        let mut u = rng.next_u64();
        let rank: i64 = self.thresholds.iter().map(|&t| i64::from(u >= t)).sum();
        u.zeroize();
        rank - self.bound
    }
}

impl Default for DiscreteGaussian {
    /// sigma = 3.2, cut at 6 sigma.
    fn default() -> Self {
        Self::new(GAUSSIAN_SIGMA, GAUSSIAN_TAIL_SIGMAS)
    }
}

/// N coefficients from the discrete Gaussian of sigma = 3.2 cut at 6 sigma.
pub fn gaussian_coeffs<R: CryptoRng + ?Sized>(rng: &mut R, n: usize) -> Zeroizing<Vec<i64>> {
    let gaussian = DiscreteGaussian::default();
    let mut out = Zeroizing::new(vec![0i64; n]);
    for c in out.iter_mut() {
        *c = gaussian.sample(rng);
    }
    out
}

/// A uniform ternary polynomial (Coefficient representation).
pub fn ternary_poly<R: CryptoRng + ?Sized>(
    ring: &RingContext,
    rng: &mut R,
    q_limbs: usize,
    with_special: bool,
) -> RnsPoly {
    let coeffs = ternary_coeffs(rng, ring.n());
    small_poly(ring, &coeffs, q_limbs, with_special)
}

/// A ternary polynomial of Hamming weight `weight` (Coefficient representation).
pub fn ternary_fixed_weight_poly<R: CryptoRng + ?Sized>(
    ring: &RingContext,
    rng: &mut R,
    weight: usize,
    q_limbs: usize,
    with_special: bool,
) -> Result<RnsPoly, Error> {
    let coeffs = ternary_fixed_weight_coeffs(rng, ring.n(), weight)?;
    Ok(small_poly(ring, &coeffs, q_limbs, with_special))
}

/// A discrete Gaussian polynomial, sigma = 3.2 (Coefficient representation).
pub fn gaussian_poly<R: CryptoRng + ?Sized>(
    ring: &RingContext,
    rng: &mut R,
    q_limbs: usize,
    with_special: bool,
) -> RnsPoly {
    let coeffs = gaussian_coeffs(rng, ring.n());
    small_poly(ring, &coeffs, q_limbs, with_special)
}

fn small_poly(ring: &RingContext, coeffs: &[i64], q_limbs: usize, with_special: bool) -> RnsPoly {
    // Invariant: the samplers return exactly N coefficients.
    match RnsPoly::from_i64_coeffs(ring, coeffs, q_limbs, with_special) {
        Ok(poly) => poly,
        Err(e) => unreachable!("sampler returned a wrong length: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ckks::arith::ntt::NttBackend;
    use crate::ckks::arith::test_util::test_ring;

    const SAMPLES: usize = 1 << 16;

    #[test]
    fn seeded_expansion_is_deterministic_and_per_limb() {
        let ring = test_ring(8, 3, 2, 1, NttBackend::Fast);
        let seed = [5u8; 32];
        let a = RnsPoly::uniform_from_seed(&ring, &seed, 3, true, Representation::Evaluation);
        assert_eq!(
            a,
            RnsPoly::uniform_from_seed(&ring, &seed, 3, true, Representation::Evaluation)
        );
        let other =
            RnsPoly::uniform_from_seed(&ring, &[6u8; 32], 3, true, Representation::Evaluation);
        assert_ne!(a.limb(0), other.limb(0));
        assert_ne!(a.limb(0), a.limb(1), "limbs use different streams");
        let q_only = RnsPoly::uniform_from_seed(&ring, &seed, 1, false, Representation::Evaluation);
        assert_eq!(q_only.limb(0), a.limb(0));
    }

    #[test]
    fn uniform_residues_cover_the_range_evenly() {
        let ring = test_ring(12, 2, 0, 1, NttBackend::Fast);
        let mut rng = seeded_rng([1; 32]);
        let mut total = 0f64;
        let mut count = 0usize;
        for _ in 0..SAMPLES / ring.n() {
            let poly = uniform_poly(&ring, &mut rng, 2, false, Representation::Coefficient);
            for (i, m) in ring.q().iter().enumerate() {
                let q = m.value() as f64;
                assert!(poly.limb(i).iter().all(|&v| v < m.value()));
                total += poly.limb(i).iter().map(|&v| v as f64 / q).sum::<f64>();
                count += ring.n();
            }
        }
        // Mean of U[0,1) is 1/2 with standard error 1/sqrt(12 * count) ~ 0.0008.
        let mean = total / count as f64;
        assert!((mean - 0.5).abs() < 0.005, "mean {mean}");
        // Small bounds are exercised too (a mask wider than the bound would bias them).
        let mut hist = [0usize; 3];
        for _ in 0..30_000 {
            hist[uniform_below(&mut rng, 3) as usize] += 1;
        }
        assert!(
            hist.iter().all(|&h| (h as f64 - 10_000.0).abs() < 500.0),
            "{hist:?}"
        );
    }

    #[test]
    fn ternary_is_uniform_on_three_values() {
        let mut rng = seeded_rng([2; 32]);
        let coeffs = ternary_coeffs(&mut rng, SAMPLES);
        let mut hist = [0usize; 3];
        for &c in coeffs.iter() {
            hist[(c + 1) as usize] += 1;
        }
        // Each count ~ Binomial(2^16, 1/3): standard deviation ~ 120; allow 6 of them.
        let third = SAMPLES as f64 / 3.0;
        assert!(
            hist.iter().all(|&h| (h as f64 - third).abs() < 720.0),
            "{hist:?}"
        );
    }

    #[test]
    fn fixed_weight_ternary_has_exact_weight() {
        let mut rng = seeded_rng([3; 32]);
        for (n, h) in [(16, 0), (16, 16), (1024, 192), (4096, 64)] {
            let coeffs = ternary_fixed_weight_coeffs(&mut rng, n, h).expect("h <= n");
            assert_eq!(coeffs.iter().filter(|&&c| c != 0).count(), h);
            assert!(coeffs.iter().all(|&c| (-1..=1).contains(&c)));
        }
        // Signs balanced and positions spread: over many draws each position is hit ~ h/n.
        let (n, h, draws) = (64usize, 16usize, 4000usize);
        let mut hits = vec![0usize; n];
        let mut plus = 0usize;
        for _ in 0..draws {
            for (i, &c) in ternary_fixed_weight_coeffs(&mut rng, n, h)
                .expect("h <= n")
                .iter()
                .enumerate()
            {
                hits[i] += usize::from(c != 0);
                plus += usize::from(c == 1);
            }
        }
        let expected = (draws * h / n) as f64; // 1000, sd ~ 27
        assert!(
            hits.iter().all(|&x| (x as f64 - expected).abs() < 170.0),
            "{hits:?}"
        );
        assert!((plus as f64 / (draws * h) as f64 - 0.5).abs() < 0.02);
        assert_eq!(
            ternary_fixed_weight_coeffs(&mut rng, 8, 9)
                .map(|_| ())
                .map_err(|e| e.to_string()),
            Err("Hamming weight 9 exceeds N = 8".into())
        );
    }

    #[test]
    fn gaussian_has_sigma_3_2_and_is_cut_at_19() {
        let mut rng = seeded_rng([4; 32]);
        let coeffs = gaussian_coeffs(&mut rng, 4 * SAMPLES);
        let n = coeffs.len() as f64;
        let mean = coeffs.iter().sum::<i64>() as f64 / n;
        let variance = coeffs
            .iter()
            .map(|&c| (c as f64 - mean).powi(2))
            .sum::<f64>()
            / n;
        assert!(mean.abs() < 0.05, "mean {mean}"); // standard error 3.2/512 ~ 0.006
        // The standard deviation estimate has standard error sigma/sqrt(2n) ~ 0.004.
        assert!(
            (variance.sqrt() - GAUSSIAN_SIGMA).abs() < 0.03,
            "sigma {}",
            variance.sqrt()
        );
        assert!(coeffs.iter().all(|&c| c.abs() <= 19));
        assert_eq!(DiscreteGaussian::default().bound(), 19);
        // P(|x| = 0) = 1 / sum_x exp(-x^2 / 2 sigma^2) ~ 0.1247.
        let zeros = coeffs.iter().filter(|&&c| c == 0).count() as f64 / n;
        assert!((zeros - 0.1247).abs() < 0.005, "P(0) = {zeros}");
    }

    #[test]
    fn polys_from_samplers_have_the_sampled_coefficients() {
        let ring = test_ring(6, 2, 1, 1, NttBackend::Fast);
        let mut rng = seeded_rng([9; 32]);
        let s = ternary_fixed_weight_poly(&ring, &mut rng, 10, 2, true).expect("h <= n");
        let values = s.to_centered_f64(&ring);
        assert_eq!(values.iter().filter(|&&v| v != 0.0).count(), 10);
        let e = gaussian_poly(&ring, &mut rng, 2, false);
        assert!(e.to_centered_f64(&ring).iter().all(|v| v.abs() <= 19.0));
        let t = ternary_poly(&ring, &mut rng, 1, false);
        assert!(t.to_centered_f64(&ring).iter().all(|v| v.abs() <= 1.0));
        assert!(os_rng().is_ok());
    }
}
