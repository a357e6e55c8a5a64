//! Plans: the instruction set the compiler targets and the executors run, with its file format.
//!
//! A [`Plan`] is a straight-line program over vectors of ciphertexts (see [`op`]), the CKKS
//! parameters it was compiled for, the exact rotation keys it needs, references to the
//! model's tensors by name and digest, and the signatures of what the client encrypts and
//! decrypts. [`check`] verifies that it is well typed before anything executes; [`file`](mod@file)
//! reads and writes it with a versioned, checksummed, size-limited header.

pub mod check;
pub mod file;
pub mod layout;
pub mod op;
pub mod recipe;
pub mod schedule;
pub mod text;

use serde::{Deserialize, Serialize};

use crate::ckks::scheme::{ParamsLiteral, Security};

pub use check::{CheckError, PlanInfo};
pub use file::{MAX_PLAN_BYTES, PlanFileError};
pub use layout::{Layout, LayoutError, SlotPosition};
pub use op::{ApproxId, Instr, LinearMethod, Op, PlainId, SignedRow, ValueId, ValueType, WeightId};
pub use recipe::{
    InputSignature, OutputSignature, PlainRecipe, PolyApprox, Region, WeightKind, WeightRef,
};

/// The parameters a plan was compiled for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanParams {
    /// The CKKS parameter literal.
    pub literal: ParamsLiteral,
    /// The actual primes q_0..q_L (derived from the literal; kept so that exact scales can be
    /// checked without regenerating them).
    pub q: Vec<u64>,
    /// The special primes.
    pub p: Vec<u64>,
    /// Hash of the checked parameter set; keys and ciphertexts carry the same hash.
    pub hash: [u8; 32],
    /// Security of the set (an insecure set is marked in every report).
    pub security: Security,
}

/// A compiled encrypted-inference program.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// Version of the compiler that wrote it.
    pub compiler_version: String,
    /// The model: folder name and digest of its `config.json`, for messages and mismatch checks.
    pub model: ModelRef,
    /// CKKS parameters.
    pub params: PlanParams,
    /// Galois elements of every rotation the plan (and its bootstraps) uses, sorted.
    pub galois_elements: Vec<u64>,
    /// Whether a relinearization key is needed.
    pub needs_relinearization: bool,
    /// Whether bootstrapping keys are needed.
    pub needs_bootstrapping: bool,
    /// Model tensors used.
    pub weights: Vec<WeightRef>,
    /// Plaintext recipes.
    pub plains: Vec<PlainRecipe>,
    /// Polynomial approximations.
    pub approximations: Vec<PolyApprox>,
    /// Named model regions the instructions belong to.
    pub regions: Vec<Region>,
    /// The type of every value, indexed by [`ValueId`].
    pub values: Vec<ValueType>,
    /// The program, in execution (topological) order.
    pub instrs: Vec<Instr>,
    /// What the client encrypts.
    pub inputs: Vec<InputSignature>,
    /// What the client decrypts.
    pub outputs: Vec<OutputSignature>,
    /// Free-form provenance the compiler records (rewrite stop reasons, options), as
    /// `(key, value)` pairs in a fixed order.
    pub provenance: Vec<(String, String)>,
}

/// The model a plan was compiled from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelRef {
    /// Folder name, for messages.
    pub name: String,
    /// BLAKE3 digest of `config.json`.
    pub config_digest: [u8; 32],
    /// Tokens per inference (T).
    pub tokens: u32,
    /// Hidden size.
    pub hidden: u32,
    /// Vocabulary size.
    pub vocab: u32,
}

impl Plan {
    /// The type of `value`.
    ///
    /// # Panics
    /// If `value` is out of range; [`check::check`] guarantees every id in a checked plan is.
    pub fn value(&self, value: ValueId) -> &ValueType {
        &self.values[value.0 as usize]
    }

    /// The highest level any value of the plan sits at (0 for a plan without values): no
    /// instruction of the plan, bootstraps aside, acts on a ciphertext above it.
    pub fn max_value_level(&self) -> usize {
        self.values
            .iter()
            .map(|v| v.level as usize)
            .max()
            .unwrap_or(0)
    }
}
