//! Bootstrapping's EvalMod in f64: the scaled cosine polynomial on [-K, K] (Chebyshev or Han–Ki nodes), r double-angle steps and the optional arcsine correction, with the end-to-end error measured on inputs I + m.

use super::chebyshev::{ApproxError, ChebyshevSeries, ErrorReport};

/// Where the cosine polynomial interpolates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CosineNodes {
    /// First-kind Chebyshev nodes of `[-K, K]` (Lattigo `CosContinuous`).
    Chebyshev,
    /// Han–Ki: nodes only in `[i - 2^-ratio, i + 2^-ratio]` around each integer
    /// `|i| <= K - 1`, as many per integer as a greedy error bound asks for
    /// (Lattigo `CosDiscrete`).
    HanKi,
}

/// The design of one EvalMod.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EvalModParams {
    /// The input range is `[-K, K]`, integers `|I| <= K - 1`.
    pub k: usize,
    /// Degree of the cosine polynomial.
    pub degree: usize,
    /// Number `r` of double-angle steps.
    pub double_angles: u32,
    /// `log2` of the designed ratio `q0 / |message|`: `|m| <= 2^-log_message_ratio`.
    pub log_message_ratio: u32,
    /// Node placement of the cosine polynomial.
    pub nodes: CosineNodes,
    /// Odd degree of the arcsine correction; 0 or 1 for none.
    pub arcsine_degree: usize,
}

impl EvalModParams {
    /// Lattigo's defaults: K = 16, degree 30, 3 double angles, ratio 2^8, Han–Ki, no arcsine.
    pub fn lattigo_default() -> Self {
        Self {
            k: 16,
            degree: 30,
            double_angles: 3,
            log_message_ratio: 8,
            nodes: CosineNodes::HanKi,
            arcsine_degree: 0,
        }
    }
}

/// The polynomials of one EvalMod, ready to be evaluated (here in f64; the scheme layer
/// evaluates the same coefficients homomorphically).
///
/// After ModRaise a coefficient is `q0 (I + m)` with `|I| <= K - 1` and `|m| <= 2^-ratio`;
/// EvalMod must return `m`. With `s = (1/2pi)^(1/2^r)` the polynomial approximates
/// `s cos(2pi (x - 1/4) / 2^r)`; the steps `y <- 2 y^2 - s^(2^(i+1))` double the angle and
/// square the scale, ending at `sin(2pi x) / (2pi) = sin(2pi m) / (2pi)` (Cheon–Han–Kim–Kim–
/// Song 2018, Han–Ki eprint 2019/688). The odd Taylor polynomial of `arcsin(2pi y) / (2pi)`
/// then removes the sine's `(2pi)^2 m^3 / 6` bias (Lee–Lee–Kim–No eprint 2020/552).
#[derive(Debug, Clone, PartialEq)]
pub struct EvalModPolynomials {
    /// The design.
    pub params: EvalModParams,
    /// `s cos(2pi (x - 1/4) / 2^r)` on `[-K, K]`, scale `s = (1/2pi)^(1/2^r)` included.
    pub cosine: ChebyshevSeries,
    /// The constants `c_i` of the double-angle steps `y <- 2 y^2 - c_i`: `s^(2^(i+1))`.
    pub double_angle_constants: Vec<f64>,
    /// Monomial coefficients of the arcsine correction (index = power; odd powers only);
    /// `[0, 1]` when there is none.
    pub arcsine: Vec<f64>,
}

/// `(1/2pi)^(1/2^r)`, the scale that double-angle steps turn into `1/2pi`.
pub fn cosine_scale(double_angles: u32) -> f64 {
    (1.0 / std::f64::consts::TAU).powf(1.0 / f64::from(1u32 << double_angles))
}

