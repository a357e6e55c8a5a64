//! One site's approximation: the shallowest polynomial form (and, within that depth, the lowest degree) whose measured error on the calibrated interval meets a tolerance.
//!
//! Error measures (dimensionless, so one tolerance serves every site):
//! - sigmoid and `e^(x − c)` (values in `[0, 1]`): absolute error;
//! - ReLU² and SiLU: absolute error divided by `max |f|` on the interval;
//! - `1/√x` and `1/x`: relative error `|y·√x − 1|`, `|y·x − 1|`.
//!
//! Errors are measured on 4097 uniform points of the interval, plus 4097 geometric points for
//! the positive arguments of `1/√x` and `1/x` (where the error concentrates at the low end).

use std::collections::BTreeMap;

use ensi_runtime::ckks::numerics::chebyshev::{ChebyshevSeries, DEFAULT_GRID_POINTS, uniform_grid};
use ensi_runtime::ckks::numerics::functions::{inv_sqrt_newton_step, relu_squared};
use ensi_runtime::ckks::numerics::remez::{
    RemezOptions, minimax, minimax_relative, minimax_weighted,
};
use serde::Serialize;

use crate::calibrate::Interval;
use crate::forward::Function;

/// How an approximation computes its function from a Chebyshev series `p` on the interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case", tag = "form")]
pub enum Form {
    /// `p(x)` (Chebyshev interpolant; Remez minimax for ReLU²).
    Polynomial,
    /// `x² · (1 + p(x)) / 2` with `p ≈ sign(x)` (ReLU² only; `p` is the `x²`-weighted
    /// minimax approximation of the sign, so the error near 0 is damped by `x²`).
    SignDamped,
    /// `y₀ = p(x)` (relative minimax), then `steps` Newton steps `y ← y (3 − x y²) / 2`.
    InvSqrtNewton {
        /// Newton steps.
        steps: usize,
    },
    /// `y₀ = p(x)` (relative minimax), then `steps` Newton steps `y ← y (2 − x y)`.
    InverseNewton {
        /// Newton steps.
        steps: usize,
    },
}

impl Form {
    /// Multiplicative depth of the form around a polynomial of depth `poly_depth`.
    pub fn depth(self, poly_depth: u32) -> u32 {
        match self {
            Self::Polynomial => poly_depth,
            // x² (depth 1) in parallel with p, then one product.
            Self::SignDamped => poly_depth.max(1) + 1,
            // x·y (or y²) then the product with y: two levels a step.
            Self::InvSqrtNewton { steps } | Self::InverseNewton { steps } => {
                poly_depth + 2 * steps as u32
            }
        }
    }

    /// Newton steps of the form.
    pub fn steps(self) -> usize {
        match self {
            Self::InvSqrtNewton { steps } | Self::InverseNewton { steps } => steps,
            _ => 0,
        }
    }

    /// The form's value at `x` given the series.
    pub fn evaluate(self, series: &ChebyshevSeries, x: f64) -> f64 {
        let p = series.evaluate(x);
        match self {
            Self::Polynomial => p,
            Self::SignDamped => 0.5 * x * x * (1.0 + p),
            Self::InvSqrtNewton { steps } => (0..steps).fold(p, |y, _| inv_sqrt_newton_step(x, y)),
            Self::InverseNewton { steps } => (0..steps).fold(p, |y, _| y * (2.0 - x * y)),
        }
    }
}

impl std::fmt::Display for Form {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Polynomial => f.write_str("polynomial"),
            Self::SignDamped => f.write_str("x²(1+sign)/2"),
            Self::InvSqrtNewton { steps } | Self::InverseNewton { steps } => {
                write!(f, "polynomial + {steps} Newton")
            }
        }
    }
}

/// Multiplicative depth of a degree-`degree` Chebyshev evaluation (baby-step giant-step):
/// `⌈log2(degree + 1)⌉`.
pub fn poly_depth(degree: usize) -> u32 {
    (degree + 1).next_power_of_two().trailing_zeros()
}

/// What one site's approximation computes: the exact function (with the softmax shift),
/// on its interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Target {
    pub function: Function,
    pub interval: Interval,
    /// `c` of `e^(x − c)` (ignored by every other function).
    pub shift: f64,
}

impl Target {
    /// The exact value at `x`.
    pub fn exact(&self, x: f64) -> f64 {
        match self.function {
            Function::Exp => (x - self.shift).exp(),
            function => function.exact(x),
        }
    }

    /// The value an error is divided by at `x` (see the module docs).
    fn scale(&self, x: f64) -> f64 {
        match self.function {
            Function::Sigmoid | Function::Exp => 1.0,
            Function::Relu2 | Function::Silu => self.magnitude(),
            Function::InvSqrt | Function::Inverse => self.exact(x).abs(),
        }
    }

