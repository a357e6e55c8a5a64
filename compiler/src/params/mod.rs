//! CKKS parameters from the placed graph: the ring degree, the modulus chain (q_0, one scaling prime per level the plan uses, the bootstrapping circuit's levels on top when bootstraps are placed), special primes and dnum, checked against the HE-standard 128-bit bound.
//!
//! Primes are derived exactly as the runtime's checked `Params` derives them from a literal
//! (`primes_below` for q_0 and the special primes, alternating `scaling_primes` for each run
//! of equal bit sizes), behind [`derive_primes`]; the exact scales follow them
//! ([`crate::lower::levels::Chain`]).

use ensi_runtime::ckks::arith::primes::{is_prime, primes_below};
#[cfg(test)]
use ensi_runtime::ckks::scheme::Security;
use ensi_runtime::ckks::scheme::params::max_log_qp_128;
use ensi_runtime::ckks::scheme::{Params, ParamsLiteral, SecretDistribution};
use ensi_runtime::plan::PlanParams;
use serde::Serialize;

/// log2 of the default scale, and the bit size of every scaling prime.
pub const SCALE_BITS: u32 = 40;
/// Bits of q_0 (holds the output at the last level: |x| < 2^19 at scale 2^40).
pub const Q0_BITS: u32 = 60;
/// Bits of each special prime.
pub const SPECIAL_PRIME_BITS: u32 = 61;
/// Key-switching digits at the top of the chain (as the peers' N = 2^16 set).
pub const DNUM: u32 = 3;
/// Ring degree of secure plans: the smallest whose 128-bit bound holds the bootstrapping
/// circuit and a useful number of levels above it.
pub const SECURE_LOG_N: u32 = 16;
/// Ring degrees of `--insecure-test-params` (as small as the layouts allow).
pub const INSECURE_LOG_N: std::ops::RangeInclusive<u32> = 11..=13;

/// The bootstrapping circuit the chain reserves levels for, until the runtime's bootstrapper
/// exists and can be measured: Lattigo v6's defaults (CoeffsToSlots 4 levels, EvalMod 8 =
/// cosine of degree 30 + 3 double angles, SlotsToCoeffs 3), every level a scaling prime of
/// [`SCALE_BITS`] bits so that the default scales stay at 2^40 throughout the chain. The one
/// constant set to swap for the bootstrapper's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct BootstrapLevels {
    /// Levels CoeffsToSlots consumes.
    pub coeffs_to_slots: u32,
    /// Levels EvalMod consumes.
    pub eval_mod: u32,
    /// Levels SlotsToCoeffs consumes.
    pub slots_to_coeffs: u32,
}

impl BootstrapLevels {
    /// Lattigo's default circuit.
    pub const LATTIGO_DEFAULT: BootstrapLevels = BootstrapLevels {
        coeffs_to_slots: 4,
        eval_mod: 8,
        slots_to_coeffs: 3,
    };

    /// Levels the circuit consumes above the target level.
    pub fn depth(&self) -> u32 {
        self.coeffs_to_slots + self.eval_mod + self.slots_to_coeffs
    }
}

/// Why no parameter set fits.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ParamsError {
    /// The plan needs more levels than the 128-bit bound allows at the secure ring degree.
    #[error(
        "the plan needs {levels} levels{bootstraps}, but at N = 2^{log_n} the 128-bit bound \
         ({bound} bits of QP) holds at most {max_levels}{hint}"
    )]
    TooDeep {
        /// Levels needed above q_0.
        levels: u32,
        /// ` (plus 15 for bootstrapping)` or empty.
        bootstraps: String,
        /// log2 N.
        log_n: u32,
        /// The bound.
        bound: u32,
        /// Most levels that fit.
        max_levels: u32,
        /// What to do about it.
        hint: String,
    },
    /// Prime generation failed (too many primes of a size for the ring).
    #[error("cannot generate the primes of the chain: {message}")]
    Primes {
        /// The arithmetic layer's message.
        message: String,
    },
}

