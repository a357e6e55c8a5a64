//! CKKS bootstrapping: a ciphertext at a low level in, the same slots at a high level out (ScaleDown, sparse-secret encapsulation with ModRaise, CoeffsToSlots, EvalMod, SlotsToCoeffs); assumes a chain with the bootstrap's primes above the user levels (see `config`).
//!
//! The circuit, in order (Lattigo `circuits/ckks/bootstrapping` structures it alike;
//! Cheon–Han–Kim–Kim–Song 2018, Bossuat et al. EC'21 and eprint 2022/024):
//!
//! 1. **ScaleDown** to level 0 with scale `Delta0 ~ q0 / 2^ratio` (ratio 8; exactly the
//!    default scale of level 0 times an integer, just below): the message coefficients
//!    become at most `q0 / 2^8`.
//! 2. **Encapsulation + ModRaise**: switch to an ephemeral secret s' of Hamming weight
//!    h = 32 (key over q0*P only), lift both parts to the top level, switch back to s.
//!    The plaintext is then `Delta0 m + e + q0 I` with `|I| <= h/2 = 16` **always**
//!    (each coefficient of c0 + c1 s' is a sum of h + 1 terms of size <= q0/2), so EvalMod
//!    on [-17, 17] has no failure probability from I. The sparse key rests on the
//!    sparse-LWE estimate of Bossuat, Troncoso-Pastoriza and Hubaux (eprint 2022/024), as
//!    Lattigo's and OpenFHE's encapsulation do: the s -> s' key lives only in the ring of
//!    q0 and p0 (about 121 bits at N = 2^16, Lattigo's choice too).
//! 3. **Trace** (sparse slots only) onto the subring of the slot count.
//! 4. **CoeffsToSlots**: the special inverse FFT in `cts_levels` merged matrices (BSGS,
//!    double hoisting), with `1/(2K gap)` folded in; the conjugate then separates the real
//!    and imaginary coefficient halves (two ciphertexts at N/2 slots, one packed 2n-slot
//!    ciphertext below).
//! 5. **EvalMod**: `sin(2 pi x)/(2 pi)` from a cosine polynomial (full slots: baby steps
//!    T_1..T_32, the lowest noise; see `BootstrapConfig::eval_mod_log_baby`) and double
//!    angles; the result's imaginary noise is removed by adding its conjugate.
//! 6. **SlotsToCoeffs**: the special FFT with `q0 / Delta0` folded in, landing on exactly
//!    the default scale of the output level.
//!
//! **Supported input range.** Slot values of magnitude at most 1 (more precisely: the
//! ciphertext's plaintext coefficients at most 1, which |slots| <= 1 guarantees). Larger
//! values lose precision smoothly (the sine's cubic bias grows as |m|^3: measured in the
//! tests at |m| <= 2 and 4) and values beyond 2^ratio/4 = 64 wrap around; the circuit
//! cannot see the values, so this is documented, not checked.

pub mod bench;
pub mod config;
mod dft;
mod eval_mod;
pub mod keys;
mod mod_raise;
#[cfg(test)]
mod trace_tests;

use std::sync::Arc;

use crate::ckks::numerics::chebyshev::ApproxError;
use crate::ckks::numerics::dft::DftError;
use crate::ckks::scheme::{Ciphertext, Encoder, Error, Evaluator, Params};

pub use config::{
    BOOT_N15, BOOT_N16, BOOT_TEST_N10, BOOT_TEST_N12, BOOTSTRAP_SETS, BootstrapConfig,
    BootstrapSet, EPHEMERAL_HAMMING_WEIGHT, N15_QP847_BOOT, N16_QP1726_BOOT,
    TEST_INSECURE_BOOT_N10, TEST_INSECURE_BOOT_N12, default_eval_mod,
};
pub use keys::{BootstrapKeyRequirement, generate_bootstrap_keys};

use dft::DftLevel;
use eval_mod::HomomorphicEvalMod;

