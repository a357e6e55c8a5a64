//! Chebyshev series evaluated on ciphertexts by baby-step giant-step (Paterson–Stockmeyer in the Chebyshev basis), in depth ceil(log2(d+1)), with per-node scales computed backwards so the output lands on an exact target scale.
//!
//! The input x in [a, b] is mapped to t = (2x - a - b)/(b - a) (one level unless the
//! interval is [-1, 1]). Baby powers T_1..T_{2^lb} and giant powers T_{2^s} come from
//! T_{2k} = 2 T_k^2 - 1 and T_{2k+1} = 2 T_{k+1} T_k - T_1, each product rescaled once with
//! the subtracted term brought to the product's exact scale first (T_i sits ceil(log2 i)
//! levels below t).
//!
//! A node p evaluated at (level l, scale s) is a leaf `sum_i c_i T_i` when every T_i it
//! uses exists (i <= 2^lb) and sits above l: each T_i is dropped to l + 1, multiplied by c_i
//! encoded at s q_{l+1} / scale(T_i), summed and rescaled once. Otherwise it is split by
//! the largest power of two m <= deg p (`ChebyshevSeries::divide_by_chebyshev`):
//! p = q T_m + r, with r evaluated at (l, s) and q at (l + 1, s q_{l+1} / scale(T_m)), so
//! that q T_m rescaled by q_{l+1} has scale exactly s (the backward scale propagation of
//! Lattigo `circuits/ckks/polynomial`; Bossuat et al. 2021). With 2^j levels of budget a
//! leaf may use T_i up to i = 2^(j-1), so every series of degree d < 2^k evaluates k levels
//! below t: leaves stay small (about 2^lb terms) and the depth is ceil(log2(d+1)).

use std::collections::BTreeMap;

use crate::ckks::numerics::chebyshev::ChebyshevSeries;
use crate::ckks::scheme::{Ciphertext, Error, Evaluator};

/// Coefficients of smaller magnitude are treated as zero.
const NEGLIGIBLE: f64 = 1e-300;

/// A Chebyshev series with its evaluation plan (baby-step count).
#[derive(Debug, Clone)]
pub struct ChebyshevEvaluation {
    series: ChebyshevSeries,
    log_baby: u32,
}

/// ceil(log2(i)) for i >= 1: the levels T_i sits below t.
fn power_depth(i: usize) -> usize {
    (usize::BITS - (i - 1).leading_zeros()) as usize
}

/// The largest power of two <= d (d >= 1).
fn split_point(d: usize) -> usize {
    1 << (usize::BITS - 1 - d.leading_zeros())
}

fn is_zero(p: &ChebyshevSeries) -> bool {
    p.coeffs().iter().all(|c| c.abs() <= NEGLIGIBLE)
}

fn used_powers(p: &ChebyshevSeries) -> impl Iterator<Item = usize> + '_ {
    p.coeffs()
        .iter()
        .enumerate()
        .skip(1)
        .filter(|(_, c)| c.abs() > NEGLIGIBLE)
        .map(|(i, _)| i)
}

impl ChebyshevEvaluation {
    /// Plans the evaluation of `series` with 2^log_baby baby steps (None: about sqrt(d),
    /// the fewest ciphertext products).
    pub fn new(series: ChebyshevSeries, log_baby: Option<u32>) -> Self {
        let degree = series.degree();
        let log_d1 = usize::BITS - degree.leading_zeros();
        let log_baby = log_baby.unwrap_or((log_d1 / 2).max(1)).max(1);
        Self { series, log_baby }
    }

    /// The series.
    pub fn series(&self) -> &ChebyshevSeries {
        &self.series
    }

    /// log2 of the baby-step count.
    pub fn log_baby(&self) -> u32 {
        self.log_baby
    }

    /// The highest T index the power basis holds: 2^lb, or the degree if smaller.
    fn top_baby(&self) -> usize {
        (1usize << self.log_baby).min(self.series.degree().max(1))
    }

    /// Levels consumed after the change of interval: ceil(log2(d+1)) for d >= 1.
    pub fn depth(&self) -> usize {
        let top = self.top_baby();
        let level_of = |i: usize| -> Option<isize> {
            (i <= top || i.is_power_of_two()).then(|| -(power_depth(i) as isize))
        };
        (1..=64)
            .find(|&depth| feasible(&self.series, -(depth as isize), &level_of))
            .unwrap_or(usize::MAX)
    }
}

