//! Test helpers: small insecure rings, seeded polynomials, and num-bigint CRT references.

use std::sync::Arc;

use num_bigint::{BigInt, BigUint};

use super::ntt::NttBackend;
use super::poly::{Representation, RnsPoly};
use super::primes::{primes_below, scaling_primes};
use super::ring::RingContext;

/// q_0 of 55 bits, `q_count - 1` scaling primes of 40 bits, `p_count` special primes of 61 bits.
pub(crate) fn test_ring(
    log_n: u32,
    q_count: usize,
    p_count: usize,
    alpha: usize,
    backend: NttBackend,
) -> Arc<RingContext> {
    let mut q = primes_below(log_n, 55, 1, &[]).expect("primes");
    q.extend(scaling_primes(log_n, 40, q_count - 1, &q).expect("primes"));
    let p = primes_below(log_n, 61, p_count, &q).expect("primes");
    RingContext::with_backend(log_n, &q, &p, alpha, backend).expect("valid ring")
}

/// Every prime just below 2^62: the worst case for every u128 accumulation.
pub(crate) fn test_ring_62(
    log_n: u32,
    q_count: usize,
    p_count: usize,
    alpha: usize,
) -> Arc<RingContext> {
    let all = primes_below(log_n, 62, q_count + p_count, &[]).expect("primes");
    RingContext::new(log_n, &all[..q_count], &all[q_count..], alpha).expect("valid ring")
}

/// A uniform polynomial from a one-byte seed.
pub(crate) fn random_poly(
    ring: &RingContext,
    seed: u8,
    q_limbs: usize,
    special: bool,
    representation: Representation,
) -> RnsPoly {
    RnsPoly::uniform_from_seed(ring, &[seed; 32], q_limbs, special, representation)
}

/// The primes of a polynomial's limbs.
pub(crate) fn limb_primes(ring: &RingContext, poly: &RnsPoly) -> Vec<u64> {
    ring.limb_moduli(poly.q_limbs(), poly.has_special())
        .iter()
        .map(|m| m.value())
        .collect()
}

pub(crate) fn product(primes: &[u64]) -> BigUint {
    primes.iter().map(|&p| BigUint::from(p)).product()
}

/// The centered integer of every coefficient (Coefficient representation), by the CRT formula.
pub(crate) fn centered_bigints(ring: &RingContext, poly: &RnsPoly) -> Vec<BigInt> {
    assert_eq!(poly.representation(), Representation::Coefficient);
    let primes = limb_primes(ring, poly);
    let m = product(&primes);
    let half = &m >> 1u32;
    let basis: Vec<BigUint> = primes
        .iter()
        .map(|&p| {
            let hat = &m / BigUint::from(p);
            let hat_mod = (&hat % BigUint::from(p))
                .to_u64_digits()
                .first()
                .copied()
                .unwrap_or(0);
            let inv = crate::ckks::arith::Modulus::new(p)
                .expect("prime")
                .inv(hat_mod)
                .expect("coprime");
            hat * BigUint::from(inv)
        })
        .collect();
    (0..ring.n())
        .map(|c| {
            let x: BigUint = basis
                .iter()
                .enumerate()
                .map(|(i, b)| b * BigUint::from(poly.limb(i)[c]))
                .sum::<BigUint>()
                % &m;
            if x > half {
                BigInt::from(x) - BigInt::from(m.clone())
            } else {
                BigInt::from(x)
            }
        })
        .collect()
}

/// `x mod p` in [0, p) for a signed big integer.
pub(crate) fn residue(x: &BigInt, p: u64) -> u64 {
    let r = x % BigInt::from(p);
    let r = if r.sign() == num_bigint::Sign::Minus {
        r + BigInt::from(p)
    } else {
        r
    };
    r.to_u64_digits().1.first().copied().unwrap_or(0)
}

/// round(x / d) for d > 0 (floor((2x + d) / 2d); d odd here, so no ties).
pub(crate) fn round_div(x: &BigInt, d: &BigInt) -> BigInt {
    let numerator: BigInt = 2 * x + d;
    let denominator: BigInt = 2 * d;
    let quotient = &numerator / &denominator;
    if (&numerator % &denominator).sign() == num_bigint::Sign::Minus {
        quotient - 1
    } else {
        quotient
    }
}

/// Negacyclic product by the schoolbook formula, in u128.
pub(crate) fn schoolbook(a: &[u64], b: &[u64], q: u64) -> Vec<u64> {
    let n = a.len();
    let q128 = q as u128;
    let mut out = vec![0u128; n];
    for (i, &ai) in a.iter().enumerate() {
        for (j, &bj) in b.iter().enumerate() {
            let prod = ai as u128 * bj as u128 % q128;
            let k = i + j;
            if k < n {
                out[k] = (out[k] + prod) % q128;
            } else {
                out[k - n] = (out[k - n] + q128 - prod) % q128;
            }
        }
    }
    out.into_iter().map(|v| v as u64).collect()
}