/// Why a bootstrapper could not be built or refused a ciphertext.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum BootstrapError {
    /// The scheme refused an operation.
    #[error(transparent)]
    Scheme(#[from] Error),
    /// The DFT factorization refused the slot count or grouping.
    #[error(transparent)]
    Dft(#[from] DftError),
    /// The EvalMod design was refused.
    #[error(transparent)]
    Approx(#[from] ApproxError),
    /// The chain is too short for the circuit.
    #[error(
        "the chain has {available} levels above q0, the bootstrap needs {needed} \
         ({depth} for the circuit, output level {output})"
    )]
    ChainTooShort {
        /// Levels available (L).
        available: usize,
        /// Levels needed.
        needed: usize,
        /// The circuit's depth.
        depth: usize,
        /// The requested output level.
        output: usize,
    },
    /// A ciphertext of another slot count.
    #[error("this bootstrapper refreshes {expected}-slot ciphertexts, got {got} slots")]
    WrongSlots {
        /// The configured slot count.
        expected: usize,
        /// The ciphertext's.
        got: usize,
    },
    /// A level-0 ciphertext whose scale does not divide the bootstrap's level-0 scale.
    #[error(
        "a level-0 input at scale 2^{log2_scale:.4} cannot be brought to the bootstrap's \
         level-0 scale 2^{log2_delta0:.4} (an integer multiple of the default scale of \
         level 0); rescale to the default scale or bootstrap from level >= 1"
    )]
    InputScaleUnsupported {
        /// log2 of the input's scale.
        log2_scale: f64,
        /// log2 of the bootstrap's level-0 scale.
        log2_delta0: f64,
    },
    /// Keys the circuit needs are absent from the evaluation keys.
    #[error("missing bootstrapping keys: {what}; generate them with generate_bootstrap_keys")]
    MissingKeys {
        /// Which keys.
        what: String,
    },
    /// An invalid configuration.
    #[error("invalid bootstrap configuration: {0}")]
    Config(String),
}

/// The level plan of one bootstrapper.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BootstrapLevels {
    /// Level ModRaise lifts to (the top of the chain).
    pub raise: usize,
    /// Levels of CoeffsToSlots.
    pub cts: usize,
    /// Levels of EvalMod.
    pub eval_mod: usize,
    /// Levels of SlotsToCoeffs.
    pub stc: usize,
    /// Output level (after any extra levels are dropped).
    pub output: usize,
}

/// A bootstrapper for one parameter set and slot count: the encoded DFT matrices, the
/// EvalMod polynomial and the plan of levels and scales. Build it once (on the server;
/// it holds no secret), then `bootstrap` any number of ciphertexts.
#[derive(Debug)]
pub struct Bootstrapper {
    params: Params,
    config: BootstrapConfig,
    levels: BootstrapLevels,
    delta0: f64,
    /// Shared by bootstrappers that differ only in output level or level-0 scale
    /// ([`Bootstrapper::new_sharing`]): the largest part of a bootstrapper's memory.
    cts: Arc<[DftLevel]>,
    eval_mod: HomomorphicEvalMod,
    /// Target scale of the cosine polynomial's output.
    poly_scale: f64,
    stc: Vec<DftLevel>,
    /// Exact scale of the output.
    output_scale: f64,
    requirements: Vec<BootstrapKeyRequirement>,
}

impl Bootstrapper {
    /// Plans and encodes the circuit for `params` and `config`.
    pub fn new(params: &Params, config: BootstrapConfig) -> Result<Self, BootstrapError> {
        Self::build(params, config, None)
    }

    /// Like [`Bootstrapper::new`], but reuses the CoeffsToSlots diagonals of `existing` when
    /// `config` encodes the same ones (same parameters, slot count, CoeffsToSlots levels and
    /// EvalMod K; output level and level-0 scale only change SlotsToCoeffs), instead of
    /// holding a second copy.
    pub fn new_sharing(
        params: &Params,
        config: BootstrapConfig,
        existing: &Bootstrapper,
    ) -> Result<Self, BootstrapError> {
        let same = existing.params.hash() == params.hash()
            && existing.config.slots == config.slots
            && existing.config.cts_levels == config.cts_levels
            && existing.config.eval_mod.k == config.eval_mod.k;
        Self::build(params, config, same.then(|| Arc::clone(&existing.cts)))
    }

    /// Whether `self` and `other` hold one shared copy of the CoeffsToSlots diagonals.
    pub fn shares_coeffs_to_slots(&self, other: &Bootstrapper) -> bool {
        Arc::ptr_eq(&self.cts, &other.cts)
    }

