//! The scalar functions the compiler approximates (sigmoid, ReLU^2, SiLU, inverse square root with Newton refinement, exp, inverse) and error-versus-degree tables for them.

use super::chebyshev::{ApproxError, ChebyshevSeries, ErrorReport, uniform_grid};

/// `1 / (1 + e^-x)`, evaluated without overflow for large `|x|`.
pub fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// `max(x, 0)^2` (the BitNet b1.58 FFN activation); `C^1` but not `C^2` at 0.
pub fn relu_squared(x: f64) -> f64 {
    if x > 0.0 { x * x } else { 0.0 }
}

/// `x * sigmoid(x)` (SiLU / swish).
pub fn silu(x: f64) -> f64 {
    x * sigmoid(x)
}

/// `1 / sqrt(x)`.
pub fn inv_sqrt(x: f64) -> f64 {
    1.0 / x.sqrt()
}

/// One Newton step for `1/sqrt(x)`: `y (3 - x y^2) / 2` (two multiplicative levels in CKKS
/// once `x y` is formed; no division).
pub fn inv_sqrt_newton_step(x: f64, y: f64) -> f64 {
    0.5 * y * (3.0 - x * y * y)
}

/// Relative error after `steps` Newton steps for `1/sqrt(x)`, starting from relative error
/// `e0` (`y0 = (1 + e0)/sqrt(x)`): the exact map `e -> -e^2 (3 + e) / 2`. Converges to 0
/// for `e0` in [`INV_SQRT_NEWTON_BASIN`] (quadratically: `|e'| ~ 1.5 e^2`).
pub fn inv_sqrt_newton_error(e0: f64, steps: usize) -> f64 {
    (0..steps).fold(e0, |e, _| -e * e * (3.0 + e) / 2.0)
}

/// Open interval of initial relative errors from which the `1/sqrt` Newton iteration
/// converges: `(-1, sqrt 3 - 1)`; at `-1` (`y0 = 0`) it is stuck, at `sqrt 3 - 1` the next
/// error is `-1`.
pub const INV_SQRT_NEWTON_BASIN: (f64, f64) = (-1.0, 0.732_050_807_568_877_2);

/// The fewest Newton steps that take a worst-case initial relative error `e0` (both signs
/// considered, i.e. `|e_0| <= e0`) to `<= target`, or `None` if it does not converge
/// within 64 steps.
pub fn inv_sqrt_newton_steps_needed(e0: f64, target: f64) -> Option<usize> {
    (0..=64).find(|&k| {
        inv_sqrt_newton_error(e0.abs(), k).abs() <= target
            && inv_sqrt_newton_error(-e0.abs(), k).abs() <= target
    })
}

/// Measured relative error of "polynomial initial guess, then `steps` Newton steps" for
/// `1/sqrt(x)` on `grid_points` uniform points of the guess's interval (in f64).
pub fn inv_sqrt_with_newton_error(
    initial: &ChebyshevSeries,
    steps: usize,
    grid_points: usize,
) -> ErrorReport {
    ErrorReport::from_samples(uniform_grid(initial.a(), initial.b(), grid_points).map(|x| {
        let y = (0..steps).fold(initial.evaluate(x), |y, _| inv_sqrt_newton_step(x, y));
        // relative error of y against 1/sqrt(x): |y sqrt(x) - 1|
        (x, 1.0, y * x.sqrt())
    }))
}

/// Relative error after `steps` Newton steps for `1/x`, `y <- y (2 - x y)`, from initial
/// relative error `e0`: `e -> -e^2`. Converges for `|e0| < 1`.
pub fn inverse_newton_error(e0: f64, steps: usize) -> f64 {
    (0..steps).fold(e0, |e, _| -e * e)
}

/// One row of an error-versus-degree table.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DegreeError {
    /// Degree of the Chebyshev interpolant.
    pub degree: usize,
    /// Its measured error.
    pub error: ErrorReport,
}

/// Error of the Chebyshev interpolant of `f` on `[a, b]` for each degree, measured on
/// `grid_points` uniform points.
pub fn error_table(
    f: impl Fn(f64) -> f64,
    a: f64,
    b: f64,
    degrees: &[usize],
    grid_points: usize,
) -> Result<Vec<DegreeError>, ApproxError> {
    degrees
        .iter()
        .map(|&degree| {
            let series = ChebyshevSeries::interpolate(&f, a, b, degree)?;
            Ok(DegreeError { degree, error: series.max_error(&f, grid_points) })
        })
        .collect()
}