/// A chosen parameter set, with the facts reports show.
#[derive(Debug, Clone, PartialEq)]
pub struct Chosen {
    /// The plan's parameters (literal, primes, hash, security).
    pub params: PlanParams,
    /// Highest level a plan value may have (the bootstrapping levels are above it).
    pub user_top: u32,
    /// Levels reserved for bootstrapping above `user_top` (0 without bootstraps).
    pub bootstrap_levels: u32,
    /// log2(QP) of the actual primes.
    pub log_qp: f64,
    /// The 128-bit bound for the ring (None outside the table).
    pub bound: Option<u32>,
}

/// The bit sizes of a chain with `levels` scaling primes above q_0 and its special primes
/// (`DNUM` digits, each special-prime product above a digit's).
pub fn literal(log_n: u32, levels: u32) -> ParamsLiteral {
    let primes = levels + 1;
    let alpha = primes.div_ceil(DNUM);
    let digit_bits = Q0_BITS + (alpha.saturating_sub(1)) * SCALE_BITS;
    let special = digit_bits.div_ceil(SPECIAL_PRIME_BITS).max(1);
    ParamsLiteral {
        log_n,
        log_q: std::iter::once(Q0_BITS)
            .chain(std::iter::repeat_n(SCALE_BITS, levels as usize))
            .collect(),
        log_p: vec![SPECIAL_PRIME_BITS; special as usize],
        log_scale: SCALE_BITS,
        digit_primes: alpha,
        secret: SecretDistribution::UniformTernary,
    }
}

/// The most levels above q_0 whose chain fits the 128-bit bound at `log_n`, bootstrapping
/// levels included (0 if none fits or the ring is outside the table).
pub fn max_levels(log_n: u32) -> u32 {
    let Some(bound) = max_log_qp_128(log_n) else {
        return 0;
    };
    (1..512)
        .take_while(|&levels| literal(log_n, levels).log_qp() <= bound)
        .last()
        .unwrap_or(0)
}

/// The most levels a secure plan's values may use at `log_n` when bootstrapping (the circuit's
/// levels reserved above them).
pub fn max_user_levels(log_n: u32, circuit: BootstrapLevels) -> u32 {
    max_levels(log_n).saturating_sub(circuit.depth())
}

/// The primes of `literal`: q_0 the largest NTT-friendly prime below 2^bits, special primes
/// the largest below their size not already taken (as the runtime derives them), and the
/// scaling primes chosen from the top down so that the exact scales stay at 2^log_scale:
/// `q_l` is the NTT-friendly prime nearest `D_l² / 2^log_scale` (OpenFHE's FLEXIBLEAUTO
/// selection), so `D_{l−1} = D_l² / q_l` deviates from 2^log_scale by at most half a prime
/// gap, level after level.
///
/// The runtime's literal-only derivation (primes alternating around 2^bits) does not
/// correct the deviation, which doubles at every level under `D_{l−1} = D_l² / q_l`: at
/// N = 2^16 its chains of 20 scaling primes end at `D_0 = 2^41.2`, of 29 at `2^−∞`. The plan
/// therefore carries its primes ([`PlanParams::q`]). The one function to swap for the
/// runtime's checked parameters once they can be built from explicit primes.
pub fn derive_primes(literal: &ParamsLiteral) -> Result<(Vec<u64>, Vec<u64>), ParamsError> {
    let error = |e: ensi_runtime::ckks::arith::Error| ParamsError::Primes {
        message: e.to_string(),
    };
    let log_n = literal.log_n;
    let Some((&first, rest)) = literal.log_q.split_first() else {
        return Ok((Vec::new(), Vec::new()));
    };
    let mut q = primes_below(log_n, first, 1, &[]).map_err(error)?;
    let target = f64::from(literal.log_scale).exp2();
    let mut scale = target;
    let mut scaling = Vec::with_capacity(rest.len());
    for &bits in rest.iter().rev() {
        let wanted = scale * scale / target;
        let prime =
            nearest_ntt_prime(log_n, wanted, bits, &q, &scaling).ok_or(ParamsError::Primes {
                message: format!(
                    "no NTT-friendly {bits}-bit prime near 2^{:.3} for N = 2^{log_n}",
                    wanted.log2()
                ),
            })?;
        scaling.push(prime);
        scale = scale * scale / prime as f64;
    }
    scaling.reverse();
    q.extend(scaling);
    let mut p: Vec<u64> = Vec::new();
    let mut i = 0;
    while i < literal.log_p.len() {
        let bits = literal.log_p[i];
        let run = literal.log_p[i..]
            .iter()
            .take_while(|&&b| b == bits)
            .count();
        let exclude: Vec<u64> = q.iter().chain(&p).copied().collect();
        p.extend(primes_below(log_n, bits, run, &exclude).map_err(error)?);
        i += run;
    }
    Ok((q, p))
}

