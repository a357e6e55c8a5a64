//! Why a plan cannot be bound to a checkpoint, fed, executed or decoded.

use crate::ckks::scheme::{Error as SchemeError, ParamsError};
use crate::plan::{ValueId, WeightKind};

/// Why executing a plan (or preparing its inputs) failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ExecError {
    /// The checkpoint's configuration is not the one the plan was compiled for.
    #[error(
        "the checkpoint's config.json describes another model than the one the plan was compiled for (`{model}`)"
    )]
    ConfigMismatch {
        /// The model the plan was compiled for.
        model: String,
    },
    /// The checkpoint has no tensor of that name.
    #[error("the checkpoint has no {kind} `{name}` (the plan was compiled for model `{model}`)")]
    MissingWeight {
        /// Tensor name.
        name: String,
        /// The kind the plan expects.
        kind: WeightKind,
        /// The model the plan was compiled for.
        model: String,
    },
    /// The checkpoint has the tensor, but of another kind.
    #[error("`{name}` is a {found} in the checkpoint, but the plan uses a {expected}")]
    WrongKind {
        /// Tensor name.
        name: String,
        /// The kind the plan expects.
        expected: WeightKind,
        /// The kind the checkpoint has.
        found: WeightKind,
    },
    /// The tensor's shape differs from the plan's.
    #[error(
        "`{name}` is {}x{} in the checkpoint, but the plan was compiled for {}x{}",
        found[0], found[1], expected[0], expected[1]
    )]
    WeightShape {
        /// Tensor name.
        name: String,
        /// Shape in the plan (`[len, 1]` for vectors).
        expected: [u32; 2],
        /// Shape in the checkpoint.
        found: [usize; 2],
    },
    /// The tensor's content differs from the one the plan was compiled against.
    #[error(
        "`{name}` differs from the tensor the plan was compiled against (digest {} instead of {}): \
         a modified checkpoint, or a plan for another model",
        short_hex(found),
        short_hex(expected)
    )]
    WeightDigest {
        /// Tensor name.
        name: String,
        /// Digest in the plan.
        expected: [u8; 32],
        /// Digest of the checkpoint's tensor.
        found: [u8; 32],
    },
    /// The bound weights were bound for another plan.
    #[error("the weights were bound for another plan (bind them to the plan that is run)")]
    ForeignWeights,
    /// The certificate was made for another plan.
    #[error("the plan info does not describe this plan (check the plan that is run)")]
    ForeignInfo,
    /// A plan's use of a weight disagrees with its binding (a plan that was not checked).
    #[error("weight {weight} is used as a {expected}, but is bound as another kind")]
    WeightUse {
        /// Index in the plan's weight table.
        weight: u32,
        /// The kind the use needs.
        expected: WeightKind,
    },
    /// Wrong number of inputs.
    #[error("the plan takes {expected} inputs, {found} were given")]
    InputCount {
        /// Inputs of the plan.
        expected: usize,
        /// Inputs given.
        found: usize,
    },
    /// A vector of slot vectors has the wrong number of ciphertexts.
    #[error("{what}: expected {expected} ciphertexts, found {found}")]
    CiphertextCount {
        /// What was given (`input `embeddings``, `value v7`).
        what: String,
        /// Ciphertexts the layout needs.
        expected: usize,
        /// Ciphertexts given.
        found: usize,
    },
    /// A slot vector has the wrong length.
    #[error("{what}: ciphertext {ciphertext} has {found} slots, the layout has {expected}")]
    SlotCount {
        /// What was given.
        what: String,
        /// Index of the offending ciphertext.
        ciphertext: usize,
        /// Slots of the layout.
        expected: usize,
        /// Slots given.
        found: usize,
    },
    /// An activation does not have the layout's `[T, d]` shape.
    #[error(
        "the activation is {found_tokens}x{found_columns}, the layout holds \
         {expected_tokens}x{expected_columns}"
    )]
    ActivationShape {
        /// Tokens of the layout.
        expected_tokens: usize,
        /// Columns of the layout.
        expected_columns: usize,
        /// Tokens given.
        found_tokens: usize,
        /// Columns given.
        found_columns: usize,
    },
    /// An activation's values do not fill its shape.
    #[error("a {tokens}x{columns} activation needs {} values, {found} were given", tokens * columns)]
    ActivationData {
        /// Rows.
        tokens: usize,
        /// Columns.
        columns: usize,
        /// Values given.
        found: usize,
    },
    /// A token id is not a row of the embedding table.
    #[error("token {token} at position {position} is not below the vocabulary size {vocab}")]
    TokenOutOfRange {
        /// Position in the input.
        position: usize,
        /// The id.
        token: u32,
        /// Rows of the embedding table.
        vocab: usize,
    },
    /// An operand was freed before its use (a plan that was not checked).
    #[error("instruction {instr} uses {value}, which is not live")]
    DeadOperand {
        /// Instruction index.
        instr: usize,
        /// The operand.
        value: ValueId,
    },
    /// A homomorphic operation of an instruction failed (a plan the encrypted executor cannot
    /// follow, or keys that lack what it needs).
    #[error("instruction {instr} ({op}): {source}")]
    Scheme {
        /// Instruction index (`usize::MAX` outside any instruction).
        instr: usize,
        /// Mnemonic, or what was being done.
        op: &'static str,
        /// The scheme's refusal.
        source: SchemeError,
    },
    /// A bootstrap the executor has no bootstrapper for (the plan changed after the
    /// executor was built).
    #[error(
        "instruction {instr} bootstraps, but the executor planned no bootstrapper for its slot count and level"
    )]
    BootstrapUnavailable {
        /// Instruction index.
        instr: usize,
    },
    /// A bootstrap failed (a circuit the parameters cannot hold, missing keys, a ciphertext
    /// of the wrong shape).
    #[error("instruction {instr} (bootstrap): {source}")]
    Bootstrap {
        /// Instruction index.
        instr: usize,
        /// The bootstrapper's refusal.
        source: crate::ckks::circuits::bootstrap::BootstrapError,
    },
    /// The plan's parameters cannot be rebuilt, or differ from the ones it states.
    #[error("the plan's CKKS parameters: {reason}")]
    PlanParams {
        /// What is wrong.
        reason: String,
    },
    /// The plan's parameters could not be checked.
    #[error("the plan's CKKS parameters are invalid: {0}")]
    Params(#[from] ParamsError),
    /// Keys, ciphertexts or an evaluator made for other parameters than the plan's.
    #[error(
        "{what} belong to CKKS parameters {found}, the plan was compiled for {expected}: \
         keys or ciphertexts from another plan or another keygen"
    )]
    ForeignParams {
        /// What was checked.
        what: String,
        /// Short hash of the plan's parameters.
        expected: String,
        /// Short hash found.
        found: String,
    },
    /// The evaluation keys lack keys the plan needs.
    #[error("the evaluation keys lack {missing} (generate them for this plan with `ensi keygen`)")]
    MissingKeys {
        /// What is missing (the relinearization key, Galois elements).
        missing: String,
    },
    /// A ciphertext given as an input or output does not have the plan's type.
    #[error("{what}: ciphertext {ciphertext} {problem}")]
    CiphertextType {
        /// Which input or output.
        what: String,
        /// Index in the vector.
        ciphertext: usize,
        /// How it differs.
        problem: String,
    },
    /// A result drifted from the type the plan declares (an executor bug, or a plan whose
    /// scales the evaluator cannot follow).
    #[error("instruction {instr} ({op}) produced {problem}, the plan declares {declared}")]
    TypeDrift {
        /// Instruction index.
        instr: usize,
        /// Mnemonic.
        op: &'static str,
        /// What was produced.
        problem: String,
        /// What the plan declares.
        declared: String,
    },
}

/// The first 8 bytes of a digest in hex, enough to tell two digests apart in a message.
fn short_hex(digest: &[u8; 32]) -> String {
    let mut text: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    text.push('…');
    text
}
