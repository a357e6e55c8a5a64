//! Pure-f64 numerics under the CKKS layers: canonical embedding and its FFT factorization, Chebyshev/minimax approximation, EvalMod design, precision statistics.

pub mod chebyshev;
pub mod dft;
pub mod embedding;
pub mod eval_mod;
pub mod functions;
pub mod linalg;
pub mod precision;
pub mod remez;
