//! Chebyshev series on an interval [a, b] (f64): interpolation at Chebyshev nodes, Clenshaw evaluation, measured and estimated errors, degree selection, and the division by T_m a baby-step giant-step evaluator needs.

use num_complex::Complex64;

/// Default number of uniformly spaced points on which errors are measured.
pub const DEFAULT_GRID_POINTS: usize = 4097;

/// Points [`ChebyshevSeries::evaluate_unit_many`] runs through the recurrence together.
const LANES: usize = 16;

/// Largest degree the O(d^2) interpolation accepts (far beyond what a CKKS circuit evaluates).
pub const MAX_DEGREE: usize = 1 << 14;

/// A malformed approximation request.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ApproxError {
    /// `a < b` must both be finite.
    #[error("invalid interval [{a}, {b}]")]
    InvalidInterval {
        /// Left end.
        a: f64,
        /// Right end.
        b: f64,
    },
    /// A series needs at least one coefficient.
    #[error("a Chebyshev series needs at least one coefficient")]
    EmptySeries,
    /// The requested degree exceeds [`MAX_DEGREE`] or another stated limit.
    #[error("degree {degree} exceeds the limit {max}")]
    DegreeTooHigh {
        /// Requested degree.
        degree: usize,
        /// The limit.
        max: usize,
    },
    /// No degree up to the limit reaches the target error.
    #[error(
        "no degree <= {max_degree} reaches max error {target:e} (best {best_error:e} at degree {best_degree})"
    )]
    TargetNotReached {
        /// Target max error.
        target: f64,
        /// Largest degree tried.
        max_degree: usize,
        /// Smallest error seen.
        best_error: f64,
        /// Degree of the smallest error.
        best_degree: usize,
    },
    /// The function returned a non-finite value at a node.
    #[error("the function is not finite at x = {x}")]
    NonFinite {
        /// Where.
        x: f64,
    },
    /// A linear system of an approximation method was singular.
    #[error("singular system in {method}")]
    Singular {
        /// Which method.
        method: &'static str,
    },
    /// A parameter out of its documented range.
    #[error("invalid parameter: {what}")]
    InvalidParameter {
        /// Which parameter and why.
        what: String,
    },
}

/// Measured error of an approximation against its target function.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ErrorReport {
    /// `max |p(x) - f(x)|` over the points.
    pub max_abs: f64,
    /// Where the max is attained.
    pub argmax: f64,
    /// Root mean square error.
    pub rms: f64,
    /// `max |p(x) - f(x)| / |f(x)|` over points with `f(x) != 0`.
    pub max_rel: f64,
}

impl ErrorReport {
    /// `-log2` of the max absolute error: bits of absolute precision.
    pub fn bits(&self) -> f64 {
        -self.max_abs.log2()
    }

    /// Measures `approx` against `f` on `points`.
    pub fn measure(
        points: impl IntoIterator<Item = f64>,
        f: impl Fn(f64) -> f64,
        approx: impl Fn(f64) -> f64,
    ) -> Self {
        Self::from_samples(points.into_iter().map(|x| (x, f(x), approx(x))))
    }

    /// Builds the report from `(x, expected, obtained)` triples. A NaN error is the worst.
    pub fn from_samples(samples: impl IntoIterator<Item = (f64, f64, f64)>) -> Self {
        let mut worst: Option<(f64, f64)> = None;
        let (mut sum_sq, mut max_rel, mut count) = (0.0, 0.0f64, 0usize);
        for (x, want, got) in samples {
            let err = (got - want).abs();
            let is_worse = match worst {
                None => true,
                Some((w, _)) => !w.is_nan() && (err.is_nan() || err > w),
            };
            if is_worse {
                worst = Some((err, x));
            }
            if want != 0.0 {
                max_rel = max_rel.max(err / want.abs());
            }
            sum_sq += err * err;
            count += 1;
        }
        let (max_abs, argmax) = worst.unwrap_or((0.0, f64::NAN));
        Self {
            max_abs,
            argmax,
            rms: (sum_sq / count.max(1) as f64).sqrt(),
            max_rel,
        }
    }
}

/// `count` uniformly spaced points on `[a, b]`, ends included.
pub fn uniform_grid(a: f64, b: f64, count: usize) -> impl Iterator<Item = f64> {
    let steps = count.max(2) - 1;
    (0..=steps).map(move |i| {
        if i == steps {
            b
        } else {
            a + (b - a) * (i as f64 / steps as f64)
        }
    })
}

