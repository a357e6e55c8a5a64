//! Lattigo-style precision statistics of an obtained vector against the expected one: log2 precision (min/max/mean/median/std) per real, imaginary and L2 component, and absolute errors.

use std::fmt;

use num_complex::Complex64;

/// Precision given to an exact slot unless a cap is set: well above f64's 53 bits.
pub const DEFAULT_CAP_BITS: f64 = 64.0;

/// A malformed pair of vectors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PrecisionError {
    /// The two vectors differ in length.
    #[error("expected {expected} values, obtained {obtained}")]
    LengthMismatch {
        /// Length of the expected vector.
        expected: usize,
        /// Length of the obtained vector.
        obtained: usize,
    },
    /// Nothing to measure.
    #[error("cannot measure the precision of empty vectors")]
    Empty,
}

/// Order statistics of per-slot log2 precision for one component.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BitStats {
    /// Worst slot.
    pub min: f64,
    /// Best slot.
    pub max: f64,
    /// Mean over slots of `-log2 |error|`.
    pub mean: f64,
    /// Median over slots.
    pub median: f64,
    /// Standard deviation over slots.
    pub std: f64,
}

impl BitStats {
    fn of(mut bits: Vec<f64>) -> Self {
        let n = bits.len() as f64;
        let mean = bits.iter().sum::<f64>() / n;
        let variance = bits.iter().map(|b| (b - mean) * (b - mean)).sum::<f64>() / n;
        bits.sort_by(f64::total_cmp);
        let mid = bits.len() / 2;
        let median = if bits.len() % 2 == 1 {
            bits[mid]
        } else {
            0.5 * (bits[mid - 1] + bits[mid])
        };
        Self {
            min: bits[0],
            max: bits[bits.len() - 1],
            mean,
            median,
            std: variance.sqrt(),
        }
    }
}

/// Precision of `obtained` against `expected`.
///
/// The precision of one slot is `-log2 |obtained - expected|`, per component (real part,
/// imaginary part, modulus of the complex error), as in Lattigo `schemes/ckks/precision.go`;
/// the "mean precision" is the mean of these logarithms (not `-log2` of the mean error).
/// An exact slot (error 0) counts as `cap_bits`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PrecisionStats {
    /// Number of slots measured.
    pub slots: usize,
    /// Bits of the real parts.
    pub real: BitStats,
    /// Bits of the imaginary parts (all `cap_bits` for real vectors).
    pub imag: BitStats,
    /// Bits of the complex error modulus.
    pub l2: BitStats,
    /// Mean of `|obtained - expected|` (complex modulus).
    pub mean_abs_error: f64,
    /// Max of `|obtained - expected|` (complex modulus).
    pub max_abs_error: f64,
    /// Precision assigned to an exact slot.
    pub cap_bits: f64,
}

impl PrecisionStats {
    /// Statistics of complex vectors, exact slots counted as [`DEFAULT_CAP_BITS`].
    pub fn complex(expected: &[Complex64], obtained: &[Complex64]) -> Result<Self, PrecisionError> {
        Self::complex_capped(expected, obtained, DEFAULT_CAP_BITS)
    }

    /// Statistics of complex vectors, exact slots (and any better than `cap_bits`) counted as
    /// `cap_bits` (Lattigo caps at log2 of the scale).
    pub fn complex_capped(
        expected: &[Complex64],
        obtained: &[Complex64],
        cap_bits: f64,
    ) -> Result<Self, PrecisionError> {
        if expected.len() != obtained.len() {
            return Err(PrecisionError::LengthMismatch {
                expected: expected.len(),
                obtained: obtained.len(),
            });
        }
        if expected.is_empty() {
            return Err(PrecisionError::Empty);
        }
        // A NaN error stays NaN (f64::min would silently turn it into the cap).
        let bits = |e: f64| match e {
            e if e.is_nan() => f64::NAN,
            0.0 => cap_bits,
            e => (-e.log2()).min(cap_bits),
        };
        let n = expected.len();
        let (mut real, mut imag, mut l2) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        let (mut sum_abs, mut max_abs) = (0.0f64, 0.0f64);
        for (want, have) in expected.iter().zip(obtained) {
            let err = have - want;
            let modulus = err.norm();
            real.push(bits(err.re.abs()));
            imag.push(bits(err.im.abs()));
            l2.push(bits(modulus));
            sum_abs += modulus;
            // NaN errors must not hide behind f64::max (which drops NaN): keep them.
            max_abs = if max_abs.is_nan() || modulus.is_nan() {
                f64::NAN
            } else {
                max_abs.max(modulus)
            };
        }
        Ok(Self {
            slots: n,
            real: BitStats::of(real),
            imag: BitStats::of(imag),
            l2: BitStats::of(l2),
            mean_abs_error: sum_abs / n as f64,
            max_abs_error: max_abs,
            cap_bits,
        })
    }

    /// Statistics of real vectors (imaginary components are exact).
    pub fn real(expected: &[f64], obtained: &[f64]) -> Result<Self, PrecisionError> {
        Self::real_capped(expected, obtained, DEFAULT_CAP_BITS)
    }

    /// [`Self::real`] with an explicit cap for exact slots.
    pub fn real_capped(
        expected: &[f64],
        obtained: &[f64],
        cap_bits: f64,
    ) -> Result<Self, PrecisionError> {
        let lift = |v: &[f64]| {
            v.iter()
                .map(|&x| Complex64::new(x, 0.0))
                .collect::<Vec<_>>()
        };
        Self::complex_capped(&lift(expected), &lift(obtained), cap_bits)
    }

