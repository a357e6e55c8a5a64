//! `RingContext`: N, the Q chain, the special primes P, one NTT kernel per prime, and every constant.
//!
//! Limb order convention: a polynomial with `q_limbs` Q limbs holds `q_0..q_{q_limbs-1}`,
//! followed by `p_0..p_{k-1}` when it carries the special primes. Hybrid key switching
//! splits Q into digits of `alpha` consecutive primes (digit j = `q_{j*alpha}..`), so at
//! level l there are `ceil((l+1)/alpha)` digits, the last one possibly short.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use super::Error;
use super::basis::BaseConverter;
use super::modulus::{Modulus, ShoupConstant};
use super::ntt::{NttBackend, NttKernel, bit_reverse, build_kernel};
use super::primes::is_ntt_friendly;

/// Smallest and largest supported log2(N).
pub const LOG_N_RANGE: (u32, u32) = (1, 17);

/// An automorphism X -> X^g of `Z[X]/(X^N + 1)`, g odd in `[1, 2N)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GaloisElement(u64);

impl GaloisElement {
    /// The exponent g.
    pub fn value(self) -> u64 {
        self.0
    }
}

/// Ring degree, moduli, NTT kernels and precomputed constants; shared via `Arc`.
pub struct RingContext {
    log_n: u32,
    q: Vec<Modulus>,
    p: Vec<Modulus>,
    /// Kernels of q_0..q_L then p_0..p_{k-1}.
    kernels: Vec<Box<dyn NttKernel>>,
    /// The root psi of each kernel, same order.
    roots: Vec<u64>,
    backend: NttBackend,
    alpha: usize,
    /// `rescale_inv[l][i]` = q_l^-1 mod q_i for i < l (empty for l = 0).
    rescale_inv: Vec<Vec<ShoupConstant>>,
    /// P mod q_i.
    p_mod_q: Vec<u64>,
    /// P^-1 mod q_i.
    p_inv_mod_q: Vec<ShoupConstant>,
    /// P -> Q (all of Q; a level uses a prefix of the targets).
    mod_down: Option<BaseConverter>,
    /// `mod_up[j][c-1]`: digit j with its first c primes -> (Q \ digit) then P.
    mod_up: Vec<Vec<BaseConverter>>,
    ntt_permutations: RwLock<HashMap<u64, Arc<[u32]>>>,
}

impl std::fmt::Debug for RingContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RingContext")
            .field("log_n", &self.log_n)
            .field("q", &self.q.iter().map(Modulus::value).collect::<Vec<_>>())
            .field("p", &self.p.iter().map(Modulus::value).collect::<Vec<_>>())
            .field("alpha", &self.alpha)
            .field("backend", &self.backend)
            .finish()
    }
}

impl RingContext {
    /// A ring with the fast NTT backend; see `with_backend`.
    pub fn new(log_n: u32, q: &[u64], p: &[u64], alpha: usize) -> Result<Arc<Self>, Error> {
        Self::with_backend(log_n, q, p, alpha, NttBackend::Fast)
    }