/// Whether `p` can be evaluated at `level` given the level of each T_i (None: absent),
/// following the leaf-or-split rule of the module doc.
fn feasible(p: &ChebyshevSeries, level: isize, level_of: &dyn Fn(usize) -> Option<isize>) -> bool {
    let leaf_ok = used_powers(p).all(|i| level_of(i).is_some_and(|l| l > level));
    if leaf_ok {
        // A leaf also needs some T to carry the ciphertext (T_1 at worst).
        return level_of(1).is_some_and(|l| l > level);
    }
    let m = split_point(p.degree());
    let Ok((q, r)) = p.divide_by_chebyshev(m) else {
        return false;
    };
    let q_ok = is_zero(&q)
        || (level_of(m).is_some_and(|l| l > level) && feasible(&q, level + 1, level_of));
    q_ok && feasible(&r, level, level_of)
}

/// Evaluates Chebyshev series on ciphertexts.
#[derive(Debug)]
pub struct PolynomialEvaluator<'e, 'k> {
    eval: &'e Evaluator<'k>,
}

/// The power basis: T_i by index, each with its own level and exact scale.
struct PowerBasis {
    powers: BTreeMap<usize, Ciphertext>,
}

impl PowerBasis {
    fn level_of(&self, i: usize) -> Option<isize> {
        self.powers.get(&i).map(|c| c.level() as isize)
    }
}

impl<'e, 'k> PolynomialEvaluator<'e, 'k> {
    /// An evaluator over `eval` (needs the relinearization key).
    pub fn new(eval: &'e Evaluator<'k>) -> Self {
        Self { eval }
    }

    /// p(x) slot-wise, landing at the highest level the plan allows (`depth()` levels
    /// below the mapped input) with exactly the default scale of that level, or
    /// `target_scale` if given.
    pub fn evaluate(
        &self,
        ct: &Ciphertext,
        plan: &ChebyshevEvaluation,
        target_scale: Option<f64>,
    ) -> Result<Ciphertext, Error> {
        let needed = plan.depth() + usize::from(needs_mapping(&plan.series));
        if ct.level() < needed {
            return Err(Error::LevelTooLow {
                op: "polynomial evaluation",
                level: ct.level(),
                needed,
            });
        }
        let t = self.change_interval(ct, plan.series.a(), plan.series.b())?;
        let basis = self.power_basis(&t, plan)?;
        let level_of = |i: usize| basis.level_of(i);
        let level = (0..=t.level())
            .rev()
            .find(|&l| feasible(&plan.series, l as isize, &level_of))
            .ok_or(Error::LevelTooLow {
                op: "polynomial evaluation",
                level: ct.level(),
                needed,
            })?;
        let scale = target_scale.unwrap_or_else(|| self.eval.params().default_scale(level));
        self.eval_node(&basis, &plan.series, level, scale)
    }

    /// t = (2x - a - b)/(b - a), one rescale unless [a, b] = [-1, 1].
    fn change_interval(&self, ct: &Ciphertext, a: f64, b: f64) -> Result<Ciphertext, Error> {
        if a == -1.0 && b == 1.0 {
            return Ok(ct.clone());
        }
        if ct.level() == 0 {
            return Err(Error::LevelTooLow {
                op: "polynomial evaluation (change of interval)",
                level: 0,
                needed: 1,
            });
        }
        let q = self.eval.params().q()[ct.level()] as f64;
        let alpha = 2.0 / (b - a);
        let beta = -(a + b) / (b - a);
        let mut t = self.eval.mul_const(ct, alpha, q)?;
        self.eval.add_const_assign(&mut t, beta)?;
        self.eval.rescale_assign(&mut t)?;
        t.set_scale(ct.scale());
        Ok(t)
    }

    /// 2 a b - c (c = None: the constant 1), rescaled once; the operands are dropped to
    /// a common level and c is brought to the product's exact scale before subtracting.
    fn chebyshev_product(
        &self,
        a: &Ciphertext,
        b: &Ciphertext,
        c: Option<&Ciphertext>,
    ) -> Result<Ciphertext, Error> {
        let eval = self.eval;
        let level = a.level().min(b.level());
        let a = eval.drop_to_level(a, level)?;
        let b = eval.drop_to_level(b, level)?;
        let mut prod = if a == b {
            eval.square(&a)?
        } else {
            eval.mul_relin(&a, &b)?
        };
        prod = eval.mul_int(&prod, 2)?;
        match c {
            None => eval.add_const_assign(&mut prod, -1.0)?,
            Some(c) => {
                let c = eval.drop_to_level(c, level)?;
                let adjusted = eval.mul_const(&c, 1.0, prod.scale() / c.scale())?;
                let mut adjusted = adjusted;
                adjusted.set_scale(prod.scale());
                eval.sub_assign(&mut prod, &adjusted)?;
            }
        }
        eval.rescale_assign(&mut prod)?;
        Ok(prod)
    }