    fn build(
        params: &Params,
        config: BootstrapConfig,
        shared_cts: Option<Arc<[DftLevel]>>,
    ) -> Result<Self, BootstrapError> {
        let emb = params.embedding();
        emb.check_slots(config.slots).map_err(Error::from)?;
        let k_min = (config.hamming_weight / 2 + 1) as usize;
        if config.eval_mod.k < k_min {
            return Err(BootstrapError::Config(format!(
                "EvalMod K = {} is below h/2 + 1 = {k_min}: ModRaise's |I| <= h/2 would overflow",
                config.eval_mod.k
            )));
        }
        if config.eval_mod.arcsine_degree > 1 {
            return Err(BootstrapError::Config(format!(
                "the arcsine correction (degree {}) is not implemented in the homomorphic \
                 EvalMod; use arcsine_degree 0",
                config.eval_mod.arcsine_degree
            )));
        }
        if config.cts_levels == 0 || config.stc_levels == 0 {
            return Err(BootstrapError::Config(
                "CoeffsToSlots and SlotsToCoeffs need at least one level each".into(),
            ));
        }
        let encoder = Encoder::new(params);
        let q = params.q();
        let top = params.max_level();
        let eval_mod = HomomorphicEvalMod::new(config.eval_mod, config.eval_mod_log_baby)?;
        let depth = config.cts_levels + eval_mod.depth() + config.stc_levels;
        let natural = top
            .checked_sub(depth)
            .ok_or(BootstrapError::ChainTooShort {
                available: top,
                needed: depth,
                depth,
                output: 0,
            })?;
        let output = config.output_level.unwrap_or(natural);
        if output > natural {
            return Err(BootstrapError::ChainTooShort {
                available: top,
                needed: depth + output,
                depth,
                output,
            });
        }
        let levels = BootstrapLevels {
            raise: top,
            cts: config.cts_levels,
            eval_mod: eval_mod.depth(),
            stc: config.stc_levels,
            output,
        };
        let slots = config.slots;
        let gap = (params.max_slots() / slots) as f64;
        // Delta0 (`BootstrapConfig::level0_scale_on`): level-0 inputs reach it by an integer
        // product; it must leave room below q0.
        let delta0 = config.level0_scale_on(params);
        if !(delta0.is_finite() && delta0 >= 1.0 && delta0 < q[0] as f64 / 4.0) {
            return Err(BootstrapError::Config(format!(
                "level-0 scale 2^{:.4} must be below q0/4 = 2^{:.4}",
                delta0.log2(),
                (q[0] as f64 / 4.0).log2()
            )));
        }

        let em_level = top - config.cts_levels;
        let cts = match shared_cts {
            Some(cts) => cts,
            None => Self::coeffs_to_slots(params, &encoder, &config, gap)?,
        };
        // Fewer stages than levels: the rest are dropped.
        let poly_level = eval_mod.poly_level(em_level);
        let poly_scale = q[poly_level] as f64;
        let mut scale = eval_mod.output_scale(&q, poly_level, poly_scale);
        let mut level = em_level - eval_mod.depth();

        // SlotsToCoeffs: q0 / (2 Delta0) folded into the first level (the 2 of the real
        // part taken after EvalMod); the last lands on the default scale of the output level.
        let output_scale = params.default_scale(output);
        let stc_maps = dft::slots_to_coeffs_matrices(
            &encoder,
            slots,
            config.stc_levels,
            q[0] as f64 / delta0 / 2.0,
        )?;
        let stc_count = stc_maps.len();
        let stc_last_level = top - depth + 1;
        let mut stc = Vec::new();
        for (i, (map, view)) in stc_maps.iter().enumerate() {
            if i + 1 == stc_count {
                level = stc_last_level; // skipped levels were dropped
            }
            let q_l = q[level] as f64;
            let diag_scale = if i + 1 == stc_count {
                output_scale * q_l / scale
            } else {
                q_l
            };
            stc.push(dft::encode_level(
                &encoder, map, *view, slots, level, diag_scale,
            )?);
            scale = scale * diag_scale / q_l;
            level -= 1;
        }
        let mut bootstrapper = Self {
            params: params.clone(),
            config,
            levels,
            delta0,
            cts,
            eval_mod,
            poly_scale,
            stc,
            output_scale,
            requirements: Vec::new(),
        };
        bootstrapper.requirements = keys::requirements(&bootstrapper);
        Ok(bootstrapper)
    }

