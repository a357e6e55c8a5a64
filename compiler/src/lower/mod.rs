//! Lowering: the rewritten model IR (with its approximation table) in, the typed HE dataflow graph out, each layer in the encoding chosen for it.
//!
//! [`lower`] turns each model op into HE ops on vectors of ciphertexts (see `build` for the
//! op-by-op scheme: RMSNorm's statistic on one ciphertext, ternary layers by columns or
//! block diagonals, RoPE as two projections, attention as `T` causal shifts), producing a
//! *logical* [`HeGraph`]: multiplicative ops consume one level each and no value has a level
//! yet. [`levels`] then realizes a level assignment (from the placement pass) as explicit
//! rescales, level drops, scale alignments and bootstraps with exact scales. [`encoding`]
//! chooses each layer's packing by the cost model, and [`verify()`] checks a graph's types
//! after every pass.

mod build;
pub mod encoding;
mod graph;
mod layout;
pub mod levels;
pub mod placement;
mod verify;

pub use build::{layer_count, lower};
pub use graph::{
    ApproxInfo, BootstrapHint, HeGraph, HeInput, HeNode, HeOp, HeType, Stage, Value, layout_label,
    region_label,
};
pub use layout::{Encoding, Shapes};
pub use verify::verify;

use crate::calibrate::Site;
use crate::ir::{Handle, Node};

/// Why a model cannot be lowered, or a graph is malformed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum LowerError {
    /// The sequence does not fit the ring's slots.
    #[error(
        "{tokens} tokens need column blocks of {block} slots (2T − 1 rounded up to a power of two), \
         but the ring has at most {max_slots} slots"
    )]
    TooManyTokens {
        /// T.
        tokens: u32,
        /// Slots a column block needs.
        block: u32,
        /// N/2.
        max_slots: u32,
    },
    /// An op has no HE lowering.
    #[error("{node} ({op}) cannot be lowered: {reason}")]
    Unsupported {
        /// The model node.
        node: Handle<Node>,
        /// Its mnemonic.
        op: &'static str,
        /// Why.
        reason: String,
    },
    /// A nonlinearity has no approximation in the table.
    #[error("{site} has no polynomial approximation (approximate the graph that is lowered)")]
    MissingApproximation {
        /// The site.
        site: Site,
    },
    /// The checkpoint lacks a tensor the graph names.
    #[error("the checkpoint has no ternary matrix `{name}`")]
    MissingWeight {
        /// The tensor name.
        name: String,
    },
    /// The graph has no `hidden` output.
    #[error("the graph has no `hidden` output (the plan returns the final-normed hidden state)")]
    NoHiddenOutput,
    /// One encoding per decoder layer is needed.
    #[error("{given} encodings given for {layers} decoder layers")]
    EncodingCount {
        /// Layers of the model.
        layers: usize,
        /// Encodings given.
        given: usize,
    },
    /// No encoding fits the machine's memory.
    #[error(
        "{policy} needs at least {needed_gib:.1} GiB of ciphertexts at its peak, more than the \
         {available_gib:.1} GiB available"
    )]
    OutOfMemory {
        /// What was tried (`any encoding`, `the columns encoding`).
        policy: String,
        /// The smallest peak, GiB.
        needed_gib: f64,
        /// The memory for ciphertexts, GiB.
        available_gib: f64,
    },
    /// A series could not be transformed.
    #[error("approximation series: {message}")]
    Series {
        /// The numerics error.
        message: String,
    },
    /// A graph broke a typing rule (a compiler bug, reported by [`verify()`]).
    #[error("HE graph v{value} ({op}): {problem}")]
    Malformed {
        /// The value.
        value: usize,
        /// Its op.
        op: &'static str,
        /// What is wrong.
        problem: String,
    },
}
