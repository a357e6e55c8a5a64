//! Small dense linear solves in f64 (LU with partial pivoting) with iterative refinement whose residuals are accumulated in double-double, for Remez and node interpolation.

/// An unevaluated sum `hi + lo` with `|lo| <= ulp(hi)/2`: about 106 bits of significand
/// (Dekker; Hida–Li–Bailey's QD library), enough to form residuals of f64 systems exactly.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct DoubleDouble {
    /// Leading part.
    pub hi: f64,
    /// Trailing part.
    pub lo: f64,
}

/// `a + b = s + e` exactly (Knuth's TwoSum).
fn two_sum(a: f64, b: f64) -> (f64, f64) {
    let s = a + b;
    let bb = s - a;
    let e = (a - (s - bb)) + (b - bb);
    (s, e)
}

/// `a * b = p + e` exactly, by one fused multiply-add.
fn two_prod(a: f64, b: f64) -> (f64, f64) {
    let p = a * b;
    (p, a.mul_add(b, -p))
}

impl DoubleDouble {
    /// The exact value of an f64.
    pub fn from_f64(x: f64) -> Self {
        Self { hi: x, lo: 0.0 }
    }

    /// Rounded to f64.
    pub fn to_f64(self) -> f64 {
        self.hi + self.lo
    }

    /// `self + a * b` with `a, b` f64, the product taken exactly.
    pub fn add_product(self, a: f64, b: f64) -> Self {
        let (p, e) = two_prod(a, b);
        self + Self { hi: p, lo: e }
    }
}

impl std::ops::Add for DoubleDouble {
    type Output = Self;

    /// Accurate double-double addition (QD's `ieee_add`).
    fn add(self, other: Self) -> Self {
        let (s, e) = two_sum(self.hi, other.hi);
        let (t, f) = two_sum(self.lo, other.lo);
        let (s, e) = quick_two_sum(s, e + t);
        let (hi, lo) = quick_two_sum(s, e + f);
        Self { hi, lo }
    }
}

impl std::ops::Mul for DoubleDouble {
    type Output = Self;

    fn mul(self, other: Self) -> Self {
        let (p, e) = two_prod(self.hi, other.hi);
        let e = e + (self.hi * other.lo + self.lo * other.hi);
        let (hi, lo) = quick_two_sum(p, e);
        Self { hi, lo }
    }
}

impl std::ops::Neg for DoubleDouble {
    type Output = Self;

    fn neg(self) -> Self {
        Self {
            hi: -self.hi,
            lo: -self.lo,
        }
    }
}

/// `a + b = s + e` exactly when `|a| >= |b|`.
fn quick_two_sum(a: f64, b: f64) -> (f64, f64) {
    let s = a + b;
    (s, b - (s - a))
}

/// The system is singular to working precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("singular {size}x{size} system (zero pivot in column {column})")]
pub struct SingularMatrix {
    /// System size.
    pub size: usize,
    /// Column where elimination found no nonzero pivot.
    pub column: usize,
}

/// Solves `A x = b` for square row-major `a` (`n*n`), by LU with partial pivoting followed
/// by `refinements` steps of iterative refinement with residuals `b - A x` in double-double
/// (mixed-precision refinement, Higham "Accuracy and Stability", §12.1): it drives the
/// residual down to rounding level even for the badly scaled systems of clustered nodes.
pub fn solve(a: &[f64], b: &[f64], refinements: usize) -> Result<Vec<f64>, SingularMatrix> {
    let n = b.len();
    debug_assert_eq!(a.len(), n * n, "solve: a must be n*n");
    let (lu, perm) = lu_factor(a, n)?;
    let mut x = lu_solve(&lu, &perm, b);
    for _ in 0..refinements {
        let residual: Vec<f64> = (0..n)
            .map(|i| {
                let row = &a[i * n..(i + 1) * n];
                let mut acc = DoubleDouble::from_f64(b[i]);
                for (aij, xj) in row.iter().zip(&x) {
                    acc = acc.add_product(-aij, *xj);
                }
                acc.to_f64()
            })
            .collect();
        let correction = lu_solve(&lu, &perm, &residual);
        for (xi, di) in x.iter_mut().zip(&correction) {
            *xi += di;
        }
    }
    Ok(x)
}

