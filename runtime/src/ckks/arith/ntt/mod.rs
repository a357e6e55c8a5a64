//! Negacyclic NTT over one prime behind `NttKernel`: a fast tfhe-ntt kernel and a Harvey reference.
//!
//! Both kernels produce the same slot order: slot `i` of the forward transform holds
//! `a(psi^(2*bitrev(i)+1))`, `bitrev` over log2(N) bits, for a primitive 2N-th root `psi`.
//! `evaluation_root` checks that pattern on any kernel, so that the NTT-domain
//! automorphism permutation depends only on the Galois element.

mod harvey;
mod tfhe;

use std::fmt;

pub use harvey::HarveyNtt;
pub use tfhe::TfheNtt;

use super::Error;
use super::modulus::Modulus;

/// A negacyclic NTT of size N over one prime q, in place on limbs with values in `[0, q)`.
pub trait NttKernel: Send + Sync + fmt::Debug {
    /// The ring degree N.
    fn n(&self) -> usize;

    /// The prime q.
    fn modulus(&self) -> u64;

    /// Coefficients -> evaluations, slot `i` = `a(psi^(2*bitrev(i)+1))`. Output in `[0, q)`.
    fn forward(&self, a: &mut [u64]);

    /// Evaluations -> coefficients, normalized (the exact inverse of `forward`).
    fn inverse(&self, a: &mut [u64]);

    /// `N * inverse(a)`: the inverse without its `N^-1` factor, for callers that fold
    /// `N^-1` into a constant they multiply by next (base conversion does). Output in `[0, q)`.
    fn inverse_unnormalized(&self, a: &mut [u64]);
}

/// Which NTT implementation a ring uses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NttBackend {
    /// tfhe-ntt (run-time dispatch: AVX-512 IFMA, AVX-512, AVX2, scalar) where it supports
    /// the ring (N >= 16); the Harvey reference otherwise.
    #[default]
    Fast,
    /// The plain scalar Harvey NTT everywhere (tests, and a check on the fast kernel).
    Reference,
}

/// Reverses the low `bits` bits of `i`.
#[inline(always)]
pub fn bit_reverse(i: usize, bits: u32) -> usize {
    if bits == 0 {
        0
    } else {
        i.reverse_bits() >> (usize::BITS - bits)
    }
}

/// Builds the kernel of `backend` for (N, q) and returns it with its root `psi`.
///
/// Every backend uses the same `psi` for a given (N, q): tfhe-ntt's where it supports the
/// ring, else `primitive_2n_root`. So NTT-domain data does not depend on the backend.
pub fn build_kernel(
    log_n: u32,
    modulus: Modulus,
    backend: NttBackend,
) -> Result<(Box<dyn NttKernel>, u64), Error> {
    let n = 1usize << log_n;
    let fast = TfheNtt::new(n, modulus.value());
    let psi = match &fast {
        Some(kernel) => evaluation_root(kernel, log_n)?,
        None => primitive_2n_root(modulus, log_n)?,
    };
    let kernel: Box<dyn NttKernel> = match (backend, fast) {
        (NttBackend::Fast, Some(kernel)) => Box::new(kernel),
        _ => Box::new(HarveyNtt::new(log_n, modulus, psi)?),
    };
    if evaluation_root(kernel.as_ref(), log_n)? != psi {
        return Err(Error::NttOrderMismatch {
            modulus: modulus.value(),
        });
    }
    Ok((kernel, psi))
}

/// Reads the root of a kernel by transforming the monomial X, and checks the slot order:
/// slot `i` must be `psi^(2*bitrev(i)+1)` with `psi^N = -1`.
pub fn evaluation_root(kernel: &dyn NttKernel, log_n: u32) -> Result<u64, Error> {
    let n = kernel.n();
    let q = kernel.modulus();
    let mismatch = Error::NttOrderMismatch { modulus: q };
    if n != 1 << log_n || n < 2 {
        return Err(mismatch);
    }
    let modulus = Modulus::new(q)?;
    let mut x = vec![0u64; n];
    x[1] = 1;
    kernel.forward(&mut x);
    let psi = x[0];
    if modulus.pow(psi, n as u64) != q - 1 {
        return Err(mismatch);
    }
    // psi^(2*bitrev(i)+1) for all i, from the table of odd powers psi^(2k+1).
    let psi_sq = modulus.mul(psi, psi);
    let mut odd_power = psi;
    let mut odd_powers = vec![0u64; n];
    for entry in odd_powers.iter_mut() {
        *entry = odd_power;
        odd_power = modulus.mul(odd_power, psi_sq);
    }
    let in_order = x
        .iter()
        .enumerate()
        .all(|(i, &v)| v == odd_powers[bit_reverse(i, log_n)]);
    if in_order { Ok(psi) } else { Err(mismatch) }
}

