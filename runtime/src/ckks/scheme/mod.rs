//! The CKKS scheme over the arithmetic layer: parameters, encoder, keys, encryption, evaluation.

pub mod params;

pub use params::{
    NamedSet, Params, ParamsError, ParamsLiteral, SecretDistribution, Security, SparseEstimate,
};