    /// CoeffsToSlots: input labelled with scale q0; every level but the last keeps the
    /// scale (diagonals at q_l), the last lands on q of the first EvalMod level.
    fn coeffs_to_slots(
        params: &Params,
        encoder: &Encoder,
        config: &BootstrapConfig,
        gap: f64,
    ) -> Result<Arc<[DftLevel]>, BootstrapError> {
        let q = params.q();
        let top = params.max_level();
        let k = config.eval_mod.k as f64;
        let maps = dft::coeffs_to_slots_matrices(
            encoder,
            config.slots,
            config.cts_levels,
            1.0 / (k * gap),
        )?;
        let em_level = top - config.cts_levels;
        let mut scale = q[0] as f64;
        let mut level = top;
        let mut cts = Vec::new();
        for (i, (map, view)) in maps.iter().enumerate() {
            let q_l = q[level] as f64;
            let diag_scale = if i + 1 == maps.len() {
                q[em_level] as f64 * q_l / scale
            } else {
                q_l
            };
            cts.push(dft::encode_level(
                encoder, map, *view, *view, level, diag_scale,
            )?);
            scale = scale * diag_scale / q_l;
            level -= 1;
        }
        Ok(cts.into())
    }

    /// The parameters.
    pub fn params(&self) -> &Params {
        &self.params
    }

    /// The configuration.
    pub fn config(&self) -> &BootstrapConfig {
        &self.config
    }

    /// The level plan.
    pub fn levels(&self) -> BootstrapLevels {
        self.levels
    }

    /// Levels the circuit consumes (CtS + EvalMod + StC).
    pub fn depth(&self) -> usize {
        self.levels.cts + self.levels.eval_mod + self.levels.stc
    }

    /// The lowest level a ciphertext may be bootstrapped from: 0 (at level 0 its scale
    /// must divide `level0_scale()`, as the default scale of level 0 does; see
    /// `BootstrapError::InputScaleUnsupported`).
    pub fn min_input_level(&self) -> usize {
        0
    }

    /// The scale ScaleDown brings the input to at level 0 (`Delta0`: the default scale of
    /// level 0 times the largest integer keeping it at most q0/2^ratio).
    pub fn level0_scale(&self) -> f64 {
        self.delta0
    }

    /// The output level.
    pub fn output_level(&self) -> usize {
        self.levels.output
    }

    /// The exact scale of the output (the default scale of the output level).
    pub fn output_scale(&self) -> f64 {
        self.output_scale
    }

    /// The slot count.
    pub fn slots(&self) -> usize {
        self.config.slots
    }

    /// The Galois keys and encapsulation keys the circuit uses, each with the highest
    /// level it is used at (keys are generated truncated to it).
    pub fn key_requirements(&self) -> &[BootstrapKeyRequirement] {
        &self.requirements
    }

    /// Number of switching keys the circuit uses (Galois, relinearization, the two
    /// encapsulation keys).
    pub fn key_count(&self) -> usize {
        self.galois_elements().len() + 3
    }

    /// Bytes the keys of `key_requirements()` hold in memory once generated (both parts of
    /// every digit; files hold half: the b parts and seeds), without generating them.
    pub fn key_bytes(&self) -> usize {
        let ring = self.params.ring();
        let n = self.params.n();
        let special = ring.p().len();
        let key_at = |level: usize| ring.digits_at_level(level) * 2 * (level + 1 + special) * n * 8;
        let top = self.params.max_level();
        self.requirements
            .iter()
            .map(|r| match *r {
                BootstrapKeyRequirement::Galois { level, .. } => key_at(level),
                BootstrapKeyRequirement::Relinearization => key_at(top),
                // s' -> s over all of Q*P; s -> s' over q0 and p0 (one digit).
                BootstrapKeyRequirement::Encapsulation { .. } => key_at(top) + 2 * 2 * n * 8,
            })
            .sum()
    }