    /// `max |f|` over the interval (at the ends or, for SiLU, near its minimum).
    fn magnitude(&self) -> f64 {
        let ends = self
            .exact(self.interval.lo)
            .abs()
            .max(self.exact(self.interval.hi).abs());
        // SiLU's minimum, −0.2785 at x = −1.2785, may lie inside.
        let dip = if self.interval.contains(-1.278_464_542_761_074) {
            0.278_464_542_761_074
        } else {
            0.0
        };
        ends.max(dip).max(f64::MIN_POSITIVE)
    }

    /// The error of `approx` at `x` in the site's measure.
    pub fn error(&self, x: f64, approx: f64) -> f64 {
        let exact = self.exact(x);
        let error = (approx - exact).abs() / self.scale(x);
        // A NaN (a diverged Newton iteration) is the worst error.
        if error.is_nan() { f64::INFINITY } else { error }
    }

    /// The points errors are measured on.
    fn grid(&self) -> Vec<f64> {
        let Interval { lo, hi } = self.interval;
        let mut points: Vec<f64> = uniform_grid(lo, hi, DEFAULT_GRID_POINTS).collect();
        if matches!(self.function, Function::InvSqrt | Function::Inverse) && lo > 0.0 {
            let ratio = (hi / lo).ln();
            let last = (DEFAULT_GRID_POINTS - 1) as f64;
            points.extend((0..DEFAULT_GRID_POINTS).map(|i| lo * (ratio * i as f64 / last).exp()));
        }
        points
    }
}

/// A candidate: a form, a series and its measured error.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Candidate {
    pub form: Form,
    pub series: ChebyshevSeries,
    pub degree: usize,
    pub depth: u32,
    pub error: f64,
}

/// Why a tolerance cannot be met: the best candidate within the limits (`None` if no fit
/// succeeded at all).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Unreachable {
    pub best: Option<Candidate>,
}

/// Limits of the search.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Limits {
    /// Deepest polynomial (degree ≤ 2^depth − 1).
    pub max_poly_depth: u32,
    /// Most Newton steps.
    pub max_newton_steps: usize,
}

/// The chosen approximation of one site and the alternative form measured at its depth.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Choice {
    pub chosen: Candidate,
    pub alternative: Option<Candidate>,
}

/// How a series is fitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Fit {
    /// Chebyshev interpolation.
    Interpolant,
    /// Remez minimax (ReLU²).
    Minimax,
    /// Remez minimax of the relative error (initial guesses of `1/√x`, `1/x`).
    RelativeMinimax,
    /// Remez minimax of `sign` weighted by `x²/2` (the sign-damped ReLU²).
    SignWeighted,
}

impl Fit {
    fn of(form: Form, function: Function) -> Self {
        match (form, function) {
            (Form::SignDamped, _) => Self::SignWeighted,
            (Form::InvSqrtNewton { .. } | Form::InverseNewton { .. }, _) => Self::RelativeMinimax,
            (Form::Polynomial, Function::Relu2) => Self::Minimax,
            (Form::Polynomial, _) => Self::Interpolant,
        }
    }
}

/// Fits and caches series and candidates (the end-to-end loop asks for the same ones round
/// after round, and Newton forms with different step counts share their initial guess).
#[derive(Debug, Default)]
pub(super) struct Fitter {
    series: BTreeMap<(TargetKey, Fit, usize), Option<ChebyshevSeries>>,
    candidates: BTreeMap<(TargetKey, Form, usize), Option<Candidate>>,
}

/// A target's identity in the caches: interval and shift bits, function.
type TargetKey = (u64, u64, u64, Function);

/// Cache key of a target.
fn key(target: &Target) -> TargetKey {
    (
        target.interval.lo.to_bits(),
        target.interval.hi.to_bits(),
        target.shift.to_bits(),
        target.function,
    )
}

impl Fitter {
    /// The candidate of `form` and `degree` for `target`, `None` if the fit fails.
    fn candidate(&mut self, target: &Target, form: Form, degree: usize) -> Option<Candidate> {
        let target_key = key(target);
        let candidate_key = (target_key, form, degree);
        if let Some(found) = self.candidates.get(&candidate_key) {
            return found.clone();
        }
        let fit = Fit::of(form, target.function);
        let series = self
            .series
            .entry((target_key, fit, degree))
            .or_insert_with(|| Self::fit(target, fit, degree))
            .clone();
        let candidate = series.map(|series| {
            let error = target
                .grid()
                .into_iter()
                .map(|x| target.error(x, form.evaluate(&series, x)))
                .fold(0.0, f64::max);
            Candidate {
                form,
                depth: form.depth(poly_depth(degree)),
                series,
                degree,
                error,
            }
        });
        self.candidates.insert(candidate_key, candidate.clone());
        candidate
    }