/// Monomial coefficients (index = power) of the odd Taylor polynomial of degree `degree` of
/// `arcsin(2pi y) / (2pi) = sum_k a_k (2pi)^(2k) y^(2k+1)`, `a_k = (2k)! / (4^k k!^2 (2k+1))`.
pub fn arcsine_taylor(degree: usize) -> Vec<f64> {
    let mut coeffs = vec![0.0; degree.max(1) + 1];
    let two_pi_sq = std::f64::consts::TAU * std::f64::consts::TAU;
    let (mut a, mut scale) = (1.0, 1.0);
    let mut k = 0usize;
    while 2 * k < degree.max(1) {
        coeffs[2 * k + 1] = a * scale;
        // a_{k+1} = a_k (2k+1)^2 / ((2k+2)(2k+3))
        let kf = k as f64;
        a *= (2.0 * kf + 1.0) * (2.0 * kf + 1.0) / ((2.0 * kf + 2.0) * (2.0 * kf + 3.0));
        scale *= two_pi_sq;
        k += 1;
    }
    coeffs
}

/// Han–Ki node placement for `cos(2pi (x - 1/4) / 2^r)` (or any entire function whose
/// derivatives grow geometrically, which makes the placement independent of `r`): `degree + 1` nodes, `deg_i` of them
/// (Chebyshev points) in each interval `[i - delta, i + delta]`, `delta = 2^-ratio`,
/// `|i| <= K - 1`, symmetric in `i`. Starting from one node per interval, a node is added
/// where the interpolation error bound
/// `(2pi/2^r)^n / n! * max_{|x - i| <= delta} prod_nodes |x - x_j|`
/// is largest (two, at `+-i`, off the centre). Needs `degree + 1 >= 2K - 1`.
pub fn han_ki_nodes(
    k: usize,
    degree: usize,
    log_message_ratio: u32,
) -> Result<Vec<f64>, ApproxError> {
    if k == 0 || degree + 1 < 2 * k - 1 {
        return Err(ApproxError::InvalidParameter {
            what: format!(
                "Han–Ki nodes need K >= 1 and degree + 1 >= 2K - 1 = {}, got degree {degree}",
                2 * k.max(1) - 1
            ),
        });
    }
    let delta = (-f64::from(log_message_ratio)).exp2();
    let mut counts = vec![1usize; k]; // counts[i] = nodes at +i (and at -i for i > 0)
    let mut total = 2 * k - 1;
    // log2 of the node-dependent factor of the bound at integer i (the common
    // (2pi/2^r)^n / n! factor does not change the argmax).
    let log_bound = |counts: &[usize], i: usize| -> f64 {
        let mut sum = 1.0 + counts[i] as f64 * (delta / 2.0).log2();
        for (l, &c) in counts.iter().enumerate() {
            for signed in [l as f64, -(l as f64)] {
                if l == 0 && signed < 0.0 {
                    continue; // the centre interval is counted once
                }
                if l == i && signed >= 0.0 {
                    continue; // the interval itself is in the local factor
                }
                sum += c as f64 * ((i as f64 - signed).abs() + 2.0 * delta).log2();
            }
        }
        sum
    };
    while total < degree + 1 {
        let worst = (0..k)
            .max_by(|&i, &j| log_bound(&counts, i).total_cmp(&log_bound(&counts, j)))
            .unwrap_or(0);
        if worst != 0 && total + 2 <= degree + 1 {
            counts[worst] += 1;
            total += 2;
        } else {
            counts[0] += 1;
            total += 1;
        }
    }
    let mut nodes = Vec::with_capacity(total);
    for (i, &count) in counts.iter().enumerate() {
        for j in 0..count {
            let offset =
                delta * (std::f64::consts::PI * (2 * j + 1) as f64 / (2 * count) as f64).cos();
            nodes.push(i as f64 + offset);
            if i > 0 {
                nodes.push(-(i as f64) - offset);
            }
        }
    }
    nodes.sort_by(f64::total_cmp);
    Ok(nodes)
}