    /// A ring of degree N = 2^log_n with Q chain `q`, special primes `p` (may be empty when
    /// no key switching is needed) and key-switching digits of `alpha` Q primes.
    ///
    /// Checks every prime (NTT-friendly for N, < 2^62, all distinct) and that every
    /// kernel follows the slot order of `NttKernel`, then precomputes all constants.
    pub fn with_backend(
        log_n: u32,
        q: &[u64],
        p: &[u64],
        alpha: usize,
        backend: NttBackend,
    ) -> Result<Arc<Self>, Error> {
        let (min, max) = LOG_N_RANGE;
        if !(min..=max).contains(&log_n) {
            return Err(Error::LogNOutOfRange { log_n, min, max });
        }
        if q.is_empty() {
            return Err(Error::EmptyQChain);
        }
        if alpha == 0 {
            return Err(Error::ZeroDigitSize);
        }
        let all: Vec<u64> = q.iter().chain(p).copied().collect();
        for (i, &prime) in all.iter().enumerate() {
            if all[..i].contains(&prime) {
                return Err(Error::DuplicatePrime { prime });
            }
            if !is_ntt_friendly(prime, log_n) || prime >> super::modulus::MAX_MODULUS_BITS != 0 {
                return Err(Error::NotNttFriendly {
                    modulus: prime,
                    log_n,
                });
            }
        }
        let q_moduli = q
            .iter()
            .map(|&v| Modulus::new(v))
            .collect::<Result<Vec<_>, _>>()?;
        let p_moduli = p
            .iter()
            .map(|&v| Modulus::new(v))
            .collect::<Result<Vec<_>, _>>()?;
        let mut kernels = Vec::with_capacity(all.len());
        let mut roots = Vec::with_capacity(all.len());
        for &modulus in q_moduli.iter().chain(&p_moduli) {
            let (kernel, root) = build_kernel(log_n, modulus, backend)?;
            kernels.push(kernel);
            roots.push(root);
        }
        let n = 1usize << log_n;

        let rescale_inv = (0..q_moduli.len())
            .map(|l| {
                (0..l)
                    .map(|i| inverse_shoup(&q_moduli[i], q_moduli[l].value()))
                    .collect()
            })
            .collect();
        let p_mod_q: Vec<u64> = q_moduli
            .iter()
            .map(|qi| {
                p_moduli
                    .iter()
                    .fold(1 % qi.value(), |acc, pj| qi.mul(acc, qi.reduce(pj.value())))
            })
            .collect();
        let p_inv_mod_q = q_moduli
            .iter()
            .zip(&p_mod_q)
            .map(|(qi, &p_mod_qi)| inverse_shoup(qi, p_mod_qi))
            .collect();
        let mod_down = (!p_moduli.is_empty()).then(|| BaseConverter::new(&p_moduli, &q_moduli, n));
        let mut mod_up = Vec::new();
        if !p_moduli.is_empty() {
            for start in (0..q_moduli.len()).step_by(alpha) {
                let full = alpha.min(q_moduli.len() - start);
                let converters = (1..=full)
                    .map(|count| {
                        let targets: Vec<Modulus> = q_moduli[..start]
                            .iter()
                            .chain(&q_moduli[start + count..])
                            .chain(&p_moduli)
                            .copied()
                            .collect();
                        BaseConverter::new(&q_moduli[start..start + count], &targets, n)
                    })
                    .collect();
                mod_up.push(converters);
            }
        }
        Ok(Arc::new(Self {
            log_n,
            q: q_moduli,
            p: p_moduli,
            kernels,
            roots,
            backend,
            alpha,
            rescale_inv,
            p_mod_q,
            p_inv_mod_q,
            mod_down,
            mod_up,
            ntt_permutations: RwLock::new(HashMap::new()),
        }))
    }

    /// log2(N).
    pub fn log_n(&self) -> u32 {
        self.log_n
    }

    /// The ring degree N.
    pub fn n(&self) -> usize {
        1 << self.log_n
    }

    /// The Q chain q_0..q_L.
    pub fn q(&self) -> &[Modulus] {
        &self.q
    }

    /// The special primes p_0..p_{k-1}.
    pub fn p(&self) -> &[Modulus] {
        &self.p
    }

    /// L, the top level (number of Q primes minus one).
    pub fn max_level(&self) -> usize {
        self.q.len() - 1
    }

    /// The NTT backend the kernels were built with.
    pub fn backend(&self) -> NttBackend {
        self.backend
    }

    /// Q primes per key-switching digit.
    pub fn alpha(&self) -> usize {
        self.alpha
    }

    /// Number of key-switching digits at a level: `ceil((level+1)/alpha)`.
    pub fn digits_at_level(&self, level: usize) -> usize {
        (level + 1).div_ceil(self.alpha)
    }

    /// The Q-limb range `[start, end)` of digit `digit` at `level`.
    ///
    /// # Panics
    /// If the digit does not exist at that level.
    pub fn digit_range(&self, level: usize, digit: usize) -> std::ops::Range<usize> {
        let start = digit * self.alpha;
        assert!(
            start <= level,
            "digit {digit} does not exist at level {level}"
        );
        start..(start + self.alpha).min(level + 1)
    }

    /// The modulus of limb `limb` of a polynomial with `q_limbs` Q limbs (then P limbs).
    #[inline]
    pub fn limb_modulus(&self, q_limbs: usize, limb: usize) -> &Modulus {
        if limb < q_limbs {
            &self.q[limb]
        } else {
            &self.p[limb - q_limbs]
        }
    }

