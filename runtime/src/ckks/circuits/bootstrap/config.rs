//! Bootstrapping configuration and parameter sets: the circuit knobs (slots, CtS/StC levels, EvalMod design, ephemeral Hamming weight, target level) and the named chains they run on.

use crate::ckks::numerics::eval_mod::{CosineNodes, EvalModParams};
use crate::ckks::scheme::params::NamedSet;

/// Hamming weight of the ephemeral sparse secret of the encapsulation.
pub const EPHEMERAL_HAMMING_WEIGHT: u32 = 32;

/// The circuit knobs of one bootstrapper.
#[derive(Debug, Clone, PartialEq)]
pub struct BootstrapConfig {
    /// Slot count of the ciphertexts it refreshes (a power of two <= N/2).
    pub slots: usize,
    /// Levels of CoeffsToSlots (the special inverse FFT's stages grouped into this many
    /// merged matrices; capped at log2(slots)).
    pub cts_levels: usize,
    /// Levels of SlotsToCoeffs.
    pub stc_levels: usize,
    /// The EvalMod design. `k` must be at least `h/2 + 1` (= 17 for h = 32): with the
    /// encapsulation the integer part I of ModRaise is at most h/2 in absolute value.
    /// `arcsine_degree` must be 0 (the correction is not implemented homomorphically yet).
    pub eval_mod: EvalModParams,
    /// Hamming weight of the ephemeral secret (32).
    pub hamming_weight: u32,
    /// The level-0 scale Δ0 ModRaise works at (message ratio q0/Δ0); `None`: the default
    /// scale of level 0 times the integer that brings it just below q0 / 2^ratio. Set it to
    /// the scale of level-0 inputs that do not divide the default (e.g. a plan's range
    /// factor kept in the scale); inputs at level >= 1 reach any Δ0.
    pub level0_scale: Option<f64>,
    /// Output level; `None`: the highest the circuit reaches. A lower target drops the
    /// extra levels after SlotsToCoeffs (the circuit itself runs on the bootstrap primes).
    pub output_level: Option<usize>,
    /// log2 of the baby steps of the cosine polynomial's evaluation (BSGS in the Chebyshev
    /// basis); `None`: the largest power of two <= the degree (T_1..T_32 for degree 56,
    /// the depth is the same). Fewer baby steps cost fewer ciphertext products but the
    /// giant-step quotients of the high-frequency cosine amplify the giant powers' rescale
    /// noise. At N = 2^16, full slots, one thread (bits mean / worst, bootstrap CPU s):
    /// 3 (the sqrt(d) default of the polynomial evaluator) 24.7 / 21.5 in 13.7 s, 4
    /// 25.2 / 21.9 in 14.7 s, 5 (the default) 26.4 / 23.2–23.4 in 16.9–19.1 s.
    pub eval_mod_log_baby: Option<u32>,
}

/// EvalMod default: K = 17 (deterministic for h = 32), Han–Ki cosine of degree 56 (depth
/// 6), 2 double angles, message ratio 2^8, no arcsine: 8 levels; f64 error of the
/// approximation 2^-47.5 on x, the sine bias (2pi)^2 m^3/6 dominating (eval_mod numerics).
pub fn default_eval_mod() -> EvalModParams {
    EvalModParams {
        k: (EPHEMERAL_HAMMING_WEIGHT / 2 + 1) as usize,
        degree: 56,
        double_angles: 2,
        log_message_ratio: 8,
        nodes: CosineNodes::HanKi,
        arcsine_degree: 0,
    }
}

impl BootstrapConfig {
    /// The defaults for `slots` slots: CtS 4 levels, StC 3 levels, default EvalMod, h = 32.
    ///
    /// The message ratio trades the sine's cubic bias (relative error
    /// `(2pi)^2 c^2 / 6 / 4^ratio` on a plaintext coefficient c) against the noise of
    /// EvalMod's input, which the ratio amplifies. Uniform values on n slots have
    /// coefficients of about `1/sqrt(n)`: 2^8 for n >= 2^12 (noise-bound at N = 2^14 and
    /// 2^16), 2^9 below (bias-bound; measured +2 bits at N = 2^12, 2048 slots). The
    /// bias-bound sparse case also keeps the cheaper sqrt(d) baby steps of the cosine
    /// (`eval_mod_log_baby` 3): its noise is not what limits it.
    pub fn new(slots: usize) -> Self {
        let mut eval_mod = default_eval_mod();
        let mut eval_mod_log_baby = None;
        if slots < 1 << 12 {
            eval_mod.log_message_ratio = 9;
            eval_mod_log_baby = Some(3);
        }
        Self {
            slots,
            cts_levels: 4,
            stc_levels: 3,
            eval_mod,
            hamming_weight: EPHEMERAL_HAMMING_WEIGHT,
            level0_scale: None,
            output_level: None,
            eval_mod_log_baby,
        }
    }