/// Row-major LU factors (unit lower, upper) and the row permutation, in an AVX2 build of
/// the same code when the processor has it (no fused multiply-adds: the same roundings).
fn lu_factor(a: &[f64], n: usize) -> Result<(Vec<f64>, Vec<usize>), SingularMatrix> {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the processor supports AVX2 (checked just above).
        return unsafe { lu_factor_avx2(a, n) };
    }
    lu_factor_portable(a, n)
}

/// [`lu_factor_portable`] compiled for AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn lu_factor_avx2(a: &[f64], n: usize) -> Result<(Vec<f64>, Vec<usize>), SingularMatrix> {
    lu_factor_portable(a, n)
}

#[inline(always)]
fn lu_factor_portable(a: &[f64], n: usize) -> Result<(Vec<f64>, Vec<usize>), SingularMatrix> {
    let mut lu = a.to_vec();
    let mut perm: Vec<usize> = (0..n).collect();
    for col in 0..n {
        let pivot_row = (col..n)
            .max_by(|&i, &j| lu[i * n + col].abs().total_cmp(&lu[j * n + col].abs()))
            .unwrap_or(col);
        let pivot = lu[pivot_row * n + col];
        if pivot == 0.0 || !pivot.is_finite() {
            return Err(SingularMatrix {
                size: n,
                column: col,
            });
        }
        if pivot_row != col {
            for k in 0..n {
                lu.swap(col * n + k, pivot_row * n + k);
            }
            perm.swap(col, pivot_row);
        }
        for row in col + 1..n {
            let factor = lu[row * n + col] / pivot;
            lu[row * n + col] = factor;
            for k in col + 1..n {
                lu[row * n + k] -= factor * lu[col * n + k];
            }
        }
    }
    Ok((lu, perm))
}

fn lu_solve(lu: &[f64], perm: &[usize], b: &[f64]) -> Vec<f64> {
    let n = b.len();
    let mut y: Vec<f64> = perm.iter().map(|&p| b[p]).collect();
    for i in 0..n {
        let s: f64 = (0..i).map(|k| lu[i * n + k] * y[k]).sum();
        y[i] -= s;
    }
    for i in (0..n).rev() {
        let s: f64 = (i + 1..n).map(|k| lu[i * n + k] * y[k]).sum();
        y[i] = (y[i] - s) / lu[i * n + i];
    }
    y
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn double_double_keeps_what_f64_loses() {
        // (1 + 2^-60) - 1 is 2^-60 in double-double, 0 in f64.
        let x = DoubleDouble::from_f64(1.0) + DoubleDouble::from_f64(2f64.powi(-60));
        let d = x + DoubleDouble::from_f64(-1.0);
        assert_eq!(d.to_f64(), 2f64.powi(-60));
        // (1 + 2^-30)^2 = 1 + 2^-29 + 2^-60 exactly.
        let y = DoubleDouble::from_f64(1.0 + 2f64.powi(-30));
        let sq = y * y + DoubleDouble::from_f64(-1.0 - 2f64.powi(-29));
        assert_eq!(sq.to_f64(), 2f64.powi(-60));
        assert_eq!((-sq).to_f64(), -(2f64.powi(-60)));
    }

    #[test]
    fn solves_a_hilbert_system_to_its_conditioning() -> Result<(), SingularMatrix> {
        // Hilbert 8x8 (cond ~ 1.5e10) with x = 1: the refined solution has a residual at
        // rounding level and a forward error near cond * eps.
        let n = 8;
        let a: Vec<f64> = (0..n * n)
            .map(|k| 1.0 / ((k / n + k % n + 1) as f64))
            .collect();
        let b: Vec<f64> = (0..n).map(|i| (0..n).map(|j| a[i * n + j]).sum()).collect();
        let x = solve(&a, &b, 3)?;
        let worst = x.iter().map(|v| (v - 1.0).abs()).fold(0.0, f64::max);
        assert!(worst < 1e-5, "forward error {worst}");
        Ok(())
    }

    #[test]
    fn reports_singular_systems() {
        let a = [1.0, 2.0, 2.0, 4.0];
        assert_eq!(
            solve(&a, &[1.0, 2.0], 0),
            Err(SingularMatrix { size: 2, column: 1 })
        );
    }
}
