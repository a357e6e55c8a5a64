//! What a run measured besides its outputs: approximation inputs outside their intervals, bootstrap inputs, work done.

use std::fmt;

use super::slots::valid_ranges;
use crate::plan::{ApproxId, Layout, PolyApprox, ValueId};

/// Inputs one polynomial approximation met over a run (valid slots only: padding is not data).
#[derive(Debug, Clone, PartialEq)]
pub struct ApproxDiagnostic {
    /// The approximation.
    pub approx: ApproxId,
    /// What it approximates.
    pub function: String,
    /// Lower end of its interval.
    pub lo: f64,
    /// Upper end of its interval.
    pub hi: f64,
    /// Valid slots evaluated.
    pub inputs: u64,
    /// Valid slots outside `[lo, hi]` (a NaN input counts, at an infinite excursion).
    pub out_of_interval: u64,
    /// Largest distance of an input beyond the interval (0 when none is outside).
    pub worst_excursion: f64,
    /// Instruction of the worst excursion.
    pub worst_instr: Option<usize>,
    /// Smallest and largest valid input seen (`None` before any).
    pub observed: Option<(f64, f64)>,
}

impl ApproxDiagnostic {
    /// An empty record for `approx`.
    pub fn new(approx: ApproxId, poly: &PolyApprox) -> Self {
        Self {
            approx,
            function: poly.function.clone(),
            lo: poly.lo,
            hi: poly.hi,
            inputs: 0,
            out_of_interval: 0,
            worst_excursion: 0.0,
            worst_instr: None,
            observed: None,
        }
    }

    /// Records the valid slots of `value` (laid out in `layout`) entering it at `instr`.
    pub fn record(&mut self, instr: usize, layout: &Layout, value: &[Vec<f64>]) {
        for (ciphertext, slots) in (0..).zip(value) {
            for (range, _) in valid_ranges(layout, ciphertext) {
                for &x in &slots[range] {
                    self.inputs += 1;
                    let excursion = if x.is_nan() {
                        f64::INFINITY
                    } else {
                        (self.lo - x).max(x - self.hi)
                    };
                    if excursion > 0.0 {
                        self.out_of_interval += 1;
                        if excursion > self.worst_excursion {
                            self.worst_excursion = excursion;
                            self.worst_instr = Some(instr);
                        }
                    }
                    if !x.is_nan() {
                        let (min, max) = self.observed.unwrap_or((x, x));
                        self.observed = Some((min.min(x), max.max(x)));
                    }
                }
            }
        }
    }
}

/// What entered one bootstrap.
#[derive(Debug, Clone, PartialEq)]
pub struct BootstrapDiagnostic {
    /// The bootstrap instruction.
    pub instr: usize,
    /// The value refreshed.
    pub value: ValueId,
    /// Ciphertexts refreshed.
    pub ciphertexts: u32,
    /// `max |x|` over valid slots (the data).
    pub max_abs_valid: f64,
    /// `max |x|` over every slot: what the bootstrap's modular reduction actually sees
    /// (larger than the data when the padding is not zero).
    pub max_abs_all: f64,
}

impl BootstrapDiagnostic {
    /// Measures `value` (laid out in `layout`) entering the bootstrap at `instr`.
    pub fn measure(instr: usize, operand: ValueId, layout: &Layout, value: &[Vec<f64>]) -> Self {
        let mut max_abs_valid = 0.0f64;
        let mut max_abs_all = 0.0f64;
        for (ciphertext, slots) in (0..).zip(value) {
            max_abs_all = slots.iter().fold(max_abs_all, |m, x| m.max(x.abs()));
            for (range, _) in valid_ranges(layout, ciphertext) {
                max_abs_valid = slots[range]
                    .iter()
                    .fold(max_abs_valid, |m, x| m.max(x.abs()));
            }
        }
        Self {
            instr,
            value: operand,
            ciphertexts: value.len() as u32,
            max_abs_valid,
            max_abs_all,
        }
    }
}

/// Everything a run measured about its approximations and bootstraps.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Diagnostics {
    /// One record per approximation of the plan, in the plan's order.
    pub approximations: Vec<ApproxDiagnostic>,
    /// One record per bootstrap instruction, in execution order.
    pub bootstraps: Vec<BootstrapDiagnostic>,
}

impl Diagnostics {
    /// Whether some approximation met an input outside its interval.
    pub fn any_out_of_interval(&self) -> bool {
        self.approximations.iter().any(|a| a.out_of_interval > 0)
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for a in &self.approximations {
            write!(
                f,
                "approx#{} {} on [{:.6}, {:.6}]: ",
                a.approx.0, a.function, a.lo, a.hi
            )?;
            match a.observed {
                Some((min, max)) => write!(f, "{} inputs in [{min:.6}, {max:.6}]", a.inputs)?,
                None => write!(f, "never evaluated")?,
            }
            if a.out_of_interval > 0 {
                write!(
                    f,
                    ", {} outside, worst {:.3e} beyond (instruction {})",
                    a.out_of_interval,
                    a.worst_excursion,
                    a.worst_instr.unwrap_or(0)
                )?;
            }
            writeln!(f)?;
        }
        for b in &self.bootstraps {
            writeln!(
                f,
                "bootstrap at instruction {} ({}, {} ct): max|x| {:.6} on data, {:.6} on all slots",
                b.instr, b.value, b.ciphertexts, b.max_abs_valid, b.max_abs_all
            )?;
        }
        Ok(())
    }
}

/// Homomorphic work a plan's execution implies, counted by the plaintext executor from the
/// same schedules the encrypted executor follows (polynomials are not expanded: their cost
/// depends on the evaluation algorithm).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Work {
    /// Key-switched rotations: rotate, rot_sum rounds, BSGS baby and giant steps, repack
    /// moves and folds (rotations by 0 excluded).
    pub rotations: u64,
    /// Ciphertext × plaintext products: mul_plain, nonzero diagonals, repack masks.
    pub plain_mults: u64,
    /// Ciphertext × ciphertext products with relinearization: mul, square.
    pub ct_mults: u64,
    /// Nonzero diagonals of block-diagonal linear layers (included in `plain_mults`).
    pub nonzero_diagonals: u64,
    /// Ciphertext additions and subtractions of column-method linear layers.
    pub linear_additions: u64,
    /// Ciphertexts bootstrapped.
    pub bootstrapped: u64,
}
