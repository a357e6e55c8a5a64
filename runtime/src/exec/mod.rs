//! Plan execution: weight binding, the semantics shared by both executors, the plaintext executor and the encrypted one.
//!
//! A checked [`Plan`](crate::plan::Plan) runs against [`BoundWeights`] (its tensors, found in
//! a checkpoint and checked by digest). What an op means on slot vectors is defined once
//! here and shared with the encrypted executor: recipe materialization ([`recipe`]), ternary
//! linear layers ([`linear`]), repacking ([`repack`]) and the client's codec ([`codec`]).
//! [`PlaintextExecutor`] runs a plan on f64 slot vectors: the reference the encrypted run is
//! compared against, op by op if need be ([`PlaintextExecutor::run_observed`]).
//! [`EncryptedExecutor`] runs it on ciphertexts with public evaluation keys only; the
//! client's steps around it (keys, encryption, decryption) are in [`encrypted::client`].

mod bind;
pub mod codec;
mod diagnostics;
pub mod encrypted;
mod error;
pub mod linear;
mod plaintext;
pub mod recipe;
pub mod repack;
pub mod slots;

pub use bind::BoundWeights;
pub use codec::{
    Activation, decode, decode_with_spread, embed_tokens, encode, encode_input, head_logits,
};
pub use diagnostics::{ApproxDiagnostic, BootstrapDiagnostic, Diagnostics, Work};
pub use encrypted::{EncryptedExecutor, EncryptedRun, Profile};
pub use error::ExecError;
pub use linear::{BlockDiagonals, ColumnSums, DiagonalPattern, SignedColumn};
pub use plaintext::{DecodedOutput, PlaintextExecutor, PlaintextRun, run, run_observed};
pub use recipe::{materialize, materialize_into, rope_frequency};
pub use repack::Repacking;
pub use slots::SlotVectors;

#[cfg(test)]
mod tests;