    /// The moduli of the limbs of a polynomial with `q_limbs` Q limbs, then P if asked.
    pub fn limb_moduli(&self, q_limbs: usize, with_special: bool) -> Vec<Modulus> {
        let special = if with_special { &self.p[..] } else { &[] };
        self.q[..q_limbs].iter().chain(special).copied().collect()
    }

    /// The NTT kernel of limb `limb` of a polynomial with `q_limbs` Q limbs (then P limbs).
    #[inline]
    pub fn limb_kernel(&self, q_limbs: usize, limb: usize) -> &dyn NttKernel {
        let index = if limb < q_limbs {
            limb
        } else {
            self.q.len() + limb - q_limbs
        };
        self.kernels[index].as_ref()
    }

    /// The root psi of the NTT of q_i (`i <= L`) or p_{i-L-1}: slot j of the NTT of a
    /// holds a(psi^(2*bitrev(j)+1)).
    pub fn ntt_root(&self, prime_index: usize) -> u64 {
        self.roots[prime_index]
    }

    /// q_l^-1 mod q_i for every i < l (rescaling by q_l).
    pub fn rescale_constants(&self, level: usize) -> &[ShoupConstant] {
        &self.rescale_inv[level]
    }

    /// P mod q_i for every Q prime (1 without special primes). The hybrid key-switching
    /// gadget of digit j is P on the limbs of digit j and 0 on every other limb of Q*P.
    pub fn p_mod_q(&self) -> &[u64] {
        &self.p_mod_q
    }

    /// P^-1 mod q_i for every Q prime (ModDown).
    pub fn p_inv_mod_q(&self) -> &[ShoupConstant] {
        &self.p_inv_mod_q
    }

    /// The P -> Q converter of ModDown (`None` without special primes); level l uses
    /// its first l+1 targets.
    pub fn mod_down_converter(&self) -> Option<&BaseConverter> {
        self.mod_down.as_ref()
    }

    /// The converter of ModUp for digit `digit` at `level`: from the digit's primes to
    /// (Q \ digit) then P, all of Q (level l uses the targets below l+1 and P).
    /// `None` without special primes.
    pub fn mod_up_converter(&self, level: usize, digit: usize) -> Option<&BaseConverter> {
        let range = self.digit_range(level, digit);
        self.mod_up
            .get(digit)
            .map(|by_count| &by_count[range.len() - 1])
    }

    /// The Galois element of a rotation by `steps` slots: 5^steps mod 2N (negative steps
    /// rotate the other way).
    pub fn rotation(&self, steps: i64) -> GaloisElement {
        let two_n = 2 * self.n() as u64;
        // The group generated by 5 mod 2N has order N/2.
        let order = (self.n() as i64 / 2).max(1);
        let e = steps.rem_euclid(order) as u64;
        let mut acc = 1u64;
        let mut base = 5 % two_n;
        let mut e = e;
        while e > 0 {
            if e & 1 == 1 {
                acc = acc * base % two_n;
            }
            base = base * base % two_n;
            e >>= 1;
        }
        GaloisElement(acc)
    }

    /// The Galois element of complex conjugation of the slots: 2N - 1 (X -> X^-1).
    pub fn conjugation(&self) -> GaloisElement {
        GaloisElement(2 * self.n() as u64 - 1)
    }

    /// Checks that g is odd and below 2N.
    pub fn galois_element(&self, g: u64) -> Result<GaloisElement, Error> {
        let two_n = 2 * self.n() as u64;
        if g % 2 == 1 && g < two_n {
            Ok(GaloisElement(g))
        } else {
            Err(Error::InvalidGaloisElement { element: g, two_n })
        }
    }

    /// The composition X -> X^(g*h).
    pub fn compose(&self, g: GaloisElement, h: GaloisElement) -> GaloisElement {
        GaloisElement(g.0 * h.0 % (2 * self.n() as u64))
    }