/// A primitive 2N-th root of unity mod a prime q = 1 mod 2N: `g^((q-1)/2N)` for the
/// smallest g >= 2 that gives one (its N-th power must be -1).
pub fn primitive_2n_root(modulus: Modulus, log_n: u32) -> Result<u64, Error> {
    let q = modulus.value();
    let two_n = 1u64 << (log_n + 1);
    let not_friendly = Error::NotNttFriendly { modulus: q, log_n };
    if q % two_n != 1 {
        return Err(not_friendly);
    }
    let cofactor = (q - 1) / two_n;
    (2..q.min(1 << 20))
        .map(|g| modulus.pow(g, cofactor))
        .find(|&root| modulus.pow(root, two_n / 2) == q - 1)
        .ok_or(not_friendly)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ckks::arith::primes::primes_below;
    use crate::ckks::arith::test_util::schoolbook;

    fn pseudo_random(n: usize, q: u64, seed: u64) -> Vec<u64> {
        let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        (0..n)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state % q
            })
            .collect()
    }

    /// For each (log N, bits): both kernels, against schoolbook, and against each other.
    #[test]
    fn kernels_match_schoolbook_and_each_other() {
        for log_n in 1..=10u32 {
            for bits in [30u32, 50, 61, 62] {
                if bits <= log_n + 1 {
                    continue;
                }
                let q = primes_below(log_n, bits, 1, &[]).expect("prime exists")[0];
                let modulus = Modulus::new(q).expect("q < 2^62");
                let n = 1usize << log_n;
                let (fast, psi_fast) =
                    build_kernel(log_n, modulus, NttBackend::Fast).expect("kernel");
                let (reference, psi_ref) =
                    build_kernel(log_n, modulus, NttBackend::Reference).expect("kernel");
                assert_eq!(psi_fast, psi_ref);
                let a = pseudo_random(n, q, 1 + log_n as u64);
                let b = pseudo_random(n, q, 1000 + bits as u64);
                let expected = schoolbook(&a, &b, q);
                for kernel in [&fast, &reference] {
                    let (mut fa, mut fb) = (a.clone(), b.clone());
                    kernel.forward(&mut fa);
                    kernel.forward(&mut fb);
                    assert!(fa.iter().all(|&v| v < q));
                    let mut prod: Vec<u64> = fa
                        .iter()
                        .zip(&fb)
                        .map(|(&x, &y)| modulus.mul(x, y))
                        .collect();
                    kernel.inverse(&mut prod);
                    assert_eq!(prod, expected, "{kernel:?} log_n={log_n} q={q}");
                    let mut unnormalized = fa.clone();
                    kernel.inverse_unnormalized(&mut unnormalized);
                    let n_mod_q = n as u64 % q;
                    let scaled: Vec<u64> = a.iter().map(|&v| modulus.mul(v, n_mod_q)).collect();
                    assert_eq!(unnormalized, scaled);
                }
                let (mut fa, mut ra) = (a.clone(), a.clone());
                fast.forward(&mut fa);
                reference.forward(&mut ra);
                assert_eq!(fa, ra, "kernels disagree, log_n={log_n} q={q}");
                fast.inverse(&mut fa);
                reference.inverse(&mut ra);
                assert_eq!(fa, a);
                assert_eq!(ra, a);
            }
        }
    }

    #[test]
    fn fast_backend_uses_tfhe_from_n_16() {
        let q = primes_below(4, 40, 1, &[]).expect("prime exists")[0];
        let modulus = Modulus::new(q).expect("q < 2^62");
        let (kernel, _) = build_kernel(4, modulus, NttBackend::Fast).expect("kernel");
        assert!(format!("{kernel:?}").starts_with("TfheNtt"));
        let (kernel, _) = build_kernel(3, modulus, NttBackend::Fast).expect("kernel");
        assert!(format!("{kernel:?}").starts_with("HarveyNtt"));
    }

    #[test]
    fn root_finder_rejects_unfriendly_prime() {
        let modulus = Modulus::new(97).expect("small prime");
        assert!(primitive_2n_root(modulus, 4).is_ok()); // 97 = 1 mod 32
        assert_eq!(
            primitive_2n_root(modulus, 5).map_err(|e| e.to_string()),
            Err("97 is not a prime = 1 mod 2N for log N = 5".into())
        );
    }
}
