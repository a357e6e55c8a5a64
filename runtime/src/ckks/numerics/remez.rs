//! Minimax (best uniform, optionally weighted) polynomial approximation on [a, b] by the Remez exchange algorithm in the Chebyshev basis, in f64.

use super::chebyshev::{ApproxError, ChebyshevSeries, MAX_DEGREE};
use super::linalg;

/// Knobs of the exchange.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RemezOptions {
    /// Stop after this many exchanges.
    pub max_iterations: usize,
    /// Converged when `(max |e_i| - min |e_i|) / max |e_i| <= tolerance` on the reference.
    pub tolerance: f64,
    /// Search grid points per unit of `degree + 2`.
    pub grid_density: usize,
}

impl Default for RemezOptions {
    fn default() -> Self {
        Self {
            max_iterations: 60,
            tolerance: 1e-4,
            grid_density: 64,
        }
    }
}

/// A minimax approximation and how it was reached.
#[derive(Debug, Clone, PartialEq)]
pub struct Minimax {
    /// The best polynomial found (lowest measured max error over the iterations).
    pub series: ChebyshevSeries,
    /// Its max weighted error `max |w (f - p)|` on the search grid (extrema refined).
    pub max_error: f64,
    /// `|E|` of the last reference system: a lower bound on the minimax error
    /// (de la Vallée Poussin).
    pub levelled_error: f64,
    /// Exchanges performed.
    pub iterations: usize,
    /// Whether the extrema were levelled to `tolerance`.
    pub converged: bool,
}

/// Unweighted minimax approximation of `f` of degree `degree` on `[a, b]`.
pub fn minimax(
    f: impl Fn(f64) -> f64,
    a: f64,
    b: f64,
    degree: usize,
    options: RemezOptions,
) -> Result<Minimax, ApproxError> {
    minimax_weighted(f, |_| 1.0, a, b, degree, options)
}

/// Minimax approximation of relative error (weight `1/|f|`; `f` must not vanish on `[a, b]`).
pub fn minimax_relative(
    f: impl Fn(f64) -> f64,
    a: f64,
    b: f64,
    degree: usize,
    options: RemezOptions,
) -> Result<Minimax, ApproxError> {
    let weight = |x: f64| 1.0 / f(x).abs();
    minimax_weighted(&f, weight, a, b, degree, options)
}

