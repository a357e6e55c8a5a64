//! The scheme layer's error: level, scale, slot, parameter and key mismatches, with structured fields.

use crate::ckks::numerics::embedding::EmbeddingError;

use super::params::ParamsError;

/// An operation the scheme refuses instead of producing garbage.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The parameter set itself is invalid.
    #[error(transparent)]
    Params(#[from] ParamsError),
    /// A slot count or buffer the embedding cannot take.
    #[error(transparent)]
    Embedding(#[from] EmbeddingError),
    /// Operands (or a key, file, or evaluator) made under different parameter sets.
    #[error("parameter mismatch: {what} was made for parameters {found}, expected {expected}")]
    ParamsMismatch {
        /// What was checked (ciphertext, key, file, ...).
        what: &'static str,
        /// Short hash of the expected parameters.
        expected: String,
        /// Short hash found.
        found: String,
    },
    /// Two operands at different levels.
    #[error("{op}: level mismatch ({left} vs {right}); drop the higher operand first")]
    LevelMismatch {
        /// The operation.
        op: &'static str,
        /// Level of the left operand.
        left: usize,
        /// Level of the right operand.
        right: usize,
    },
    /// Two operands whose scales differ where they must match (addition).
    #[error("{op}: scale mismatch (2^{left_log2:.6} vs 2^{right_log2:.6})")]
    ScaleMismatch {
        /// The operation.
        op: &'static str,
        /// log2 of the left scale.
        left_log2: f64,
        /// log2 of the right scale.
        right_log2: f64,
    },
    /// Operands with different slot counts.
    #[error("{op}: slot count mismatch ({left} vs {right})")]
    SlotsMismatch {
        /// The operation.
        op: &'static str,
        /// Slots of the left operand.
        left: usize,
        /// Slots of the right operand.
        right: usize,
    },
    /// An operation that needs more levels than the operand has.
    #[error("{op}: needs level >= {needed}, operand is at level {level}")]
    LevelTooLow {
        /// The operation.
        op: &'static str,
        /// The operand's level.
        level: usize,
        /// The level needed.
        needed: usize,
    },
    /// A level above the chain.
    #[error("level {level} is above the top level {max}")]
    LevelAboveTop {
        /// The requested level.
        level: usize,
        /// The top level L.
        max: usize,
    },
    /// No relinearization key among the evaluation keys.
    #[error("no relinearization key in the evaluation keys")]
    MissingRelinKey,
    /// No Galois key for an automorphism.
    #[error("no Galois key for {what} (Galois element {galois_element})")]
    MissingGaloisKey {
        /// "rotation by k" or "conjugation".
        what: String,
        /// The Galois element.
        galois_element: u64,
    },
    /// A value that does not fit after scaling (|x * scale| >= 2^126) or is not finite.
    #[error("value {value} times scale 2^{log2_scale:.2} does not fit the encoder's integers")]
    ValueOutOfRange {
        /// The value.
        value: f64,
        /// log2 of the scale.
        log2_scale: f64,
    },
    /// A scale that is not a positive finite number.
    #[error("invalid scale {scale}")]
    InvalidScale {
        /// The scale.
        scale: f64,
    },
    /// A vector of the wrong length.
    #[error("{what}: expected {expected} values, got {got}")]
    LengthMismatch {
        /// What.
        what: &'static str,
        /// Expected length.
        expected: usize,
        /// Given length.
        got: usize,
    },
    /// An invalid argument, described.
    #[error("{0}")]
    InvalidArgument(String),
    /// The arithmetic layer refused (e.g. no OS entropy).
    #[error(transparent)]
    Arith(#[from] crate::ckks::arith::Error),
}