impl EvalModPolynomials {
    /// Builds the cosine polynomial, the double-angle constants and the arcsine correction.
    pub fn new(params: EvalModParams) -> Result<Self, ApproxError> {
        if params.k == 0 {
            return Err(ApproxError::InvalidParameter {
                what: "K must be >= 1".into(),
            });
        }
        if params.double_angles > 16 {
            return Err(ApproxError::InvalidParameter {
                what: "at most 16 double angles".into(),
            });
        }
        let r = params.double_angles;
        let s = cosine_scale(r);
        let shrink = f64::from(1u32 << r);
        let cos = move |x: f64| s * (std::f64::consts::TAU * (x - 0.25) / shrink).cos();
        let k = params.k as f64;
        let cosine = match params.nodes {
            CosineNodes::Chebyshev => ChebyshevSeries::interpolate(cos, -k, k, params.degree)?,
            CosineNodes::HanKi => {
                let nodes = han_ki_nodes(params.k, params.degree, params.log_message_ratio)?;
                ChebyshevSeries::interpolate_at(cos, -k, k, &nodes)?
            }
        };
        let double_angle_constants = (1..=r).map(|i| s.powf(f64::from(1u32 << i))).collect();
        Ok(Self {
            params,
            cosine,
            double_angle_constants,
            arcsine: arcsine_taylor(params.arcsine_degree),
        })
    }

    /// The f64 pipeline: cosine polynomial, double angles, arcsine; approximates
    /// `x - round(x)` for `x` within `2^-ratio` of an integer of `[-(K-1), K-1]`.
    pub fn evaluate(&self, x: f64) -> f64 {
        let y = self
            .double_angle_constants
            .iter()
            .fold(self.cosine.evaluate(x), |y, c| 2.0 * y * y - c);
        self.arcsine.iter().rev().fold(0.0, |acc, c| acc * y + c)
    }

    /// End-to-end error on `x = I + m`, every integer `|I| <= K - 1`, `m` on
    /// `points_per_integer` uniform points of `[-m_bound, m_bound]`, against `m`.
    pub fn measure(&self, m_bound: f64, points_per_integer: usize) -> EvalModReport {
        let k = self.params.k as i64 - 1;
        let steps = points_per_integer.max(2) - 1;
        let mut sum_bits = 0.0;
        let mut count = 0usize;
        let samples = (-k..=k).flat_map(|i| {
            (0..=steps).map(move |j| (i as f64, m_bound * (2.0 * j as f64 / steps as f64 - 1.0)))
        });
        let error = ErrorReport::from_samples(samples.map(|(i, m)| {
            let x = i + m;
            let got = self.evaluate(x);
            // the target is x - I as it is represented in f64 (m itself for small I)
            let want = x - i;
            let err = (got - want).abs().max(f64::MIN_POSITIVE);
            sum_bits += -err.log2();
            count += 1;
            (x, want, got)
        }));
        let ratio_bits = -m_bound.log2();
        EvalModReport {
            max_abs_error: error.max_abs,
            rms_error: error.rms,
            worst_input: error.argmax,
            log2_max_error: error.max_abs.log2(),
            message_bits_worst: -error.max_abs.log2() - ratio_bits,
            message_bits_mean: sum_bits / count.max(1) as f64 - ratio_bits,
            cosine_l1_norm: self.cosine.l1_norm(),
        }
    }
}