/// Minimax approximation minimizing `max |w(x) (f(x) - p(x))|`, `w > 0` on `[a, b]`.
///
/// Second Remez algorithm (Remez 1934; as in Chebfun `remez.m`, Pachón–Trefethen 2009):
/// solve `p(x_i) + (-1)^i E / w(x_i) = f(x_i)` on `d + 2` reference points, move the
/// reference to the alternating extrema of the weighted error `w (f - p)` found on a dense
/// Chebyshev-spaced grid (refined by golden-section search), repeat until the extrema are
/// levelled. In f64 it converged in 4-6 exchanges up to degree 200 on sigmoid, ReLU^2 and 1/x
/// whenever the minimax error is above ~1e-12; closer to rounding level the extrema cannot be
/// levelled and it returns the best polynomial seen, unconverged (never worse than the
/// Chebyshev interpolant, which seeds it).
pub fn minimax_weighted(
    f: impl Fn(f64) -> f64,
    w: impl Fn(f64) -> f64,
    a: f64,
    b: f64,
    degree: usize,
    options: RemezOptions,
) -> Result<Minimax, ApproxError> {
    if !(a.is_finite() && b.is_finite() && a < b) {
        return Err(ApproxError::InvalidInterval { a, b });
    }
    if degree > MAX_DEGREE {
        return Err(ApproxError::DegreeTooHigh {
            degree,
            max: MAX_DEGREE,
        });
    }
    let to_x = |t: f64| 0.5 * (a + b) + 0.5 * (b - a) * t;
    let points = degree + 2;
    // Initial reference: d + 2 of the d + 3 extrema of T_{d+2}. The extrema of T_{d+1}
    // (where the interpolant nearly equioscillates) are symmetric, and for f odd or even
    // modulo P_d (sigmoid, ReLU^2 = x^2/2 + x|x|/2) a symmetric reference of odd size forces
    // E = 0 (if (p, E) solves it, so does (-p(-x), -E)); dropping one end breaks the symmetry,
    // and the best approximations of such f alternate on d + 3 points anyway.
    let mut reference: Vec<f64> = (0..points)
        .map(|i| -(std::f64::consts::PI * i as f64 / points as f64).cos())
        .collect();
    let grid_len = (options.grid_density * points).max(2000);
    let grid: Vec<f64> = (0..grid_len)
        .map(|i| -(std::f64::consts::PI * i as f64 / (grid_len - 1) as f64).cos())
        .collect();
    // The weighted error of `series` at every point of `ts`.
    let weighted_errors = |series: &ChebyshevSeries, ts: &[f64], out: &mut [f64]| {
        series.evaluate_unit_many(ts, out);
        for (e, &t) in out.iter_mut().zip(ts) {
            let x = to_x(t);
            *e = w(x) * (f(x) - *e);
        }
    };

    // The Chebyshev interpolant is the fallback: the result is never worse than it.
    let interpolant = ChebyshevSeries::interpolate(&f, a, b, degree)?;
    let interpolant_error = alternating_extrema(&grid, &|ts, out| {
        weighted_errors(&interpolant, ts, out);
    })
    .iter()
    .map(|&(_, e)| e.abs())
    .fold(0.0, f64::max);
    let mut best = Minimax {
        series: interpolant,
        max_error: interpolant_error,
        levelled_error: 0.0,
        iterations: 0,
        converged: false,
    };
    for iteration in 1..=options.max_iterations {
        // Solve for the coefficients and the levelled error E.
        let mut matrix = Vec::with_capacity(points * points);
        let mut rhs = Vec::with_capacity(points);
        for (i, &t) in reference.iter().enumerate() {
            let x = to_x(t);
            let (fx, wx) = (f(x), w(x));
            if !(fx.is_finite() && wx.is_finite() && wx > 0.0) {
                return Err(ApproxError::NonFinite { x });
            }
            rhs.push(fx);
            let (mut prev, mut cur) = (1.0, t);
            matrix.push(1.0);
            for _ in 1..=degree {
                matrix.push(cur);
                (prev, cur) = (cur, 2.0 * t * cur - prev);
            }
            matrix.push(if i % 2 == 0 { 1.0 } else { -1.0 } / wx);
        }
        let solution = linalg::solve(&matrix, &rhs, 1).map_err(|_| ApproxError::Singular {
            method: "Remez reference system",
        })?;
        let levelled_error = solution[degree + 1].abs();
        let series = ChebyshevSeries::new(a, b, solution[..=degree].to_vec())?;
        let extrema = alternating_extrema(&grid, &|ts, out| weighted_errors(&series, ts, out));
        let max_error = extrema.iter().map(|&(_, e)| e.abs()).fold(0.0, f64::max);
        if max_error < best.max_error {
            best = Minimax {
                series,
                max_error,
                levelled_error,
                iterations: iteration,
                converged: false,
            };
        }
        if extrema.len() < points {
            // The error does not alternate d + 2 times on the grid: no exchange possible.
            break;
        }
        let chosen = trim_to(extrema, points);
        let (hi, lo) = chosen
            .iter()
            .fold((0.0f64, f64::INFINITY), |(hi, lo), &(_, e)| {
                (hi.max(e.abs()), lo.min(e.abs()))
            });
        if (hi - lo) <= options.tolerance * hi {
            // Levelled: the current polynomial is minimax to `tolerance`, and `best` is at
            // least as good.
            best.converged = true;
            best.iterations = iteration;
            best.levelled_error = levelled_error;
            break;
        }
        reference = chosen.into_iter().map(|(t, _)| t).collect();
    }
    Ok(best)
}

