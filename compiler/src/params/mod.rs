//! CKKS parameters from the placed graph: the ring degree, the modulus chain (q_0, one scaling prime per level the plan uses, the bootstrapping circuit's levels on top when bootstraps are placed), special primes and dnum, checked against the HE-standard 128-bit bound.
//!
//! Primes are derived exactly as the runtime's checked `Params` derives them from a literal
//! (`primes_below` for q_0 and the special primes, alternating `scaling_primes` for each run
//! of equal bit sizes), behind [`derive_primes`]; the exact scales follow them
//! ([`crate::lower::levels::Chain`]).

use ensi_runtime::ckks::arith::primes::{is_prime, primes_below};
use ensi_runtime::ckks::circuits::bootstrap::BootstrapConfig;
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
/// Bits of the bootstrapping circuit's primes: CoeffsToSlots, EvalMod and SlotsToCoeffs
/// keep their values at scales near 2^60 (the runtime's `N16_QP1726_BOOT` shape).
pub const BOOTSTRAP_PRIME_BITS: u32 = 60;
/// Key-switching digits of a bootstrapping chain. 10 digits keep P to 3 primes, so that at
/// N = 2^16 the 128-bit bound holds 14 user levels above the circuit's 15 (the runtime's
/// `N16_QP1726_BOOT` has 5 digits, P = 6 primes and 10 user levels): the placements of
/// ENSI's policy need more than 10 levels between bootstraps; the price is key memory
/// (each switching key has twice the digits).
pub const BOOTSTRAP_DNUM: u32 = 10;
/// Ring degree of secure plans: the smallest whose 128-bit bound holds the bootstrapping
/// circuit and a useful number of levels above it.
pub const SECURE_LOG_N: u32 = 16;
/// Ring degrees of `--insecure-test-params` (as small as the layouts allow).
pub const INSECURE_LOG_N: std::ops::RangeInclusive<u32> = 11..=13;

/// The levels a bootstrapping circuit consumes, as the chain reserves them above the user
/// levels ([`bootstrapper`] reads them off the runtime's bootstrapper).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct BootstrapLevels {
    /// Levels CoeffsToSlots consumes.
    pub coeffs_to_slots: u32,
    /// Levels EvalMod consumes.
    pub eval_mod: u32,
    /// Levels SlotsToCoeffs consumes.
    pub slots_to_coeffs: u32,
    /// The lowest level a ciphertext may enter the bootstrapper at.
    pub min_input_level: u32,
}

/// The bootstrapper plans are compiled for: the runtime's default circuit
/// (`BootstrapConfig::new`, the one the executor builds for every `Bootstrap` op), whose
/// depth the chain reserves above the user levels (a bootstrap's output is at most the top
/// user level) and whose minimum input level is 0. The ring, the chain, the placement's
/// level budget and its bootstrap cost all follow from it.
pub fn bootstrapper() -> BootstrapLevels {
    let config = BootstrapConfig::new(1 << (SECURE_LOG_N - 1));
    BootstrapLevels {
        coeffs_to_slots: config.cts_levels as u32,
        eval_mod: config.eval_mod_depth() as u32,
        slots_to_coeffs: config.stc_levels as u32,
        min_input_level: 0,
    }
}

impl BootstrapLevels {
    /// Lattigo's default circuit.
    pub const LATTIGO_DEFAULT: BootstrapLevels = BootstrapLevels {
        coeffs_to_slots: 4,
        eval_mod: 8,
        slots_to_coeffs: 3,
        min_input_level: 0,
    };

    /// Levels the circuit consumes above the target level.
    pub fn depth(&self) -> u32 {
        self.coeffs_to_slots + self.eval_mod + self.slots_to_coeffs
    }