    /// One line for bench tables: `prec min/mean/median (L2) and errors`.
    pub fn summary(&self) -> String {
        format!(
            "log2 prec min {:.2} mean {:.2} median {:.2} | err mean {:.3e} max {:.3e}",
            self.l2.min, self.l2.mean, self.l2.median, self.mean_abs_error, self.max_abs_error
        )
    }
}

impl fmt::Display for PrecisionStats {
    /// A small table: one row per statistic, one column per component.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "precision over {} slots (log2)   REAL    IMAG      L2",
            self.slots
        )?;
        type Column = fn(&BitStats) -> f64;
        let rows: [(&str, Column); 5] = [
            ("min", |s| s.min),
            ("max", |s| s.max),
            ("mean", |s| s.mean),
            ("median", |s| s.median),
            ("std", |s| s.std),
        ];
        for (name, get) in rows {
            writeln!(
                f,
                "  {name:<29} {:>6.2}  {:>6.2}  {:>6.2}",
                get(&self.real),
                get(&self.imag),
                get(&self.l2)
            )?;
        }
        write!(
            f,
            "  abs error mean {:.3e}  max {:.3e}",
            self.mean_abs_error, self.max_abs_error
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    #[test]
    fn known_errors_give_known_bits() -> TestResult {
        let want = vec![Complex64::new(0.5, -0.25); 4];
        let errors = [2f64.powi(-10), 2f64.powi(-20), 2f64.powi(-30), 0.0];
        let have: Vec<Complex64> = want
            .iter()
            .zip(errors)
            .map(|(w, e)| w + Complex64::new(e, -2.0 * e))
            .collect();
        let stats = PrecisionStats::complex(&want, &have)?;
        assert_eq!(stats.slots, 4);
        assert_eq!((stats.real.min, stats.real.max), (10.0, DEFAULT_CAP_BITS));
        assert_eq!(stats.real.mean, (10.0 + 20.0 + 30.0 + 64.0) / 4.0);
        assert_eq!(stats.real.median, 25.0);
        assert_eq!((stats.imag.min, stats.imag.median), (9.0, 24.0));
        // |e (1 - 2i)| = sqrt(5) e
        assert!((stats.l2.min - (10.0 - 5f64.sqrt().log2())).abs() < 1e-12);
        assert!((stats.max_abs_error - 5f64.sqrt() * 2f64.powi(-10)).abs() < 1e-18);
        let expected_mean = 5f64.sqrt() * errors.iter().sum::<f64>() / 4.0;
        assert!((stats.mean_abs_error - expected_mean).abs() < 1e-18);
        let std = ((10.0f64 - 31.0).powi(2) + 11.0f64.powi(2) + 1.0 + 33.0f64.powi(2)) / 4.0;
        assert!((stats.real.std - std.sqrt()).abs() < 1e-12);
        Ok(())
    }

    #[test]
    fn real_vectors_and_caps() -> TestResult {
        let stats =
            PrecisionStats::real_capped(&[1.0, 2.0, 3.0], &[1.0, 2.0 + 2f64.powi(-40), 3.0], 30.0)?;
        assert_eq!(
            (stats.real.min, stats.real.max, stats.real.median),
            (30.0, 30.0, 30.0)
        );
        assert_eq!(stats.imag.min, 30.0);
        assert_eq!(stats.cap_bits, 30.0);
        let stats = PrecisionStats::real(&[1.0, 2.0], &[1.5, 2.0])?;
        assert_eq!((stats.real.min, stats.real.median), (1.0, 32.5));
        Ok(())
    }

    #[test]
    fn nan_is_never_hidden() -> TestResult {
        let stats = PrecisionStats::real(&[1.0, 2.0], &[f64::NAN, 2.0])?;
        assert!(stats.max_abs_error.is_nan() && stats.real.mean.is_nan() && stats.l2.mean.is_nan());
        // Sorted by total order, the NaN slot is an extreme (max or min, by its sign bit).
        assert!(stats.l2.max.is_nan() || stats.l2.min.is_nan());
        Ok(())
    }

    #[test]
    fn rejects_mismatched_or_empty_vectors() {
        assert_eq!(
            PrecisionStats::real(&[1.0], &[1.0, 2.0]).map_err(|e| e.to_string()),
            Err("expected 1 values, obtained 2".to_string())
        );
        assert_eq!(
            PrecisionStats::complex(&[], &[]).map_err(|e| e.to_string()),
            Err("cannot measure the precision of empty vectors".to_string())
        );
    }

    #[test]
    fn renders_a_compact_table() -> TestResult {
        let stats = PrecisionStats::real(&[0.0, 0.0], &[2f64.powi(-20), 2f64.powi(-22)])?;
        let text = stats.to_string();
        assert_eq!(text.lines().count(), 7);
        assert!(text.starts_with("precision over 2 slots (log2)   REAL    IMAG      L2\n"));
        assert!(
            text.contains("  mean                           21.00   64.00   21.00\n"),
            "{text}"
        );
        assert!(
            text.ends_with("abs error mean 5.960e-7  max 9.537e-7"),
            "{text}"
        );
        assert_eq!(
            stats.summary(),
            "log2 prec min 20.00 mean 21.00 median 21.00 | err mean 5.960e-7 max 9.537e-7"
        );
        Ok(())
    }
}