    fn power_basis(&self, t: &Ciphertext, plan: &ChebyshevEvaluation) -> Result<PowerBasis, Error> {
        let mut powers = BTreeMap::new();
        powers.insert(1usize, t.clone());
        let top = plan.top_baby();
        for i in 2..=top {
            let ti = if i % 2 == 0 {
                let h = &powers[&(i / 2)];
                self.chebyshev_product(h, h, None)?
            } else {
                let (hi, lo) = (&powers[&(i.div_ceil(2))], &powers[&(i / 2)]);
                self.chebyshev_product(hi, lo, Some(&powers[&1]))?
            };
            powers.insert(i, ti);
        }
        // Giant powers: every power of two up to the degree.
        let mut m = split_point(top) * 2;
        while m <= plan.series.degree() {
            let h = &powers[&(m / 2)];
            let tm = self.chebyshev_product(h, h, None)?;
            powers.insert(m, tm);
            m *= 2;
        }
        Ok(PowerBasis { powers })
    }

    fn eval_node(
        &self,
        basis: &PowerBasis,
        p: &ChebyshevSeries,
        level: usize,
        scale: f64,
    ) -> Result<Ciphertext, Error> {
        let eval = self.eval;
        let leaf_ok = used_powers(p).all(|i| basis.level_of(i).is_some_and(|l| l > level as isize));
        if leaf_ok {
            return self.eval_leaf(basis, p, level, scale);
        }
        let m = split_point(p.degree());
        let (q, r) = p
            .divide_by_chebyshev(m)
            .map_err(|e| Error::InvalidArgument(e.to_string()))?;
        let mut out = self.eval_node(basis, &r, level, scale)?;
        if is_zero(&q) {
            return Ok(out);
        }
        let q_next = eval.params().q()[level + 1] as f64;
        let tm = eval.drop_to_level(&basis.powers[&m], level + 1)?;
        let q_scale = scale * q_next / tm.scale();
        let qv = self.eval_node(basis, &q, level + 1, q_scale)?;
        let mut prod = eval.mul_relin(&qv, &tm)?;
        eval.rescale_assign(&mut prod)?;
        prod.set_scale(scale);
        eval.add_assign(&mut out, &prod)?;
        Ok(out)
    }

    /// sum_i c_i T_i at (level, scale): each T_i dropped to level + 1 and multiplied by
    /// c_i at scale * q_{level+1} / scale(T_i), summed, c_0 added, one rescale.
    fn eval_leaf(
        &self,
        basis: &PowerBasis,
        p: &ChebyshevSeries,
        level: usize,
        scale: f64,
    ) -> Result<Ciphertext, Error> {
        let eval = self.eval;
        let q_next = eval.params().q()[level + 1] as f64;
        let target = scale * q_next;
        let mut acc: Option<Ciphertext> = None;
        for i in used_powers(p) {
            let c = p.coeffs()[i];
            let ti = eval.drop_to_level(&basis.powers[&i], level + 1)?;
            let mut term = eval.mul_const(&ti, c, target / ti.scale())?;
            term.set_scale(target);
            match &mut acc {
                None => acc = Some(term),
                Some(a) => eval.add_assign(a, &term)?,
            }
        }
        let mut acc = match acc {
            Some(a) => a,
            None => {
                // A constant: zero times T_1 carries the ciphertext shape.
                let t1 = eval.drop_to_level(&basis.powers[&1], level + 1)?;
                let mut zero = eval.mul_const(&t1, 0.0, target / t1.scale())?;
                zero.set_scale(target);
                zero
            }
        };
        eval.add_const_assign(&mut acc, p.coeffs()[0])?;
        eval.rescale_assign(&mut acc)?;
        acc.set_scale(scale);
        Ok(acc)
    }
}

fn needs_mapping(series: &ChebyshevSeries) -> bool {
    !(series.a() == -1.0 && series.b() == 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_is_ceil_log2_of_degree_plus_one() {
        for degree in [1usize, 2, 3, 4, 7, 8, 15, 16, 24, 31, 32, 63, 100, 127, 255] {
            let coeffs: Vec<f64> = (0..=degree).map(|i| 1.0 / (1.0 + i as f64)).collect();
            let series = ChebyshevSeries::new(-1.0, 1.0, coeffs).unwrap_or_else(|e| panic!("{e}"));
            for log_baby in [None, Some(1), Some(2), Some(3), Some(5)] {
                let plan = ChebyshevEvaluation::new(series.clone(), log_baby);
                let want = (usize::BITS - degree.leading_zeros()) as usize;
                assert_eq!(plan.depth(), want, "degree {degree} lb {log_baby:?}");
            }
        }
    }
}