    /// The circuit the cost model prices: Lattigo's for the default; otherwise EvalMod as
    /// three double angles after the deepest cosine series its remaining levels allow.
    pub fn cost_circuit(&self) -> crate::cost::BootstrapCircuit {
        use crate::cost::BootstrapCircuit;
        if *self == Self::LATTIGO_DEFAULT {
            return BootstrapCircuit::LATTIGO_DEFAULT;
        }
        let double_angles = self.eval_mod.saturating_sub(1).min(3);
        let series_levels = self.eval_mod - double_angles;
        BootstrapCircuit {
            coeffs_to_slots_depth: self.coeffs_to_slots,
            eval_mod_degree: (1u32 << series_levels.min(10)) - 1,
            double_angles,
            slots_to_coeffs_depth: self.slots_to_coeffs,
            min_input_level: self.min_input_level,
        }
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

/// The bit sizes of a bootstrapping chain: q_0, `user_levels` scaling primes, the circuit's
/// levels in [`BOOTSTRAP_PRIME_BITS`]-bit primes on top, and special primes whose product
/// exceeds a digit of [`BOOTSTRAP_DNUM`].
pub fn bootstrap_literal(log_n: u32, user_levels: u32, circuit: BootstrapLevels) -> ParamsLiteral {
    let primes = 1 + user_levels + circuit.depth();
    let alpha = primes.div_ceil(BOOTSTRAP_DNUM);
    let digit_bits = alpha * Q0_BITS.max(BOOTSTRAP_PRIME_BITS);
    let special = digit_bits.div_ceil(SPECIAL_PRIME_BITS).max(1);
    ParamsLiteral {
        log_n,
        log_q: std::iter::once(Q0_BITS)
            .chain(std::iter::repeat_n(SCALE_BITS, user_levels as usize))
            .chain(std::iter::repeat_n(
                BOOTSTRAP_PRIME_BITS,
                circuit.depth() as usize,
            ))
            .collect(),
        log_p: vec![SPECIAL_PRIME_BITS; special as usize],
        log_scale: SCALE_BITS,
        digit_primes: alpha,
        secret: SecretDistribution::UniformTernary,
    }
}

/// The most levels above q_0 whose chain fits the 128-bit bound at `log_n` without
/// bootstrapping (0 if none fits or the ring is outside the table).
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
/// levels reserved above them in their own primes).
pub fn max_user_levels(log_n: u32, circuit: BootstrapLevels) -> u32 {
    let Some(bound) = max_log_qp_128(log_n) else {
        return 0;
    };
    (1..512)
        .take_while(|&levels| bootstrap_literal(log_n, levels, circuit).log_qp() <= bound)
        .last()
        .unwrap_or(0)
}

/// The primes of `literal`: q_0 the largest NTT-friendly prime below 2^bits, special primes
/// the largest below their size not already taken (as the runtime derives them), and the
/// scaling primes chosen from the top down so that the exact scales stay at 2^log_scale:
/// `q_l` is the NTT-friendly prime nearest `D_l² / 2^log_scale` (OpenFHE's FLEXIBLEAUTO
/// selection), so `D_{l−1} = D_l² / q_l` deviates from 2^log_scale by at most half a prime
/// gap, level after level.
///
/// Only the run of `log_scale`-bit primes above q_0 (the user levels) is chosen this way,
/// anchored at its top as the runtime anchors default scales; a bootstrapping chain's larger
/// primes above it (the circuit's own scales) are the largest of their size not yet taken.
///
/// The runtime's literal-only derivation (primes alternating around 2^bits) does not
/// correct the deviation, which doubles at every level under `D_{l−1} = D_l² / q_l`: at
/// N = 2^16 its chains of 20 scaling primes end at `D_0 = 2^41.2`, of 29 at `2^−∞`. The plan
/// therefore carries its primes ([`PlanParams::q`]), which the runtime checks against the
/// literal (`Params::with_primes`).
pub fn derive_primes(literal: &ParamsLiteral) -> Result<(Vec<u64>, Vec<u64>), ParamsError> {
    let error = |e: ensi_runtime::ckks::arith::Error| ParamsError::Primes {
        message: e.to_string(),
    };
    let log_n = literal.log_n;
    let Some((&first, rest)) = literal.log_q.split_first() else {
        return Ok((Vec::new(), Vec::new()));
    };
    let mut q = primes_below(log_n, first, 1, &[]).map_err(error)?;
    let user = rest.iter().take_while(|&&b| b == literal.log_scale).count();
    let (user_bits, above) = rest.split_at(user);
    let target = f64::from(literal.log_scale).exp2();
    let mut scale = target;
    let mut scaling = Vec::with_capacity(user);
    for &bits in user_bits.iter().rev() {
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
    largest_by_runs(log_n, above, &[], &mut q).map_err(error)?;
    let mut p: Vec<u64> = Vec::new();
    largest_by_runs(log_n, &literal.log_p, &q, &mut p).map_err(error)?;
    Ok((q, p))
}

/// Appends to `out`, for each run of equal sizes in `sizes`, the largest NTT-friendly primes
/// of that size in neither `taken` nor `out` (as the runtime derives special primes).
fn largest_by_runs(
    log_n: u32,
    sizes: &[u32],
    taken: &[u64],
    out: &mut Vec<u64>,
) -> Result<(), ensi_runtime::ckks::arith::Error> {
    let mut i = 0;
    while i < sizes.len() {
        let bits = sizes[i];
        let run = sizes[i..].iter().take_while(|&&b| b == bits).count();
        let exclude: Vec<u64> = taken.iter().chain(out.iter()).copied().collect();
        out.extend(primes_below(log_n, bits, run, &exclude)?);
        i += run;
    }
    Ok(())
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
    let user_top = user_top.max(1);
    let literal = if bootstraps {
        bootstrap_literal(log_n, user_top, circuit)
    } else {
        literal(log_n, user_top)
    };
    let bound = max_log_qp_128(log_n);
    if !insecure && bound.is_none_or(|b| literal.log_qp() > b) {
        let max_levels = if bootstraps {
            max_user_levels(log_n, circuit)
        } else {
            max_levels(log_n)
        };
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
        user_top,
        bootstrap_levels,
        log_qp,
        bound,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_secure_bootstrapping_chain_has_the_runtimes_shape_and_fourteen_user_levels() {
        let circuit = bootstrapper();
        assert_eq!(circuit.depth(), 15);
        assert_eq!(max_user_levels(16, circuit), 14);
        let runtime = ensi_runtime::ckks::circuits::bootstrap::BOOT_N16
            .params
            .literal();
        assert_eq!(bootstrap_literal(16, 10, circuit).log_q, runtime.log_q);
        let chosen = choose(16, 14, true, false, circuit).unwrap();
        assert_eq!(chosen.user_top, 14);
        assert_eq!(chosen.params.q.len(), 30);
        assert_eq!(chosen.params.literal.dnum(), 10);
        let params =
            Params::with_primes(&chosen.params.literal, &chosen.params.q, &chosen.params.p)
                .unwrap();
        // Default scales anchored at the top user level, exactly as the compiler's chain.
        let chain = crate::lower::levels::Chain::new(chosen.params.q[..=14].to_vec(), SCALE_BITS);
        for level in 0..=14 {
            assert_eq!(
                params.default_scale(level),
                chain.scales[level],
                "level {level}"
            );
        }
        let error = choose(16, 15, true, false, circuit).unwrap_err();
        assert!(error.to_string().contains("holds at most 14"), "{error}");
    }

    #[test]
    fn the_secure_ring_holds_twenty_nine_levels_without_bootstrapping() {
        let literal = literal(16, 29);
        assert_eq!(literal.dnum(), 3);
        assert!(literal.log_qp() <= 1747);
        assert!(self::literal(16, 30).log_qp() > 1747);
    }

    #[test]
    fn chains_are_checked_and_marked() {
        let chosen = choose(16, 14, true, false, bootstrapper()).unwrap();
        assert_eq!(chosen.params.q.len(), 30);
        assert_eq!(chosen.params.security, Security::Bits128);
        assert!(chosen.log_qp <= 1747.0);
        assert_eq!(chosen.user_top, 14);
        let error = choose(16, 40, false, false, bootstrapper()).unwrap_err();
        assert_eq!(
            error.to_string(),
            "the plan needs 40 levels, but at N = 2^16 the 128-bit bound (1747 bits of QP) holds \
             at most 29 (with bootstraps, 14 levels between them: choose a placement policy that \
             bootstraps)"
        );
        let insecure = choose(11, 40, false, true, bootstrapper()).unwrap();
        assert_eq!(insecure.params.security, Security::InsecureForTesting);
        assert_eq!(insecure.params.q.len(), 41);
        for (i, &q) in insecure.params.q.iter().enumerate() {
            assert_eq!(q % (1 << 12), 1, "q_{i} is NTT-friendly for N = 2^11");
        }
    }

    #[test]
    fn the_plan_hash_is_the_runtime_params_hash() {
        for insecure in [false, true] {
            let chosen = choose(16, 10, true, insecure, bootstrapper()).unwrap();
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