/// One extremum of `|e|` per maximal run of constant sign of `e` on the grid, refined by
/// golden-section search between the neighbouring grid points: alternating in sign.
/// `errors(ts, out)` writes `e` at every point of `ts` into `out`.
fn alternating_extrema(grid: &[f64], errors: &impl Fn(&[f64], &mut [f64])) -> Vec<(f64, f64)> {
    let mut values = vec![0.0; grid.len()];
    errors(grid, &mut values);
    let mut runs: Vec<(usize, f64)> = Vec::new(); // (grid index of the run's max, value)
    for (i, &e) in values.iter().enumerate() {
        if e == 0.0 {
            continue;
        }
        match runs.last_mut() {
            Some((j, v)) if v.signum() == e.signum() => {
                if e.abs() > v.abs() {
                    (*j, *v) = (i, e);
                }
            }
            _ => runs.push((i, e)),
        }
    }
    let mut extrema: Vec<(f64, f64)> = runs.iter().map(|&(i, e)| (grid[i], e)).collect();
    // Extrema at the ends of the grid stay; the others are refined, all searches together.
    let inner: Vec<usize> = (0..runs.len())
        .filter(|&k| runs[k].0 != 0 && runs[k].0 + 1 != grid.len())
        .collect();
    let searches: Vec<Search> = inner
        .iter()
        .map(|&k| Search::new(grid[runs[k].0 - 1], grid[runs[k].0 + 1], extrema[k]))
        .collect();
    for (&k, refined) in inner.iter().zip(refine_extrema(searches, errors)) {
        extrema[k] = refined;
    }
    extrema
}

/// The golden ratio's inverse, the factor a golden-section bracket shrinks by each step.
const INV_PHI: f64 = 0.618_033_988_749_894_9;

/// A golden-section search for the max of `|e|` in `[lo, hi]`, from a grid point `start`.
#[derive(Debug, Clone, Copy)]
struct Search {
    lo: f64,
    hi: f64,
    c: f64,
    d: f64,
    ec: f64,
    ed: f64,
    /// Whether the last point was `c` (else `d`).
    at_c: bool,
    start: (f64, f64),
}

impl Search {
    fn new(lo: f64, hi: f64, start: (f64, f64)) -> Self {
        Self {
            lo,
            hi,
            c: hi - INV_PHI * (hi - lo),
            d: lo + INV_PHI * (hi - lo),
            ec: 0.0,
            ed: 0.0,
            at_c: false,
            start,
        }
    }

    /// Keeps the part of the bracket around the larger `|e|` and returns its new point.
    fn narrow(&mut self) -> f64 {
        self.at_c = self.ec.abs() > self.ed.abs();
        if self.at_c {
            (self.hi, self.d, self.ed) = (self.d, self.c, self.ec);
            self.c = self.hi - INV_PHI * (self.hi - self.lo);
            self.c
        } else {
            (self.lo, self.c, self.ec) = (self.c, self.d, self.ed);
            self.d = self.lo + INV_PHI * (self.hi - self.lo);
            self.d
        }
    }

    /// Takes `e` at the point [`Self::narrow`] returned.
    fn take(&mut self, e: f64) {
        if self.at_c {
            self.ec = e;
        } else {
            self.ed = e;
        }
    }

    /// The better of the final points, never worse than `start`.
    fn result(&self) -> (f64, f64) {
        let candidate = if self.ec.abs() > self.ed.abs() {
            (self.c, self.ec)
        } else {
            (self.d, self.ed)
        };
        if candidate.1.abs() > self.start.1.abs() && candidate.1.signum() == self.start.1.signum() {
            candidate
        } else {
            self.start
        }
    }
}

/// Runs 40 golden-section steps of every search (the bracket shrinks by 0.618⁴⁰ ≈ 4e-9) in
/// lockstep, one batch of `errors` per step, and returns each search's result.
fn refine_extrema(
    mut searches: Vec<Search>,
    errors: &impl Fn(&[f64], &mut [f64]),
) -> Vec<(f64, f64)> {
    let mut points: Vec<f64> = searches.iter().flat_map(|s| [s.c, s.d]).collect();
    let mut values = vec![0.0; points.len()];
    errors(&points, &mut values);
    for (search, e) in searches.iter_mut().zip(values.chunks_exact(2)) {
        (search.ec, search.ed) = (e[0], e[1]);
    }
    points.truncate(searches.len());
    values.truncate(searches.len());
    for _ in 0..40 {
        for (search, point) in searches.iter_mut().zip(&mut points) {
            *point = search.narrow();
        }
        errors(&points, &mut values);
        for (search, &e) in searches.iter_mut().zip(&values) {
            search.take(e);
        }
    }
    searches.iter().map(Search::result).collect()
}