fn check_interval(a: f64, b: f64) -> Result<(), ApproxError> {
    if a.is_finite() && b.is_finite() && a < b {
        Ok(())
    } else {
        Err(ApproxError::InvalidInterval { a, b })
    }
}

/// `cos(pi * m / (2 d))` for `m` in `0..4d`, reduced on integers so that symmetric entries
/// are exactly symmetric (the DCT kernel of interpolation at `d` first-kind nodes).
fn dct_cosines(d: usize) -> Vec<f64> {
    let period = 4 * d;
    (0..period)
        .map(|m| {
            // fold to [0, d] (angle in [0, pi/2]) with the sign of the quadrant
            let (m, sign) = match m {
                m if m <= d => (m, 1.0),
                m if m <= 2 * d => (2 * d - m, -1.0),
                m if m <= 3 * d => (m - 2 * d, -1.0),
                m => (4 * d - m, 1.0),
            };
            // cos(x) for x <= pi/4, sin(pi/2 - x) beyond: both arguments stay small.
            let value = if 2 * m <= d {
                (std::f64::consts::PI * m as f64 / (2 * d) as f64).cos()
            } else {
                (std::f64::consts::PI * (d - m) as f64 / (2 * d) as f64).sin()
            };
            sign * value
        })
        .collect()
}

/// The `degree + 1` Chebyshev nodes of the first kind on `[a, b]`, in decreasing order:
/// `x_j = (a+b)/2 + (b-a)/2 cos(pi (j + 1/2) / (degree + 1))`.
pub fn chebyshev_nodes(a: f64, b: f64, degree: usize) -> Vec<f64> {
    let d = degree + 1;
    let cosines = dct_cosines(d);
    let (mid, half) = (0.5 * (a + b), 0.5 * (b - a));
    (0..d).map(|j| mid + half * cosines[2 * j + 1]).collect()
}

/// A real Chebyshev series on `[a, b]`.
///
/// `p(x) = sum_k c_k T_k(t)` with `t = (2x - a - b) / (b - a)`; `c_0` carries full weight.
#[derive(Debug, Clone, PartialEq)]
pub struct ChebyshevSeries {
    a: f64,
    b: f64,
    coeffs: Vec<f64>,
}

impl ChebyshevSeries {
    /// A series from its coefficients (`coeffs[k]` multiplies `T_k`).
    pub fn new(a: f64, b: f64, coeffs: Vec<f64>) -> Result<Self, ApproxError> {
        check_interval(a, b)?;
        if coeffs.is_empty() {
            return Err(ApproxError::EmptySeries);
        }
        Ok(Self { a, b, coeffs })
    }

    /// Interpolates `f` at the `degree + 1` first-kind Chebyshev nodes of `[a, b]`:
    /// `c_k = 2/(d+1) sum_j f(x_j) cos(pi k (j + 1/2) / (d+1))`, `c_0` halved. This is the
    /// DCT-II of the samples, computed directly (O(d^2)) with an exactly reduced cosine table,
    /// so no recurrence accumulates error; the result is within `2 sum_{k>d} |a_k|` of `f`
    /// (`a_k` the Chebyshev coefficients of `f`; Trefethen, ATAP Thm 4.2).
    pub fn interpolate(
        f: impl Fn(f64) -> f64,
        a: f64,
        b: f64,
        degree: usize,
    ) -> Result<Self, ApproxError> {
        check_interval(a, b)?;
        if degree > MAX_DEGREE {
            return Err(ApproxError::DegreeTooHigh {
                degree,
                max: MAX_DEGREE,
            });
        }
        let d = degree + 1;
        let cosines = dct_cosines(d);
        let (mid, half) = (0.5 * (a + b), 0.5 * (b - a));
        let mut samples = Vec::with_capacity(d);
        for j in 0..d {
            let x = mid + half * cosines[2 * j + 1];
            let y = f(x);
            if !y.is_finite() {
                return Err(ApproxError::NonFinite { x });
            }
            samples.push(y);
        }
        let period = 4 * d;
        let coeffs = (0..d)
            .map(|k| {
                let sum: f64 = samples
                    .iter()
                    .enumerate()
                    .map(|(j, y)| y * cosines[(k * (2 * j + 1)) % period])
                    .sum();
                let weight = if k == 0 { 1.0 } else { 2.0 };
                weight * sum / d as f64
            })
            .collect();
        Ok(Self { a, b, coeffs })
    }

