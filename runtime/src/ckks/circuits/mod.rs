//! Leveled circuits over the scheme: linear transforms (BSGS with double hoisting) and Chebyshev polynomial evaluation at an exact target scale.

pub mod lintrans;
pub mod polynomial;

pub use lintrans::LinearTransform;
pub use polynomial::{ChebyshevEvaluation, PolynomialEvaluator};