    /// Levels the circuit consumes above its output, for `slots` slots: CtS + EvalMod + StC.
    pub fn depth(&self) -> usize {
        self.cts_levels + self.eval_mod_depth() + self.stc_levels
    }

    /// The level-0 scale Δ0 ModRaise works at on `params`: `level0_scale` if set, else the
    /// default scale of level 0 times the integer that brings it just below q0 / 2^ratio (so
    /// that level-0 inputs at the default scale reach it by an integer product).
    pub fn level0_scale_on(&self, params: &crate::ckks::scheme::Params) -> f64 {
        if let Some(scale) = self.level0_scale {
            return scale;
        }
        let q0 = params.q()[0] as f64;
        let nominal = q0 / f64::from(self.eval_mod.log_message_ratio).exp2();
        let base = params.default_scale(0);
        base * (nominal / base).floor().max(1.0)
    }

    /// Levels of EvalMod: the cosine polynomial's ceil(log2(d+1)) plus the double angles.
    pub fn eval_mod_depth(&self) -> usize {
        let d = self.eval_mod.degree;
        (usize::BITS - d.leading_zeros()) as usize + self.eval_mod.double_angles as usize
    }
}

/// q0 then runs of (count, bits): user levels, StC, EvalMod, CtS (bottom to top).
const fn bootstrap_chain<const LEN: usize>(q0: u32, runs: [(usize, u32); 4]) -> [u32; LEN] {
    let mut a = [0u32; LEN];
    a[0] = q0;
    let mut i = 1;
    let mut r = 0;
    while r < runs.len() {
        let (count, bits) = runs[r];
        let mut j = 0;
        while j < count {
            a[i] = bits;
            i += 1;
            j += 1;
        }
        r += 1;
    }
    a
}

const Q_BOOT_16: [u32; 26] = bootstrap_chain(60, [(10, 40), (3, 60), (8, 60), (4, 60)]);
const Q_BOOT_15: [u32; 15] = bootstrap_chain(55, [(2, 40), (2, 50), (8, 50), (2, 50)]);
const Q_BOOT_T12: [u32; 15] = bootstrap_chain(60, [(2, 40), (2, 60), (8, 60), (2, 60)]);
const Q_BOOT_T10: [u32; 14] = bootstrap_chain(60, [(1, 40), (2, 60), (8, 60), (2, 60)]);

/// N = 2^16 bootstrapping chain, 128-bit by the HE-standard bound with a uniform ternary
/// secret: q0 60 bits, 10 user levels of 40 bits, StC 3x60, EvalMod 8x60, CtS 4x60,
/// P = 6x61, 6 primes per digit (dnum 5): log2(QP) ~ 1726 <= 1747.
pub const N16_QP1726_BOOT: NamedSet = NamedSet {
    name: "N16_QP1726_BOOT",
    log_n: 16,
    log_q: &Q_BOOT_16,
    log_p: &[61; 6],
    log_scale: 40,
    digit_primes: 6,
    insecure: false,
};

/// N = 2^15 bootstrapping chain, 128-bit: q0 55 bits, 2 user levels of 40 bits, StC 2x50,
/// EvalMod 8x50, CtS 2x50, P = 2x56, 2 primes per digit (dnum 8): log2(QP) ~ 847 <= 881.
pub const N15_QP847_BOOT: NamedSet = NamedSet {
    name: "N15_QP847_BOOT",
    log_n: 15,
    log_q: &Q_BOOT_15,
    log_p: &[56; 2],
    log_scale: 40,
    digit_primes: 2,
    insecure: false,
};