    /// The NTT-domain index map of X -> X^g: `out[i] = in[perm[i]]` for every limb.
    ///
    /// Slot i evaluates at psi^(e_i), e_i = 2*bitrev(i)+1, and a(X^g) at psi^(e_i) is a at
    /// psi^(g*e_i mod 2N), which is slot bitrev((g*e_i mod 2N - 1)/2). Cached per g.
    pub fn ntt_permutation(&self, g: GaloisElement) -> Arc<[u32]> {
        if let Ok(cache) = self.ntt_permutations.read()
            && let Some(perm) = cache.get(&g.0)
        {
            return Arc::clone(perm);
        }
        let n = self.n();
        let mask = 2 * n as u64 - 1;
        let perm: Arc<[u32]> = (0..n)
            .map(|i| {
                let exponent = ((2 * bit_reverse(i, self.log_n) as u64 + 1) * g.0) & mask;
                bit_reverse(((exponent - 1) / 2) as usize, self.log_n) as u32
            })
            .collect();
        if let Ok(mut cache) = self.ntt_permutations.write() {
            cache.insert(g.0, Arc::clone(&perm));
        }
        perm
    }
}

fn inverse_shoup(modulus: &Modulus, value: u64) -> ShoupConstant {
    // Invariant: distinct primes are coprime, so every inverse taken here exists.
    let inverse = modulus.inv(value).unwrap_or(0);
    debug_assert!(
        inverse != 0,
        "inverse of {value} mod {} missing",
        modulus.value()
    );
    modulus.shoup(inverse)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ckks::arith::primes::primes_below;
    use crate::ckks::arith::test_util::test_ring;

    #[test]
    fn constructor_rejects_bad_input() {
        let q = primes_below(10, 50, 2, &[]).expect("primes");
        let err = |r: Result<Arc<RingContext>, Error>| r.map(|_| ()).map_err(|e| e.to_string());
        assert_eq!(
            err(RingContext::new(18, &q, &[], 1)),
            Err("log N = 18 is outside [1, 17]".into())
        );
        assert_eq!(
            err(RingContext::new(10, &[], &[], 1)),
            Err("the Q chain needs at least one prime".into())
        );
        assert_eq!(
            err(RingContext::new(10, &q, &q[..1], 1)),
            Err(format!(
                "prime {} appears more than once in the Q and P chains",
                q[0]
            ))
        );
        assert_eq!(
            err(RingContext::new(10, &[q[0] + 2], &[], 1)),
            Err(format!(
                "{} is not a prime = 1 mod 2N for log N = 10",
                q[0] + 2
            ))
        );
        // Prime for N = 2^10 but not 1 mod 2^12.
        let not_for_11 = q
            .iter()
            .copied()
            .find(|v| v % (1 << 12) != 1)
            .expect("one exists");
        assert!(RingContext::new(11, &[not_for_11], &[], 1).is_err());
        assert_eq!(
            err(RingContext::new(10, &q, &[], 0)),
            Err("the key-switching digit size (alpha) must be at least 1".into())
        );
    }

    #[test]
    fn digits_and_converters_cover_each_level() {
        let ring = test_ring(5, 7, 2, 3, NttBackend::Reference);
        assert_eq!(ring.digits_at_level(6), 3);
        assert_eq!(ring.digit_range(6, 2), 6..7);
        assert_eq!(ring.digit_range(4, 1), 3..5);
        for level in 0..=6 {
            for digit in 0..ring.digits_at_level(level) {
                let conv = ring.mod_up_converter(level, digit).expect("has P");
                assert_eq!(conv.source_count(), ring.digit_range(level, digit).len());
                assert_eq!(conv.target_count(), 7 - conv.source_count() + 2);
            }
        }
    }

    #[test]
    fn ring_and_polys_are_shareable_across_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<RingContext>();
        assert_send_sync::<crate::ckks::arith::RnsPoly>();
    }

    #[test]
    fn rotation_elements_form_the_five_orbit() {
        let ring = test_ring(6, 1, 0, 1, NttBackend::Reference);
        assert_eq!(ring.rotation(0).value(), 1);
        assert_eq!(ring.rotation(1).value(), 5);
        assert_eq!(ring.rotation(2).value(), 25);
        assert_eq!(ring.compose(ring.rotation(1), ring.rotation(-1)).value(), 1);
        assert_eq!(ring.rotation(32).value(), 1); // order N/2
        assert_eq!(ring.conjugation().value(), 127);
        assert!(ring.galois_element(4).is_err());
        assert!(ring.galois_element(128).is_err());
    }
}
