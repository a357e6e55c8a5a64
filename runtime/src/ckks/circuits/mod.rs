//! Leveled circuits over the scheme: linear transforms (BSGS with double hoisting), Chebyshev polynomial evaluation at an exact target scale, and bootstrapping.

pub mod bootstrap;
pub mod lintrans;
pub mod polynomial;

pub use bootstrap::{BootstrapConfig, Bootstrapper};
pub use lintrans::LinearTransform;
pub use polynomial::{ChebyshevEvaluation, PolynomialEvaluator};