    /// The degree `nodes.len() - 1` polynomial through `(x_i, f(x_i))` for arbitrary distinct
    /// nodes in `[a, b]`, in the Chebyshev basis: solves the Chebyshev–Vandermonde system
    /// `sum_k c_k T_k(t_i) = f(x_i)` by LU with double-double residual refinement. For
    /// clustered nodes (Han–Ki) the coefficients in the ill-conditioned directions are not
    /// unique to f64, but the polynomial's values at and near the nodes are: the refined
    /// residual is at rounding level.
    pub fn interpolate_at(
        f: impl Fn(f64) -> f64,
        a: f64,
        b: f64,
        nodes: &[f64],
    ) -> Result<Self, ApproxError> {
        check_interval(a, b)?;
        if nodes.is_empty() {
            return Err(ApproxError::EmptySeries);
        }
        if nodes.len() > MAX_DEGREE + 1 {
            return Err(ApproxError::DegreeTooHigh {
                degree: nodes.len() - 1,
                max: MAX_DEGREE,
            });
        }
        let n = nodes.len();
        let mut matrix = Vec::with_capacity(n * n);
        let mut rhs = Vec::with_capacity(n);
        for &x in nodes {
            if !(a..=b).contains(&x) {
                return Err(ApproxError::InvalidParameter {
                    what: format!("node {x} outside [{a}, {b}]"),
                });
            }
            let y = f(x);
            if !y.is_finite() {
                return Err(ApproxError::NonFinite { x });
            }
            rhs.push(y);
            let t = (2.0 * x - a - b) / (b - a);
            let (mut prev, mut cur) = (1.0, t);
            matrix.push(1.0);
            for k in 1..n {
                matrix.push(cur);
                if k + 1 < n {
                    (prev, cur) = (cur, 2.0 * t * cur - prev);
                }
            }
        }
        let coeffs = super::linalg::solve(&matrix, &rhs, 2).map_err(|_| ApproxError::Singular {
            method: "interpolation at given nodes",
        })?;
        Ok(Self { a, b, coeffs })
    }

    /// Left end of the interval.
    pub fn a(&self) -> f64 {
        self.a
    }

    /// Right end of the interval.
    pub fn b(&self) -> f64 {
        self.b
    }

    /// The coefficients, `coeffs()[k]` multiplying `T_k`.
    pub fn coeffs(&self) -> &[f64] {
        &self.coeffs
    }

    /// The degree (length of the coefficient vector minus one; trailing zeros included).
    pub fn degree(&self) -> usize {
        self.coeffs.len() - 1
    }

    /// `sum |c_k|`: a bound on `max |p|` over the interval, and the factor by which
    /// per-coefficient (e.g. CKKS) errors can add up in an evaluation.
    pub fn l1_norm(&self) -> f64 {
        self.coeffs.iter().map(|c| c.abs()).sum()
    }

    /// The affine map of `[a, b]` onto `[-1, 1]`.
    pub fn to_unit(&self, x: f64) -> f64 {
        (2.0 * x - self.a - self.b) / (self.b - self.a)
    }

    /// `p(x)` by Clenshaw's recurrence (backward stable).
    pub fn evaluate(&self, x: f64) -> f64 {
        self.evaluate_unit(self.to_unit(x))
    }

    /// `sum_k c_k T_k(t)` for `t` already in the unit variable.
    pub fn evaluate_unit(&self, t: f64) -> f64 {
        let two_t = 2.0 * t;
        let (mut b1, mut b2) = (0.0, 0.0);
        for &c in self.coeffs[1..].iter().rev() {
            let b0 = c + two_t * b1 - b2;
            b2 = b1;
            b1 = b0;
        }
        self.coeffs[0] + t * b1 - b2
    }

    /// [`Self::evaluate`] at every point of `xs`, into `out` (bit for bit; see
    /// [`Self::evaluate_unit_many`]).
    ///
    /// # Panics
    /// If `out` and `xs` differ in length.
    pub fn evaluate_many(&self, xs: &[f64], out: &mut [f64]) {
        assert_eq!(xs.len(), out.len(), "one output per point");
        for (y, &x) in out.iter_mut().zip(xs) {
            *y = self.to_unit(x);
        }
        self.evaluate_unit_in_place(out);
    }

    /// [`Self::evaluate_unit`] at every point of `ts`, into `out`: the same operations point
    /// by point (bit for bit), sixteen points at a time, so that their independent
    /// recurrences overlap instead of each waiting on its own latency.
    ///
    /// # Panics
    /// If `out` and `ts` differ in length.
    pub fn evaluate_unit_many(&self, ts: &[f64], out: &mut [f64]) {
        assert_eq!(ts.len(), out.len(), "one output per point");
        out.copy_from_slice(ts);
        self.evaluate_unit_in_place(out);
    }

