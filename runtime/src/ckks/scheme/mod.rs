//! The CKKS scheme over the arithmetic layer: parameters, encoder, keys, encryption, evaluation.

pub mod bench;
pub mod ciphertext;
pub mod encoder;
pub mod encryption;
pub mod error;
pub mod evaluator;
pub mod keys;
pub mod params;
pub mod serialize;

pub use ciphertext::{Ciphertext, Plaintext, TensorCiphertext};
pub use encoder::Encoder;
pub use encryption::{Decryptor, Encryptor};
pub use error::Error;
pub use evaluator::{Decomposed, Evaluator, ExtendedCiphertext};
pub use keys::{
    EncapsulationKeys, EvaluationKeys, KeyGenerator, PublicKey, SecretKey, SwitchingKey,
};
pub use params::{
    NamedSet, Params, ParamsError, ParamsLiteral, SecretDistribution, Security, SparseEstimate,
};
