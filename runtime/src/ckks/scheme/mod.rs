//! The CKKS scheme over the arithmetic layer: parameters, encoder, keys, encryption, evaluation.

pub mod ciphertext;
pub mod encoder;
pub mod error;
pub mod params;

pub use ciphertext::{Ciphertext, Plaintext, TensorCiphertext};
pub use encoder::Encoder;
pub use error::Error;
pub use params::{
    NamedSet, Params, ParamsError, ParamsLiteral, SecretDistribution, Security, SparseEstimate,
};