    /// Replaces every point `t` of `points` by `p(t)`, in an AVX2 build of the same code
    /// when the processor has it (no fused multiply-adds: the same roundings, bit for bit).
    fn evaluate_unit_in_place(&self, points: &mut [f64]) {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the processor supports AVX2 (checked just above).
            return unsafe { self.clenshaw_avx2(points) };
        }
        self.clenshaw(points);
    }

    /// [`Self::clenshaw`] compiled for AVX2.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn clenshaw_avx2(&self, points: &mut [f64]) {
        self.clenshaw(points);
    }

    /// Clenshaw's recurrence on [`LANES`] points at a time (four AVX2 vectors a step: enough
    /// independent chains to hide the latency of each).
    #[inline(always)]
    fn clenshaw(&self, points: &mut [f64]) {
        for chunk in points.chunks_mut(LANES) {
            let mut t = [0.0; LANES];
            t[..chunk.len()].copy_from_slice(chunk);
            let two_t = t.map(|t| 2.0 * t);
            let (mut b1, mut b2) = ([0.0; LANES], [0.0; LANES]);
            for &c in self.coeffs[1..].iter().rev() {
                let mut b0 = [0.0; LANES];
                for lane in 0..LANES {
                    b0[lane] = c + two_t[lane] * b1[lane] - b2[lane];
                }
                b2 = b1;
                b1 = b0;
            }
            for (lane, y) in chunk.iter_mut().enumerate() {
                *y = self.coeffs[0] + t[lane] * b1[lane] - b2[lane];
            }
        }
    }

    /// Error against `f` on `grid_points` uniformly spaced points of `[a, b]`.
    pub fn max_error(&self, f: impl Fn(f64) -> f64, grid_points: usize) -> ErrorReport {
        ErrorReport::measure(uniform_grid(self.a, self.b, grid_points), f, |x| {
            self.evaluate(x)
        })
    }

    /// Error against `f` on given sample points (e.g. calibration data).
    pub fn max_error_at(&self, f: impl Fn(f64) -> f64, samples: &[f64]) -> ErrorReport {
        ErrorReport::measure(samples.iter().copied(), f, |x| self.evaluate(x))
    }

    /// `self * factor`.
    pub fn scaled(&self, factor: f64) -> Self {
        Self {
            a: self.a,
            b: self.b,
            coeffs: self.coeffs.iter().map(|c| c * factor).collect(),
        }
    }

    /// The first `degree + 1` coefficients (the Chebyshev truncation).
    pub fn truncated(&self, degree: usize) -> Self {
        let keep = (degree + 1).min(self.coeffs.len());
        Self {
            a: self.a,
            b: self.b,
            coeffs: self.coeffs[..keep].to_vec(),
        }
    }

    /// Division by `T_m` in the Chebyshev basis: `p = q T_m + r` with `deg r < m` and
    /// `deg q = deg p - m` (for `deg p >= m`; otherwise `q = 0`, `r = p`). Uses
    /// `T_i = 2 T_m T_{i-m} - T_{|2m - i|}` from the top coefficient down (for `i = m`,
    /// `T_m = T_m T_0`). This is the giant-step split of the BSGS evaluation (Lattigo
    /// `splitCoeffs`, OpenFHE `LongDivisionChebyshev`), valid for any degree.
    pub fn divide_by_chebyshev(&self, m: usize) -> Result<(Self, Self), ApproxError> {
        if m == 0 {
            return Err(ApproxError::InvalidParameter {
                what: "division by T_0 = 1 is trivial; m must be >= 1".into(),
            });
        }
        let degree = self.degree();
        if degree < m {
            let zero = Self {
                a: self.a,
                b: self.b,
                coeffs: vec![0.0],
            };
            return Ok((zero, self.clone()));
        }
        let mut rest = self.coeffs.clone();
        let mut q = vec![0.0; degree - m + 1];
        for i in (m..=degree).rev() {
            let c = rest[i];
            rest[i] = 0.0;
            if i == m {
                q[0] += c;
            } else {
                q[i - m] += 2.0 * c;
                rest[i.abs_diff(2 * m)] -= c;
            }
        }
        rest.truncate(m);
        Ok((
            Self {
                a: self.a,
                b: self.b,
                coeffs: q,
            },
            Self {
                a: self.a,
                b: self.b,
                coeffs: rest,
            },
        ))
    }

    /// The baby-step giant-step tree of `p`: with `2^log_baby` baby steps and `G` giant levels
    /// (the smallest with `deg p < 2^(log_baby + G)`), returns `2^G` leaves `l_i`, each of
    /// degree `< 2^log_baby`, such that
    /// `p = sum_i l_i * prod_{bit g of i set} T_{2^(log_baby + g)}`
    /// (split by `T_{2^(log_baby + G - 1)}` first, then recursively on quotient and remainder).
    pub fn bsgs_leaves(&self, log_baby: u32) -> Result<Vec<Self>, ApproxError> {
        if log_baby >= usize::BITS - 1 {
            return Err(ApproxError::InvalidParameter {
                what: format!("log_baby = {log_baby} is too large"),
            });
        }
        let mut giant = 0u32;
        while self.degree() >= 1usize << (log_baby + giant) {
            giant += 1;
        }
        // Splitting every leaf i into (r, q) at indices (2i, 2i + 1), top giant level first,
        // leaves bit g of the final index set exactly when T_{2^(log_baby+g)} was factored out.
        let mut leaves = vec![self.clone()];
        for g in (0..giant).rev() {
            let m = 1usize << (log_baby + g);
            let mut next = Vec::with_capacity(2 * leaves.len());
            for leaf in &leaves {
                let (q, r) = leaf.divide_by_chebyshev(m)?;
                next.push(r);
                next.push(q);
            }
            leaves = next;
        }
        Ok(leaves)
    }
}