    /// The Galois elements the circuit uses (rotations of CtS, StC and the trace, and
    /// conjugation), ascending.
    pub fn galois_elements(&self) -> Vec<u64> {
        let mut out: Vec<u64> = self
            .requirements
            .iter()
            .filter_map(|r| match r {
                BootstrapKeyRequirement::Galois { element, .. } => Some(*element),
                _ => None,
            })
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Checks the evaluation keys hold everything the circuit uses, at sufficient levels.
    pub fn check_keys(&self, eval: &Evaluator<'_>) -> Result<(), BootstrapError> {
        let keys = eval.keys();
        let mut missing = Vec::new();
        if keys.relin().is_none() {
            missing.push("relinearization".to_string());
        }
        match keys.encapsulation() {
            None => missing.push("encapsulation (dense <-> sparse)".to_string()),
            Some(e) if e.hamming_weight() != self.config.hamming_weight => {
                missing.push(format!(
                    "encapsulation for h = {} (have h = {})",
                    self.config.hamming_weight,
                    e.hamming_weight()
                ));
            }
            Some(e) if e.to_dense().level() < self.levels.raise => {
                missing.push("encapsulation key back to the dense secret at the top".into());
            }
            Some(_) => {}
        }
        for r in &self.requirements {
            if let BootstrapKeyRequirement::Galois { element, level } = r {
                match keys.galois(*element) {
                    None => missing.push(format!("Galois element {element}")),
                    Some(k) if k.level() < *level => missing.push(format!(
                        "Galois element {element} at level {level} (key truncated to {})",
                        k.level()
                    )),
                    Some(_) => {}
                }
            }
        }
        if missing.is_empty() {
            Ok(())
        } else {
            let count = missing.len();
            missing.truncate(4);
            let more = if count > 4 {
                format!(" and {} more", count - 4)
            } else {
                String::new()
            };
            Err(BootstrapError::MissingKeys {
                what: format!("{}{more}", missing.join(", ")),
            })
        }
    }

    /// Refreshes `ct` (any level >= `min_input_level`, this bootstrapper's slot count,
    /// values in the supported range) to `output_level()` at `output_scale()`.
    pub fn bootstrap(
        &self,
        eval: &Evaluator<'_>,
        ct: &Ciphertext,
    ) -> Result<Ciphertext, BootstrapError> {
        if ct.slots() != self.config.slots {
            return Err(BootstrapError::WrongSlots {
                expected: self.config.slots,
                got: ct.slots(),
            });
        }
        if eval.params() != &self.params {
            return Err(BootstrapError::Config(
                "the evaluator's parameters are not the bootstrapper's".into(),
            ));
        }
        self.check_keys(eval)?;
        let encapsulation =
            eval.keys()
                .encapsulation()
                .ok_or_else(|| BootstrapError::MissingKeys {
                    what: "encapsulation".into(),
                })?;
        let slots = self.config.slots;
        let full = slots == self.params.max_slots();

        // 1-2. ScaleDown, encapsulation, ModRaise.
        let low = mod_raise::scale_down(eval, ct, self.delta0)?;
        let sparse = mod_raise::switch_to_sparse(eval, &low, encapsulation)?;
        let raised = mod_raise::mod_raise(eval, &sparse, self.levels.raise)?;
        let mut x = mod_raise::switch_to_dense(eval, &raised, encapsulation)?;
        // 3. Trace onto the subring.
        if !full {
            x = mod_raise::trace(eval, &x, slots)?;
        }
        // 4. CoeffsToSlots.
        for step in self.cts.iter() {
            x.slots = step.view;
            x = step.transform.evaluate(eval, &x)?;
            eval.rescale_assign(&mut x)?;
            x.slots = step.out_slots;
        }
        let em_level = self.levels.raise - self.levels.cts;
        if x.level() > em_level {
            x = eval.drop_to_level(&x, em_level)?;
        }
        let conj = eval.conjugate(&x)?;
        // 5. EvalMod on the real (and imaginary) coefficient halves.
        // Each output is made real again (y + conj(y) = 2 Re y, the 1/2 folded into
        // SlotsToCoeffs): EvalMod's rescales add complex noise whose imaginary part would
        // otherwise land in the other half of the coefficients (measured: +0.5 bit).
        let eval_mod_real = |v: &Ciphertext| -> Result<Ciphertext, BootstrapError> {
            let y = self.eval_mod.evaluate(eval, v, self.poly_scale)?;
            Ok(eval.add(&y, &eval.conjugate(&y)?)?)
        };
        let mut y = if full {
            let re = eval.add(&x, &conj)?;
            let im = eval.mul_by_i(&eval.sub(&conj, &x)?)?;
            let re = eval_mod_real(&re)?;
            let im = eval_mod_real(&im)?;
            eval.add(&re, &eval.mul_by_i(&im)?)?
        } else {
            eval_mod_real(&eval.add(&x, &conj)?)?
        };
        // 6. SlotsToCoeffs.
        for step in &self.stc {
            if y.level() > step.transform.level() {
                y = eval.drop_to_level(&y, step.transform.level())?;
            }
            y.slots = step.view;
            y = step.transform.evaluate(eval, &y)?;
            eval.rescale_assign(&mut y)?;
            y.slots = step.out_slots;
        }
        if y.level() > self.levels.output {
            y = eval.drop_to_level(&y, self.levels.output)?;
        }
        y.set_scale(self.output_scale);
        Ok(y)
    }
}
