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
    ErrorReport::from_samples(
        uniform_grid(initial.a(), initial.b(), grid_points).map(|x| {
            let y = (0..steps).fold(initial.evaluate(x), |y, _| inv_sqrt_newton_step(x, y));
            // relative error of y against 1/sqrt(x): |y sqrt(x) - 1|
            (x, 1.0, y * x.sqrt())
        }),
    )
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
            Ok(DegreeError {
                degree,
                error: series.max_error(&f, grid_points),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ckks::numerics::chebyshev::DEFAULT_GRID_POINTS;
    use crate::ckks::numerics::remez::{RemezOptions, minimax, minimax_relative};

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    const DEGREES: [usize; 6] = [7, 15, 31, 63, 127, 255];

    /// Prints "name [a, b]: degree -> max abs error (interpolant) / minimax" rows and
    /// returns the interpolant errors by degree.
    fn table(name: &str, f: impl Fn(f64) -> f64, a: f64, b: f64) -> Result<Vec<f64>, ApproxError> {
        let rows = error_table(&f, a, b, &DEGREES, DEFAULT_GRID_POINTS)?;
        let mut line = format!("{name} on [{a}, {b}]:");
        for row in &rows {
            line += &format!("  {}: {:.2e}", row.degree, row.error.max_abs);
            if row.degree <= 31 {
                let best = minimax(&f, a, b, row.degree, RemezOptions::default())?;
                line += &format!(" (minimax {:.2e})", best.max_error);
            }
        }
        println!("{line}");
        Ok(rows.iter().map(|r| r.error.max_abs).collect())
    }

    /// Thresholds are the measured errors rounded up (about 1.5x).
    #[test]
    fn sigmoid_error_by_degree() -> TestResult {
        let e8 = table("sigmoid", sigmoid, -8.0, 8.0)?;
        let e16 = table("sigmoid", sigmoid, -16.0, 16.0)?;
        let e32 = table("sigmoid", sigmoid, -32.0, 32.0)?;
        assert!(e8[2] < 4.5e-6 && e8[3] < 2.2e-11 && e8[4] < 1e-15, "{e8:?}");
        assert!(e16[3] < 3.6e-6 && e16[4] < 1.4e-11, "{e16:?}");
        assert!(e32[4] < 3.4e-6 && e32[5] < 1e-11, "{e32:?}");
        Ok(())
    }

    /// ReLU^2 has a jump in its second derivative at 0: the error falls only as `d^-2`
    /// (quartering per doubling of the degree) and scales as `B^2`.
    #[test]
    fn relu_squared_error_by_degree() -> TestResult {
        let e1 = table("relu^2", relu_squared, -1.0, 1.0)?;
        let e8 = table("relu^2", relu_squared, -8.0, 8.0)?;
        assert!(e1[2] < 3.3e-4 && e1[4] < 2.1e-5, "{e1:?}");
        for pair in e1.windows(2) {
            let ratio = pair[0] / pair[1];
            assert!((3.5..4.8).contains(&ratio), "rate {ratio}");
        }
        for (small, large) in e1.iter().zip(&e8) {
            assert!((large / small / 64.0 - 1.0).abs() < 1e-6);
        }
        Ok(())
    }

    #[test]
    fn silu_error_by_degree() -> TestResult {
        let e8 = table("silu", silu, -8.0, 8.0)?;
        let e16 = table("silu", silu, -16.0, 16.0)?;
        assert!(e8[2] < 2.9e-5 && e8[3] < 1.4e-10, "{e8:?}");
        assert!(e16[3] < 2.3e-5 && e16[4] < 8.6e-11, "{e16:?}");
        Ok(())
    }

    /// The softmax baseline: exp on [-B, 0] and 1/x on [1, R].
    #[test]
    fn exp_and_inverse_error_by_degree() -> TestResult {
        let exp8 = table("exp", f64::exp, -8.0, 0.0)?;
        let exp16 = table("exp", f64::exp, -16.0, 0.0)?;
        let inv16 = table("1/x", |x| 1.0 / x, 1.0, 16.0)?;
        let inv128 = table("1/x", |x| 1.0 / x, 1.0, 128.0)?;
        assert!(exp8[0] < 8.3e-4 && exp8[1] < 2.8e-10, "{exp8:?}");
        assert!(exp16[1] < 8.2e-7 && exp16[2] < 1e-15, "{exp16:?}");
        assert!(inv16[2] < 2.4e-7 && inv16[3] < 2e-14, "{inv16:?}");
        assert!(inv128[3] < 3.6e-5 && inv128[4] < 4.3e-10, "{inv128:?}");
        Ok(())
    }

    /// 1/sqrt on [eps, 1]: the relative error of a relative-minimax initial guess, and after
    /// Newton steps. Every grid point obeys the exact error map `e -> -e^2 (3 + e) / 2`.
    #[test]
    fn inverse_square_root_with_newton_steps() -> TestResult {
        for (eps, degree, max_rel_guess, max_rel_after_2) in [
            (0.1, 3, 4.5e-2, 1.4e-5),
            (0.1, 7, 2.4e-3, 1.1e-10),
            (0.01, 7, 1.22e-1, 7.7e-4),
            (0.01, 15, 1.83e-2, 3.8e-7),
        ] {
            let guess = minimax_relative(inv_sqrt, eps, 1.0, degree, RemezOptions::default())?;
            assert!(guess.converged);
            let initial = inv_sqrt_with_newton_error(&guess.series, 0, DEFAULT_GRID_POINTS);
            let mut line = format!(
                "1/sqrt on [{eps}, 1], degree {degree}: guess rel {:.2e}",
                initial.max_abs
            );
            for steps in 1..=3 {
                let after = inv_sqrt_with_newton_error(&guess.series, steps, DEFAULT_GRID_POINTS);
                line += &format!("  {steps} Newton: {:.2e}", after.max_abs);
                if steps == 2 {
                    assert!(after.max_abs < max_rel_after_2, "{line}");
                }
            }
            println!("{line}");
            assert!(initial.max_abs < max_rel_guess, "{line}");

            for x in uniform_grid(eps, 1.0, 257) {
                let y0 = guess.series.evaluate(x);
                let e0 = y0 * x.sqrt() - 1.0;
                let y2 = inv_sqrt_newton_step(x, inv_sqrt_newton_step(x, y0));
                let predicted = inv_sqrt_newton_error(e0, 2);
                assert!((y2 * x.sqrt() - 1.0 - predicted).abs() < 1e-14, "x = {x}");
            }
        }
        Ok(())
    }

    #[test]
    fn newton_error_maps_and_basins() {
        assert_eq!(inv_sqrt_newton_error(0.1, 0), 0.1);
        assert!((inv_sqrt_newton_error(0.1, 1) - (-0.0155)).abs() < 1e-15);
        // Near the basin's edges the iteration first crawls away from e = -1.
        assert!(inv_sqrt_newton_error(INV_SQRT_NEWTON_BASIN.1 - 1e-3, 100).abs() < 1e-15);
        let outside = inv_sqrt_newton_error(INV_SQRT_NEWTON_BASIN.1 + 1e-3, 100);
        assert!(outside.is_nan() || outside.abs() >= 1.0);
        assert!(inv_sqrt_newton_error(-0.9, 100).abs() < 1e-15);
        assert_eq!(inv_sqrt_newton_steps_needed(0.1, 1e-9), Some(4));
        assert_eq!(inv_sqrt_newton_steps_needed(0.5, 1e-9), Some(7));
        assert_eq!(inv_sqrt_newton_steps_needed(0.8, 1e-9), None);
        assert_eq!(inverse_newton_error(0.5, 3), -(0.5f64.powi(8)));
        assert_eq!(relu_squared(-2.0), 0.0);
        assert_eq!(relu_squared(3.0), 9.0);
        assert!((sigmoid(-800.0)).abs() < 1e-300 && sigmoid(800.0) == 1.0);
        assert!((silu(1.0) - 0.731_058_578_630_004_9).abs() < 1e-15);
    }
}