/// The prime `p ≡ 1 mod 2N` of `bits` bits nearest `x` that is in neither list.
fn nearest_ntt_prime(log_n: u32, x: f64, bits: u32, taken: &[u64], more: &[u64]) -> Option<u64> {
    let two_n = 2u64 << log_n;
    let (lo, hi) = (1u64 << (bits - 1), (1u64 << bits).saturating_mul(2));
    let centre = ((x / two_n as f64).round() as u64).saturating_mul(two_n) + 1;
    let ok = |c: u64| c > lo && c < hi && !taken.contains(&c) && !more.contains(&c) && is_prime(c);
    (0..1u64 << 20).find_map(|k| {
        let above = centre.checked_add(k * two_n).filter(|&c| ok(c));
        let below = centre.checked_sub(k * two_n).filter(|&c| ok(c));
        match (above, below) {
            (Some(a), Some(b)) => Some(if a as f64 - x < x - b as f64 { a } else { b }),
            (a, b) => a.or(b),
        }
    })
}

/// The parameters of a plan whose values use levels `0..=user_top`, with the bootstrapping
/// levels on top when `bootstraps`; checked against the 128-bit bound unless `insecure`.
pub fn choose(
    log_n: u32,
    user_top: u32,
    bootstraps: bool,
    insecure: bool,
    circuit: BootstrapLevels,
) -> Result<Chosen, ParamsError> {
    let bootstrap_levels = if bootstraps { circuit.depth() } else { 0 };
    let levels = user_top.max(1) + bootstrap_levels;
    let literal = literal(log_n, levels);
    let bound = max_log_qp_128(log_n);
    if !insecure && bound.is_none_or(|b| literal.log_qp() > b) {
        let max_levels = max_levels(log_n);
        let hint = if bootstraps {
            String::new()
        } else {
            format!(
                " (with bootstraps, {} levels between them: choose a placement policy that bootstraps)",
                max_user_levels(log_n, circuit)
            )
        };
        return Err(ParamsError::TooDeep {
            levels: user_top,
            bootstraps: if bootstraps {
                format!(" (plus {bootstrap_levels} for bootstrapping)")
            } else {
                String::new()
            },
            log_n,
            bound: bound.unwrap_or(0),
            max_levels,
            hint,
        });
    }
    let (q, p) = derive_primes(&literal)?;
    let log_qp: f64 = q.iter().chain(&p).map(|&v| (v as f64).log2()).sum();
    if let (false, Some(b)) = (insecure, bound)
        && log_qp > f64::from(b)
    {
        return Err(ParamsError::Primes {
            message: format!("the actual primes give log2(QP) = {log_qp:.2} above the bound {b}"),
        });
    }
    // The runtime's checked constructor on these primes: one definition of validity and of
    // the hash that keys, ciphertexts and plans carry.
    let checked = if insecure {
        Params::insecure_with_primes(&literal, &q, &p)
    } else {
        Params::with_primes(&literal, &q, &p)
    }
    .map_err(|e| ParamsError::Primes {
        message: e.to_string(),
    })?;
    Ok(Chosen {
        params: PlanParams {
            literal,
            q,
            p,
            hash: checked.hash(),
            security: checked.security(),
        },
        user_top: levels - bootstrap_levels,
        bootstrap_levels,
        log_qp,
        bound,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_secure_ring_holds_the_bootstrapping_circuit_and_fourteen_levels() {
        assert_eq!(max_user_levels(16, BootstrapLevels::LATTIGO_DEFAULT), 14);
        let literal = literal(16, 29);
        assert_eq!(literal.dnum(), 3);
        assert!(literal.log_qp() <= 1747);
        assert!(self::literal(16, 30).log_qp() > 1747);
    }

    #[test]
    fn chains_are_checked_and_marked() {
        let chosen = choose(16, 14, true, false, BootstrapLevels::LATTIGO_DEFAULT).unwrap();
        assert_eq!(chosen.params.q.len(), 30);
        assert_eq!(chosen.params.security, Security::Bits128);
        assert!(chosen.log_qp <= 1747.0);
        assert_eq!(chosen.user_top, 14);
        let error = choose(16, 40, false, false, BootstrapLevels::LATTIGO_DEFAULT).unwrap_err();
        assert_eq!(
            error.to_string(),
            "the plan needs 40 levels, but at N = 2^16 the 128-bit bound (1747 bits of QP) holds \
             at most 29 (with bootstraps, 14 levels between them: choose a placement policy that \
             bootstraps)"
        );
        let insecure = choose(11, 40, false, true, BootstrapLevels::LATTIGO_DEFAULT).unwrap();
        assert_eq!(insecure.params.security, Security::InsecureForTesting);
        assert_eq!(insecure.params.q.len(), 41);
        for (i, &q) in insecure.params.q.iter().enumerate() {
            assert_eq!(q % (1 << 12), 1, "q_{i} is NTT-friendly for N = 2^11");
        }
    }

    #[test]
    fn the_plan_hash_is_the_runtime_params_hash() {
        for insecure in [false, true] {
            let chosen = choose(16, 10, true, insecure, BootstrapLevels::LATTIGO_DEFAULT).unwrap();
            let PlanParams {
                literal,
                q,
                p,
                hash,
                security,
            } = &chosen.params;
            let rebuilt = if insecure {
                Params::insecure_with_primes(literal, q, p)
            } else {
                Params::with_primes(literal, q, p)
            }
            .unwrap();
            assert_eq!(rebuilt.hash(), *hash);
            assert_eq!(rebuilt.security(), *security);
        }
    }

    #[test]
    fn primes_follow_the_literal_deterministically() {
        let literal = literal(12, 5);
        let (q, p) = derive_primes(&literal).unwrap();
        assert_eq!((q.len(), p.len()), (6, literal.log_p.len()));
        assert!(q[0] < 1 << 60 && q[0] > 1 << 59);
        assert_eq!(derive_primes(&literal).unwrap(), (q.clone(), p.clone()));
        let mut all = q.clone();
        all.extend(&p);
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), q.len() + p.len(), "primes are distinct");
        let secure = self::literal(16, 5);
        let (q, p) = derive_primes(&secure).unwrap();
        assert_ne!(
            Params::with_primes(&secure, &q, &p).unwrap().hash(),
            Params::insecure_with_primes(&secure, &q, &p)
                .unwrap()
                .hash(),
            "the security marker is part of the hash"
        );
    }

    #[test]
    fn exact_scales_stay_at_the_default_through_deep_chains() {
        for (log_n, levels) in [(16, 29), (11, 200), (13, 120)] {
            let (q, _) = derive_primes(&literal(log_n, levels)).unwrap();
            let chain = crate::lower::levels::Chain::new(q.clone(), SCALE_BITS);
            let worst = chain
                .scales
                .iter()
                .map(|s| (s.log2() - f64::from(SCALE_BITS)).abs())
                .fold(0.0, f64::max);
            // Half a prime gap (a few times 2N) relative to 2^40.
            assert!(
                worst < 1e-4,
                "N = 2^{log_n}, {levels} levels: |log2 D − 40| up to {worst}"
            );
            for (l, &prime) in q.iter().enumerate().skip(1) {
                assert_eq!(prime % (2 << log_n), 1, "q_{l}");
                assert!(is_prime(prime));
            }
        }
    }
}