    fn fit(target: &Target, fit: Fit, degree: usize) -> Option<ChebyshevSeries> {
        let Interval { lo, hi } = target.interval;
        // A coarser search grid than the default (64 points per degree) gives the same
        // polynomials on these functions, measured up to degree 255, in two thirds of the time.
        let options = RemezOptions {
            grid_density: 16,
            ..RemezOptions::default()
        };
        let exact = |x| target.exact(x);
        let series = match fit {
            Fit::Interpolant => ChebyshevSeries::interpolate(exact, lo, hi, degree).ok()?,
            Fit::Minimax => minimax(relu_squared, lo, hi, degree, options).ok()?.series,
            Fit::RelativeMinimax => {
                minimax_relative(exact, lo, hi, degree, options)
                    .ok()?
                    .series
            }
            Fit::SignWeighted => {
                // Minimize max x²/2 · |sign(x) − p(x)|; a tiny floor keeps the weight positive.
                let floor = 1e-12 * lo.abs().max(hi.abs()).powi(2);
                minimax_weighted(
                    f64::signum,
                    |x| 0.5 * x * x + floor,
                    lo,
                    hi,
                    degree,
                    options,
                )
                .ok()?
                .series
            }
        };
        Some(series)
    }

    /// The forms worth trying for a function, each with the polynomial depth it leaves.
    fn forms(function: Function, limits: Limits) -> Vec<Form> {
        match function {
            Function::Relu2 => vec![Form::Polynomial, Form::SignDamped],
            Function::InvSqrt => (0..=limits.max_newton_steps)
                .map(|steps| Form::InvSqrtNewton { steps })
                .collect(),
            Function::Inverse => (0..=limits.max_newton_steps)
                .map(|steps| Form::InverseNewton { steps })
                .collect(),
            _ => vec![Form::Polynomial],
        }
    }

    /// The shallowest candidate meeting `tolerance` (ties in depth: the smallest error), with
    /// its degree lowered as far as the tolerance allows within that depth; for ReLU² also the
    /// other form's best candidate at the same depth.
    pub fn choose(
        &mut self,
        target: &Target,
        tolerance: f64,
        limits: Limits,
    ) -> Result<Choice, Unreachable> {
        let forms = Self::forms(target.function, limits);
        let max_depth = forms
            .iter()
            .map(|form| form.depth(limits.max_poly_depth))
            .max()
            .unwrap_or(0);
        let mut best: Option<Candidate> = None;
        for depth in 1..=max_depth {
            // For each form, the largest degree that fits in `depth`.
            let mut at_depth: Vec<Candidate> = Vec::new();
            for &form in &forms {
                // The polynomial depth that makes the form exactly `depth` deep, if any.
                let Some(poly) = (1..=limits.max_poly_depth).find(|&p| form.depth(p) == depth)
                else {
                    continue;
                };
                let degree = (1usize << poly) - 1;
                if let Some(candidate) = self.candidate(target, form, degree) {
                    at_depth.push(candidate);
                }
            }
            for candidate in &at_depth {
                if best.as_ref().is_none_or(|b| candidate.error < b.error) {
                    best = Some(candidate.clone());
                }
            }
            let winner = at_depth
                .iter()
                .filter(|c| c.error <= tolerance)
                .min_by(|a, b| a.error.total_cmp(&b.error));
            if let Some(winner) = winner {
                let chosen = self.lowest_degree(target, winner, tolerance);
                let alternative = at_depth
                    .iter()
                    .filter(|c| c.form != chosen.form && target.function == Function::Relu2)
                    .min_by(|a, b| a.error.total_cmp(&b.error))
                    .cloned();
                return Ok(Choice {
                    chosen,
                    alternative,
                });
            }
        }
        Err(Unreachable { best })
    }

    /// The lowest degree of `winner`'s form at `winner`'s depth that still meets `tolerance`
    /// (binary search over the degrees of that depth, assuming the error falls with the
    /// degree; `winner` itself if no lower degree is confirmed to meet it).
    fn lowest_degree(&mut self, target: &Target, winner: &Candidate, tolerance: f64) -> Candidate {
        let depth = poly_depth(winner.degree);
        let lowest = if depth == 0 { 0 } else { 1usize << (depth - 1) };
        let (mut low, mut high) = (lowest, winner.degree);
        let mut best = winner.clone();
        while low < high {
            let middle = low + (high - low) / 2;
            match self.candidate(target, winner.form, middle) {
                Some(candidate) if candidate.error <= tolerance => {
                    best = candidate;
                    high = middle;
                }
                _ => low = middle + 1,
            }
        }
        best
    }
}