/// A complex-valued Chebyshev series on a real interval: two real series.
#[derive(Debug, Clone, PartialEq)]
pub struct ComplexChebyshevSeries {
    /// Real part.
    pub re: ChebyshevSeries,
    /// Imaginary part.
    pub im: ChebyshevSeries,
}

impl ComplexChebyshevSeries {
    /// Interpolates a complex-valued `f` at the first-kind nodes (one DCT per part).
    pub fn interpolate(
        f: impl Fn(f64) -> Complex64,
        a: f64,
        b: f64,
        degree: usize,
    ) -> Result<Self, ApproxError> {
        Ok(Self {
            re: ChebyshevSeries::interpolate(|x| f(x).re, a, b, degree)?,
            im: ChebyshevSeries::interpolate(|x| f(x).im, a, b, degree)?,
        })
    }

    /// `p(x)`.
    pub fn evaluate(&self, x: f64) -> Complex64 {
        Complex64::new(self.re.evaluate(x), self.im.evaluate(x))
    }

    /// The complex coefficients.
    pub fn coeffs(&self) -> Vec<Complex64> {
        self.re
            .coeffs()
            .iter()
            .zip(self.im.coeffs())
            .map(|(&r, &i)| Complex64::new(r, i))
            .collect()
    }
}

/// Derivative-free estimate of the interpolation error of degree `degree` on `[a, b]`:
/// `2 sum_{degree < k <= D} |c_k|` with the coefficients `c_k` of a degree
/// `D = 2 degree + 16` interpolant standing in for those of `f` (the Trefethen bound with
/// the unknown tail estimated from the data; it ignores the tail beyond `D`).
pub fn estimate_interpolation_error(
    f: impl Fn(f64) -> f64,
    a: f64,
    b: f64,
    degree: usize,
) -> Result<f64, ApproxError> {
    let reference = ChebyshevSeries::interpolate(f, a, b, 2 * degree + 16)?;
    Ok(2.0
        * reference.coeffs()[degree + 1..]
            .iter()
            .map(|c| c.abs())
            .sum::<f64>())
}

/// The outcome of a degree search.
#[derive(Debug, Clone, PartialEq)]
pub struct DegreeChoice {
    /// The chosen degree.
    pub degree: usize,
    /// Its interpolant.
    pub series: ChebyshevSeries,
    /// Its measured error.
    pub error: ErrorReport,
}