/// Insecure test chain at N = 2^12: q0 60, 2 user levels of 40, StC 2x60, EvalMod 8x60,
/// CtS 2x60, P = 3x61, 2 primes per digit.
pub const TEST_INSECURE_BOOT_N12: NamedSet = NamedSet {
    name: "TEST_INSECURE_BOOT_N12",
    log_n: 12,
    log_q: &Q_BOOT_T12,
    log_p: &[61; 3],
    log_scale: 40,
    digit_primes: 2,
    insecure: true,
};

/// Insecure test chain at N = 2^10: q0 60, 1 user level of 40, StC 2x60, EvalMod 8x60,
/// CtS 2x60, P = 3x61, 2 primes per digit.
pub const TEST_INSECURE_BOOT_N10: NamedSet = NamedSet {
    name: "TEST_INSECURE_BOOT_N10",
    log_n: 10,
    log_q: &Q_BOOT_T10,
    log_p: &[61; 3],
    log_scale: 40,
    digit_primes: 2,
    insecure: true,
};

/// A bootstrapping set: the chain and the circuit shape it was sized for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BootstrapSet {
    /// The parameter chain.
    pub params: NamedSet,
    /// CtS levels the chain provides.
    pub cts_levels: usize,
    /// StC levels the chain provides.
    pub stc_levels: usize,
}

impl BootstrapSet {
    /// The default configuration of this set for `slots` slots.
    pub fn config(&self, slots: usize) -> BootstrapConfig {
        BootstrapConfig {
            cts_levels: self.cts_levels,
            stc_levels: self.stc_levels,
            ..BootstrapConfig::new(slots)
        }
    }
}

/// The default N = 2^16 set (10 user levels after a bootstrap).
pub const BOOT_N16: BootstrapSet = BootstrapSet {
    params: N16_QP1726_BOOT,
    cts_levels: 4,
    stc_levels: 3,
};

/// The N = 2^15 set (2 user levels after a bootstrap).
pub const BOOT_N15: BootstrapSet = BootstrapSet {
    params: N15_QP847_BOOT,
    cts_levels: 2,
    stc_levels: 2,
};

/// Insecure N = 2^12 test set (2 user levels).
pub const BOOT_TEST_N12: BootstrapSet = BootstrapSet {
    params: TEST_INSECURE_BOOT_N12,
    cts_levels: 2,
    stc_levels: 2,
};

/// Insecure N = 2^10 test set (1 user level).
pub const BOOT_TEST_N10: BootstrapSet = BootstrapSet {
    params: TEST_INSECURE_BOOT_N10,
    cts_levels: 2,
    stc_levels: 2,
};

/// Every bootstrapping set.
pub const BOOTSTRAP_SETS: [BootstrapSet; 4] = [BOOT_N16, BOOT_N15, BOOT_TEST_N12, BOOT_TEST_N10];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ckks::scheme::params::{Security, max_log_qp_128};

    #[test]
    fn sets_build_within_their_bounds_with_exact_user_scales() {
        for set in BOOTSTRAP_SETS {
            let params = set.params.params().expect(set.params.name);
            if !set.params.insecure {
                assert_eq!(params.security(), Security::Bits128, "{}", set.params.name);
                let bound = max_log_qp_128(set.params.log_n).expect("tabulated");
                assert!(params.log_qp() <= f64::from(bound), "{}", set.params.name);
            }
            // The user levels sit under the bootstrap's primes: the default scale is
            // anchored at the top user level, 2^40 exactly, and follows the primes below.
            let config = set.config(params.max_slots());
            let output = params.max_level() - config.depth();
            let user_top = set.params.log_q[1..]
                .iter()
                .take_while(|&&b| b == set.params.log_scale)
                .count();
            assert_eq!(output, user_top, "{}", set.params.name);
            assert_eq!(params.default_scale(output), 2f64.powi(40));
        }
        let n16 = BOOT_N16.params.params().expect("n16");
        assert_eq!(
            (
                n16.max_level() - BOOT_N16.config(1 << 15).depth(),
                n16.dnum()
            ),
            (10, 5)
        );
        assert!((n16.log_qp() - 1726.0).abs() < 1.0, "{}", n16.log_qp());
        let n15 = BOOT_N15.params.params().expect("n15");
        assert!((n15.log_qp() - 847.0).abs() < 1.0, "{}", n15.log_qp());
    }
}
