//! EvalMod on ciphertexts: the scaled cosine polynomial of `numerics::eval_mod` (on x/K in [-1, 1], evaluated by the Chebyshev evaluator at an exact target scale) followed by the double-angle steps y <- 2y^2 - c.

use crate::ckks::circuits::polynomial::{ChebyshevEvaluation, PolynomialEvaluator};
use crate::ckks::numerics::chebyshev::ChebyshevSeries;
use crate::ckks::numerics::eval_mod::{EvalModParams, EvalModPolynomials};
use crate::ckks::scheme::{Ciphertext, Error, Evaluator};

use super::BootstrapError;

/// The homomorphic EvalMod of one design.
#[derive(Debug, Clone)]
pub(crate) struct HomomorphicEvalMod {
    pub(super) plan: ChebyshevEvaluation,
    pub(super) constants: Vec<f64>,
}

impl HomomorphicEvalMod {
    /// Builds the polynomials of `params`; the cosine series is re-read on [-1, 1] (the
    /// input is x/K, the 1/K folded into CoeffsToSlots).
    pub(crate) fn new(
        params: EvalModParams,
        log_baby: Option<u32>,
    ) -> Result<Self, BootstrapError> {
        let polys = EvalModPolynomials::new(params)?;
        let series = ChebyshevSeries::new(-1.0, 1.0, polys.cosine.coeffs().to_vec())?;
        // Default baby steps: up to the largest power of two <= the degree (T_1..T_32 for
        // degree 56). The cosine is a high-frequency polynomial whose BSGS quotients
        // amplify the rescale noise of the giant powers; with (almost) every power a baby
        // step the polynomial's own noise at the output is 2.7 bits lower than with the
        // sqrt(d) split (measured in `trace_tests`: 2^-42.4 -> 2^-45.0 t-units at
        // N = 2^13, 2^-41.4 -> 2^-44.0 at N = 2^14), at the same depth, for about 20 more
        // ciphertext products (see `BootstrapConfig::eval_mod_log_baby`).
        let degree = series.degree().max(1);
        let log_baby = log_baby.unwrap_or(usize::BITS - 1 - degree.leading_zeros());
        Ok(Self {
            plan: ChebyshevEvaluation::new(series, Some(log_baby)),
            constants: polys.double_angle_constants,
        })
    }

    /// Levels consumed.
    pub(crate) fn depth(&self) -> usize {
        self.plan.depth() + self.constants.len()
    }

    /// The scale after the polynomial lands on `poly_scale` at `poly_level` and the
    /// double angles rescale by the primes below (for planning the next transform).
    pub(crate) fn output_scale(&self, q: &[u64], poly_level: usize, poly_scale: f64) -> f64 {
        let mut s = poly_scale;
        for i in 0..self.constants.len() {
            s = s * s / q[poly_level - i] as f64;
        }
        s
    }

    /// The polynomial's output level for an input at `level`.
    pub(crate) fn poly_level(&self, level: usize) -> usize {
        level - self.plan.depth()
    }

    /// `sin(2 pi x) / (2 pi)` for slots x/K (real), landing `depth()` levels lower with
    /// scale `output_scale(q, poly_level, poly_scale)`.
    pub(crate) fn evaluate(
        &self,
        eval: &Evaluator<'_>,
        ct: &Ciphertext,
        poly_scale: f64,
    ) -> Result<Ciphertext, Error> {
        let mut y = PolynomialEvaluator::new(eval).evaluate(ct, &self.plan, Some(poly_scale))?;
        for &c in &self.constants {
            let mut sq = eval.square(&y)?;
            sq = eval.mul_int(&sq, 2)?;
            eval.add_const_assign(&mut sq, -c)?;
            eval.rescale_assign(&mut sq)?;
            y = sq;
        }
        Ok(y)
    }
}