/// The smallest degree `d <= max_degree` whose interpolant has measured max error
/// `<= target` on `grid_points` uniform points of `[a, b]` (every degree is tried in
/// increasing order, since the error is not monotone in `d`, e.g. for odd or even `f`).
pub fn min_degree_for_error(
    f: impl Fn(f64) -> f64,
    a: f64,
    b: f64,
    target: f64,
    max_degree: usize,
    grid_points: usize,
) -> Result<DegreeChoice, ApproxError> {
    check_interval(a, b)?;
    let grid: Vec<f64> = uniform_grid(a, b, grid_points).collect();
    let reference: Vec<f64> = grid.iter().map(|&x| f(x)).collect();
    let (mut best_error, mut best_degree) = (f64::INFINITY, 0);
    for degree in 0..=max_degree {
        let series = ChebyshevSeries::interpolate(&f, a, b, degree)?;
        let error = ErrorReport::from_samples(
            grid.iter()
                .zip(&reference)
                .map(|(&x, &want)| (x, want, series.evaluate(x))),
        );
        if error.max_abs <= target {
            return Ok(DegreeChoice {
                degree,
                series,
                error,
            });
        }
        if error.max_abs < best_error {
            (best_error, best_degree) = (error.max_abs, degree);
        }
    }
    Err(ApproxError::TargetNotReached {
        target,
        max_degree,
        best_error,
        best_degree,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngExt, SeedableRng};
    use rand_chacha::ChaCha20Rng;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    /// Modified Bessel `I_k(z)` by its series of positive terms (no cancellation).
    fn bessel_i(k: usize, z: f64) -> f64 {
        let half = z / 2.0;
        let mut term = (1..=k).fold(1.0, |t, j| t * half / j as f64);
        let mut sum = 0.0;
        for m in 1..200 {
            sum += term;
            term *= half * half / (m as f64 * (m + k) as f64);
        }
        sum
    }

    /// `e^x` on `[a, b]` has Chebyshev coefficients `2 e^mid I_k(half)` (`I_0` once): the DCT
    /// interpolant reproduces them to 4e-16 (relative to `e^b`) at degrees 48..255, where the
    /// aliased tail is below rounding.
    #[test]
    fn exponential_coefficients_match_bessel_values() -> TestResult {
        for (a, b) in [(-1.0, 1.0), (-3.0, 5.0)] {
            let (mid, half) = (0.5 * (a + b), 0.5 * (b - a));
            let scale = f64::exp(b);
            for degree in [48, 100, 255] {
                let series = ChebyshevSeries::interpolate(f64::exp, a, b, degree)?;
                for (k, c) in series.coeffs().iter().enumerate() {
                    let exact = if k == 0 { 1.0 } else { 2.0 } * mid.exp() * bessel_i(k, half);
                    assert!(
                        (c - exact).abs() <= 4e-16 * scale,
                        "[{a},{b}] d={degree} k={k}: {c:e} vs {exact:e}"
                    );
                }
            }
        }
        Ok(())
    }

    /// A degree-255 polynomial is recovered by its degree-255 interpolant: coefficients within
    /// 4e-15 sum |c_k| (the size of its sampled values).
    #[test]
    fn interpolation_reproduces_polynomials() -> TestResult {
        let mut rng = ChaCha20Rng::seed_from_u64(10);
        let coeffs: Vec<f64> = (0..256).map(|_| rng.random_range(-1.0..1.0)).collect();
        let p = ChebyshevSeries::new(-2.0, 6.0, coeffs.clone())?;
        let q = ChebyshevSeries::interpolate(|x| p.evaluate(x), -2.0, 6.0, 255)?;
        let worst = coeffs
            .iter()
            .zip(q.coeffs())
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        assert!(worst < 4e-15 * p.l1_norm(), "{worst:e}");
        Ok(())
    }

    /// Many points at a time give each point's own evaluation, to the bit.
    #[test]
    fn batched_evaluation_is_pointwise_evaluation() -> TestResult {
        for degree in [0usize, 1, 7, 64, 201] {
            let coeffs = (0..=degree)
                .map(|k| ((k * 7919) % 113) as f64 / 57.0 - 1.0)
                .collect();
            let series = ChebyshevSeries::new(-3.0, 5.5, coeffs)?;
            let xs: Vec<f64> = (0..19).map(|i| -3.0 + 0.47 * i as f64).collect();
            let mut ys = vec![0.0; xs.len()];
            series.evaluate_many(&xs, &mut ys);
            let ts: Vec<f64> = xs.iter().map(|&x| series.to_unit(x)).collect();
            let mut us = vec![0.0; ts.len()];
            series.evaluate_unit_many(&ts, &mut us);
            for ((&x, &y), (&t, &u)) in xs.iter().zip(&ys).zip(ts.iter().zip(&us)) {
                assert_eq!(y.to_bits(), series.evaluate(x).to_bits(), "degree {degree}");
                assert_eq!(
                    u.to_bits(),
                    series.evaluate_unit(t).to_bits(),
                    "degree {degree}"
                );
            }
        }
        Ok(())
    }

    #[test]
    fn clenshaw_matches_the_trigonometric_definition() -> TestResult {
        let mut rng = ChaCha20Rng::seed_from_u64(11);
        for k in [0usize, 1, 2, 7, 50] {
            let mut coeffs = vec![0.0; k + 1];
            coeffs[k] = 1.0;
            let tk = ChebyshevSeries::new(-1.0, 1.0, coeffs)?;
            for _ in 0..100 {
                let t: f64 = rng.random_range(-1.0..1.0);
                let exact = (k as f64 * t.acos()).cos();
                assert!((tk.evaluate(t) - exact).abs() < 1e-13, "k={k} t={t}");
            }
        }
        Ok(())
    }

    /// `p = q T_m + r` holds to 1e-12 (relative to sum |c_k|) for degrees below, at, between
    /// and beyond `m .. 2m`, with `deg r < m` and `deg q = deg p - m`.
    #[test]
    fn division_by_t_m_reconstructs_the_series() -> TestResult {
        let mut rng = ChaCha20Rng::seed_from_u64(12);
        for (degree, m) in [
            (5, 8),
            (8, 8),
            (12, 8),
            (16, 8),
            (17, 8),
            (100, 8),
            (100, 64),
            (255, 128),
            (30, 1),
        ] {
            let coeffs: Vec<f64> = (0..=degree).map(|_| rng.random_range(-1.0..1.0)).collect();
            let p = ChebyshevSeries::new(-3.0, 1.0, coeffs)?;
            let (q, r) = p.divide_by_chebyshev(m)?;
            let mut tm = vec![0.0; m + 1];
            tm[m] = 1.0;
            let tm = ChebyshevSeries::new(-3.0, 1.0, tm)?;
            if degree >= m {
                assert_eq!((q.degree(), r.degree()), (degree - m, m - 1));
            } else {
                assert_eq!(r, p);
            }
            for i in 0..=200 {
                let x = -3.0 + 4.0 * i as f64 / 200.0;
                let err = (q.evaluate(x) * tm.evaluate(x) + r.evaluate(x) - p.evaluate(x)).abs();
                assert!(
                    err < 1e-12 * p.l1_norm(),
                    "degree {degree} m {m} x {x}: {err:e}"
                );
            }
        }
        assert!(
            ChebyshevSeries::new(0.0, 1.0, vec![1.0])?
                .divide_by_chebyshev(0)
                .is_err()
        );
        Ok(())
    }

    /// The BSGS tree: `p = sum_i l_i prod_{bit g of i} T_{2^(l+g)}`, leaves of degree < 2^l.
    #[test]
    fn bsgs_leaves_recompose_the_series() -> TestResult {
        let mut rng = ChaCha20Rng::seed_from_u64(13);
        for (degree, log_baby) in [(127, 3), (200, 4), (31, 5), (5, 3), (64, 2)] {
            let coeffs: Vec<f64> = (0..=degree).map(|_| rng.random_range(-1.0..1.0)).collect();
            let p = ChebyshevSeries::new(-1.0, 2.0, coeffs)?;
            let leaves = p.bsgs_leaves(log_baby)?;
            let giant = leaves.len().trailing_zeros();
            assert!(leaves.len().is_power_of_two());
            assert!(degree < 1 << (log_baby + giant));
            assert!(leaves.iter().all(|l| l.degree() < 1 << log_baby));
            for i in 0..=100 {
                let x = -1.0 + 3.0 * i as f64 / 100.0;
                let t = p.to_unit(x);
                let power = |g: u32| (f64::from(1u32 << (log_baby + g)) * t.acos()).cos();
                let sum: f64 = leaves
                    .iter()
                    .enumerate()
                    .map(|(idx, leaf)| {
                        (0..giant)
                            .filter(|g| idx >> g & 1 == 1)
                            .fold(leaf.evaluate(x), |acc, g| acc * power(g))
                    })
                    .sum();
                let err = (sum - p.evaluate(x)).abs();
                assert!(
                    err < 1e-12 * p.l1_norm(),
                    "degree {degree} log_baby {log_baby} x {x}: {err:e}"
                );
            }
        }
        Ok(())
    }

    /// The derivative-free estimate bounds the measured error from above, within 30x, for
    /// analytic functions.
    #[test]
    fn error_estimate_brackets_the_measured_error() -> TestResult {
        let sigmoid = |x: f64| 1.0 / (1.0 + (-x).exp());
        for (name, f, a, b) in [
            ("sigmoid", &sigmoid as &dyn Fn(f64) -> f64, -8.0, 8.0),
            ("exp", &f64::exp, -8.0, 0.0),
            ("cos", &|x: f64| (3.0 * x).cos(), -4.0, 4.0),
        ] {
            for degree in [6, 11, 16, 24, 32] {
                let measured = ChebyshevSeries::interpolate(f, a, b, degree)?
                    .max_error(f, DEFAULT_GRID_POINTS)
                    .max_abs;
                let estimate = estimate_interpolation_error(f, a, b, degree)?;
                if measured < 1e-14 {
                    continue; // rounding level: nothing to estimate
                }
                assert!(
                    measured <= estimate && estimate <= 30.0 * measured,
                    "{name} d={degree}: measured {measured:e} estimate {estimate:e}"
                );
            }
        }
        Ok(())
    }

    /// The chosen degree meets the target and every smaller degree misses it.
    #[test]
    fn degree_search_returns_the_smallest_sufficient_degree() -> TestResult {
        let sigmoid = |x: f64| 1.0 / (1.0 + (-x).exp());
        for target in [1e-2, 1e-4, 1e-8] {
            let choice = min_degree_for_error(sigmoid, -8.0, 8.0, target, 200, 2001)?;
            assert!(choice.error.max_abs <= target);
            for smaller in 0..choice.degree {
                let e = ChebyshevSeries::interpolate(sigmoid, -8.0, 8.0, smaller)?
                    .max_error(sigmoid, 2001);
                assert!(
                    e.max_abs > target,
                    "degree {smaller} already reaches {target:e}"
                );
            }
        }
        let miss = min_degree_for_error(|x: f64| x.abs(), -1.0, 1.0, 1e-9, 20, 1001);
        assert!(matches!(
            miss,
            Err(ApproxError::TargetNotReached { max_degree: 20, .. })
        ));
        Ok(())
    }

    #[test]
    fn interpolation_at_given_nodes() -> TestResult {
        // At the Chebyshev nodes it is the DCT interpolant.
        let f = |x: f64| (x * 1.3).sin() + x * x;
        let nodes = chebyshev_nodes(-2.0, 3.0, 20);
        let at = ChebyshevSeries::interpolate_at(f, -2.0, 3.0, &nodes)?;
        let dct = ChebyshevSeries::interpolate(f, -2.0, 3.0, 20)?;
        let worst = at
            .coeffs()
            .iter()
            .zip(dct.coeffs())
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        assert!(worst < 1e-14, "{worst:e}");
        // Equispaced nodes reproduce a cubic exactly.
        let cubic = |x: f64| 2.0 * x * x * x - x + 0.5;
        let nodes: Vec<f64> = (0..4).map(|i| i as f64).collect();
        let p = ChebyshevSeries::interpolate_at(cubic, 0.0, 3.0, &nodes)?;
        assert!(p.max_error(cubic, 101).max_abs < 1e-13);
        assert!(matches!(
            ChebyshevSeries::interpolate_at(cubic, 0.0, 3.0, &[1.0, 1.0]),
            Err(ApproxError::Singular { .. })
        ));
        assert!(ChebyshevSeries::interpolate_at(cubic, 0.0, 3.0, &[4.0]).is_err());
        Ok(())
    }

    #[test]
    fn complex_series_interpolates_both_parts() -> TestResult {
        let f = |x: f64| Complex64::from_polar(1.0, 2.0 * x);
        let p = ComplexChebyshevSeries::interpolate(f, -1.0, 1.0, 24)?;
        for i in 0..=50 {
            let x = -1.0 + i as f64 / 25.0;
            assert!((p.evaluate(x) - f(x)).norm() < 1e-14);
        }
        assert_eq!(p.coeffs().len(), 25);
        Ok(())
    }

    #[test]
    fn rejects_bad_requests_with_clear_messages() {
        assert_eq!(
            ChebyshevSeries::interpolate(f64::exp, 1.0, 1.0, 3).map_err(|e| e.to_string()),
            Err("invalid interval [1, 1]".to_string())
        );
        assert!(matches!(
            ChebyshevSeries::interpolate(|x: f64| 1.0 / x, -1.0, 1.0, 2),
            Err(ApproxError::NonFinite { .. })
        ));
        assert!(ChebyshevSeries::new(0.0, 1.0, vec![]).is_err());
        assert!(ChebyshevSeries::interpolate(f64::exp, 0.0, 1.0, MAX_DEGREE + 1).is_err());
        let report =
            ErrorReport::from_samples([(0.0, 1.0, 1.0), (1.0, 1.0, f64::NAN), (2.0, 1.0, 5.0)]);
        assert!(report.max_abs.is_nan() && report.argmax == 1.0);
    }
}