/// Keeps `count` consecutive alternating extrema, dropping the smaller end each time (never
/// the global max, so the reference keeps the worst error).
fn trim_to(mut extrema: Vec<(f64, f64)>, count: usize) -> Vec<(f64, f64)> {
    let mut start = 0;
    let mut end = extrema.len();
    while end - start > count {
        if extrema[start].1.abs() < extrema[end - 1].1.abs() {
            start += 1;
        } else {
            end -= 1;
        }
    }
    extrema.truncate(end);
    extrema.drain(..start);
    extrema
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    /// The best quadratic to |x| on [-1, 1] is x^2 + 1/8, error 1/8.
    #[test]
    fn recovers_the_known_best_quadratic_to_abs() -> TestResult {
        let best = minimax(f64::abs, -1.0, 1.0, 2, RemezOptions::default())?;
        assert!(best.converged);
        assert!((best.max_error - 0.125).abs() < 1e-6, "{}", best.max_error);
        let c = best.series.coeffs(); // x^2 + 1/8 = T_2/2 + 5/8
        assert!(
            (c[0] - 0.625).abs() < 1e-5 && c[1].abs() < 1e-5 && (c[2] - 0.5).abs() < 1e-5,
            "{c:?}"
        );
        Ok(())
    }

    /// The best approximation of x^(d+1) is x^(d+1) - T_{d+1}/2^d, error 2^-d.
    #[test]
    fn recovers_the_chebyshev_equioscillation() -> TestResult {
        for d in [3usize, 6, 11] {
            let f = |x: f64| x.powi(d as i32 + 1);
            let best = minimax(f, -1.0, 1.0, d, RemezOptions::default())?;
            let expected = 0.5f64.powi(d as i32);
            assert!(
                best.converged && (best.max_error / expected - 1.0).abs() < 1e-4,
                "d={d}: {}",
                best.max_error
            );
        }
        Ok(())
    }

    /// On smooth, kinked, odd-symmetric and weighted problems the exchange converges, the
    /// levelled error is a lower bound within the tolerance of the max error, and the result
    /// is at least as good as the Chebyshev interpolant.
    #[test]
    fn converges_and_beats_interpolation() -> TestResult {
        let sigmoid = |x: f64| 1.0 / (1.0 + (-x).exp());
        let relu2 = |x: f64| if x > 0.0 { x * x } else { 0.0 };
        type Case<'a> = (&'a str, &'a dyn Fn(f64) -> f64, f64, f64, usize);
        let cases: [Case; 5] = [
            ("exp", &f64::exp, -1.0, 1.0, 5),
            ("sigmoid", &sigmoid, -8.0, 8.0, 7),
            ("sigmoid", &sigmoid, -16.0, 16.0, 31),
            ("relu^2", &relu2, -1.0, 1.0, 16),
            ("1/x", &|x: f64| 1.0 / x, 1.0, 16.0, 12),
        ];
        for (name, f, a, b, d) in cases {
            let best = minimax(f, a, b, d, RemezOptions::default())?;
            let interpolant = ChebyshevSeries::interpolate(f, a, b, d)?
                .max_error(f, 20_001)
                .max_abs;
            let measured = best.series.max_error(f, 20_001).max_abs;
            assert!(best.converged, "{name} d={d}");
            assert!(
                best.levelled_error <= best.max_error * (1.0 + 1e-9),
                "{name}"
            );
            assert!(
                best.max_error <= best.levelled_error * (1.0 + 2e-4),
                "{name}"
            );
            assert!(
                measured <= best.max_error * (1.0 + 1e-6),
                "{name}: grid {measured:e} vs {:e}",
                best.max_error
            );
            assert!(
                measured < interpolant,
                "{name}: {measured:e} vs interpolant {interpolant:e}"
            );
        }
        let rel = minimax_relative(
            |x: f64| 1.0 / x.sqrt(),
            0.01,
            1.0,
            7,
            RemezOptions::default(),
        )?;
        assert!(rel.converged && rel.max_error < 0.122, "{}", rel.max_error);
        Ok(())
    }

    /// At rounding level there is nothing to level: the interpolant comes back, unconverged.
    #[test]
    fn falls_back_to_the_interpolant_at_rounding_level() -> TestResult {
        let best = minimax(f64::exp, -1.0, 1.0, 30, RemezOptions::default())?;
        assert!(best.max_error < 1e-15);
        assert!(minimax(f64::exp, 1.0, -1.0, 3, RemezOptions::default()).is_err());
        Ok(())
    }
}