/// Measured end-to-end EvalMod error.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EvalModReport {
    /// `max |EvalMod(I + m) - m|`.
    pub max_abs_error: f64,
    /// Root mean square error.
    pub rms_error: f64,
    /// Where the max error is attained.
    pub worst_input: f64,
    /// `log2` of the max error.
    pub log2_max_error: f64,
    /// Bits of a message of full size `|m| = m_bound`: `-log2(max err) - log2(1/m_bound)`.
    pub message_bits_worst: f64,
    /// The same from the mean over samples of `-log2 err`.
    pub message_bits_mean: f64,
    /// `sum |c_k|` of the cosine polynomial (how much it amplifies coefficient errors).
    pub cosine_l1_norm: f64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f64::consts::TAU;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    fn params(
        degree: usize,
        double_angles: u32,
        arcsine_degree: usize,
        log_message_ratio: u32,
        nodes: CosineNodes,
    ) -> EvalModParams {
        EvalModParams {
            k: 16,
            degree,
            double_angles,
            log_message_ratio,
            nodes,
            arcsine_degree,
        }
    }

    #[test]
    fn arcsine_taylor_coefficients() {
        let c = arcsine_taylor(7);
        let t2 = TAU * TAU;
        let expected = [
            0.0,
            1.0,
            0.0,
            t2 / 6.0,
            0.0,
            3.0 * t2 * t2 / 40.0,
            0.0,
            5.0 * t2 * t2 * t2 / 112.0,
        ];
        for (a, b) in c.iter().zip(expected) {
            assert!((a - b).abs() <= 1e-15 * b.abs());
        }
        assert_eq!(arcsine_taylor(0), vec![0.0, 1.0]);
        // It inverts sin(2 pi m) / (2 pi) to the next Taylor term: 35/1152 (2pi)^8 m^9.
        let m = 2f64.powi(-8);
        let y = (TAU * m).sin() / TAU;
        let err = (c.iter().rev().fold(0.0, |acc, c| acc * y + c) - m).abs();
        assert!(
            err < 2.0 * 35.0 / 1152.0 * t2.powi(4) * m.powi(9),
            "{err:e}"
        );
    }

    #[test]
    fn double_angle_constants_end_at_one_over_two_pi() -> TestResult {
        for r in 0..=4 {
            let p = EvalModPolynomials::new(params(40, r, 0, 8, CosineNodes::Chebyshev))?;
            let last = p.double_angle_constants.last().copied().unwrap_or(f64::NAN);
            if r > 0 {
                assert!((last - 1.0 / TAU).abs() < 1e-15, "r={r}");
            }
            assert!((cosine_scale(r).powi(1 << r) - 1.0 / TAU).abs() < 1e-15);
        }
        Ok(())
    }

    #[test]
    fn han_ki_nodes_sit_near_the_integers() -> TestResult {
        for (degree, ratio) in [(30, 8), (40, 8), (62, 12)] {
            let nodes = han_ki_nodes(16, degree, ratio)?;
            assert_eq!(nodes.len(), degree + 1);
            let delta = (-f64::from(ratio)).exp2();
            for x in &nodes {
                assert!(
                    (x - x.round()).abs() <= delta && x.round().abs() <= 15.0,
                    "{x}"
                );
            }
            // symmetric
            for (a, b) in nodes.iter().zip(nodes.iter().rev()) {
                assert!((a + b).abs() < 1e-15);
            }
        }
        // One node per integer at degree 2K - 2; extra nodes go where the bound is worst,
        // the outer integers (whose distance products are largest) first.
        let nodes = han_ki_nodes(16, 32, 8)?;
        assert_eq!(
            nodes
                .iter()
                .filter(|x| (x.abs() - 15.0).abs() < 0.1)
                .count(),
            4
        );
        assert_eq!(
            han_ki_nodes(16, 20, 8).map_err(|e| e.to_string()),
            Err("invalid parameter: Han–Ki nodes need K >= 1 and degree + 1 >= 2K - 1 = 31, got degree 20".to_string())
        );
        Ok(())
    }

    /// Without arcsine and with an accurate cosine, the error at |m| = 2^-ratio is the sine's
    /// bias m - sin(2 pi m)/(2 pi) ~ (2 pi)^2 m^3 / 6: the pipeline matches it to 0.01 bit.
    #[test]
    fn the_sine_bias_is_the_floor_without_arcsine() -> TestResult {
        for ratio in [8u32, 10] {
            let m = (-f64::from(ratio)).exp2();
            let bias = m - (TAU * m).sin() / TAU;
            let report = EvalModPolynomials::new(params(48, 3, 0, ratio, CosineNodes::Chebyshev))?
                .measure(m, 33);
            assert!(
                (report.log2_max_error - bias.log2()).abs() < 0.01,
                "{} vs {}",
                report.log2_max_error,
                bias.log2()
            );
        }
        Ok(())
    }

    /// Han–Ki interpolates at the integers' neighbourhoods: at m = 0 (degree 30: nodes at the
    /// integers) the cosine polynomial is exact to rounding.
    #[test]
    fn han_ki_is_exact_at_the_nodes() -> TestResult {
        let p = EvalModPolynomials::new(EvalModParams::lattigo_default())?;
        let s = cosine_scale(3);
        for i in -15..=15 {
            let x = f64::from(i);
            let exact = s * (TAU * (x - 0.25) / 8.0).cos();
            assert!((p.cosine.evaluate(x) - exact).abs() < 1e-15, "{i}");
            assert!(p.evaluate(x).abs() < 1e-14, "{i}");
        }
        Ok(())
    }

    /// The EvalMod design table for K = 16 (printed with --nocapture): end-to-end f64 error of
    /// cosine -> r double angles -> arcsine on I + m, |I| <= 15, |m| <= 2^-ratio, for ratios
    /// 2^8..2^12, as bits of a full-size message (`-log2 max err - ratio`). Thresholds are the
    /// measured values minus 0.5 bit; the f64 floor of the pipeline is ~2^-47 absolute.
    #[test]
    fn eval_mod_error_table() -> TestResult {
        use CosineNodes::{Chebyshev, HanKi};
        // (nodes, degree, r, arcsine degree, min message bits at ratios 8, 9, 10, 11, 12)
        let rows = [
            (HanKi, 30, 3, 0, [12.6, 14.3, 15.4, 15.9, 16.0]),
            (Chebyshev, 30, 3, 0, [12.8, 14.7, 16.5, 17.4, 17.0]),
            (HanKi, 30, 3, 7, [16.0, 16.0, 16.1, 16.1, 16.1]),
            (Chebyshev, 30, 3, 7, [21.1, 20.1, 19.2, 18.2, 17.2]),
            (HanKi, 34, 3, 7, [36.3, 36.3, 36.0, 35.5, 35.1]),
            (Chebyshev, 34, 3, 7, [30.6, 29.6, 28.6, 27.6, 26.6]),
            (Chebyshev, 40, 3, 0, [12.7, 14.7, 16.7, 18.7, 20.7]),
            (HanKi, 40, 3, 7, [39.2, 38.2, 36.7, 36.0, 34.5]),
            (Chebyshev, 40, 3, 7, [38.4, 37.6, 36.6, 35.6, 34.6]),
            (HanKi, 48, 2, 7, [35.8, 35.5, 35.3, 35.4, 34.8]),
            (Chebyshev, 48, 2, 7, [24.5, 23.5, 22.5, 21.5, 20.5]),
            (Chebyshev, 60, 2, 7, [39.7, 38.7, 37.8, 36.7, 35.8]),
            (Chebyshev, 40, 4, 7, [37.7, 36.6, 35.6, 34.6, 33.7]),
        ];
        println!("K = 16; cells: log2 max abs error / message bits (worst), ratios 2^8 .. 2^12");
        for (nodes, degree, r, arcsine, min_bits) in rows {
            let mut line = format!(
                "{:<9} d={degree:<3} r={r} asin={arcsine}:",
                format!("{nodes:?}")
            );
            for (ratio, min) in (8u32..=12).zip(min_bits) {
                let p = EvalModPolynomials::new(params(degree, r, arcsine, ratio, nodes))?;
                let report = p.measure((-f64::from(ratio)).exp2(), 65);
                line += &format!(
                    "  {:>6.2}/{:>5.2}",
                    report.log2_max_error, report.message_bits_worst
                );
                assert!(report.message_bits_worst >= min, "{line} <- below {min}");
            }
            println!("{line}");
        }
        Ok(())
    }

    #[test]
    fn rejects_bad_designs() {
        assert!(
            EvalModPolynomials::new(EvalModParams {
                k: 0,
                ..EvalModParams::lattigo_default()
            })
            .is_err()
        );
        assert!(
            EvalModPolynomials::new(EvalModParams {
                degree: 10,
                ..EvalModParams::lattigo_default()
            })
            .is_err()
        );
        assert!(
            EvalModPolynomials::new(EvalModParams {
                double_angles: 17,
                ..EvalModParams::lattigo_default()
            })
            .is_err()
        );
    }
}
