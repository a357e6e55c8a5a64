//! The plan's instruction set: operations on vectors of ciphertexts, in SSA form.
//!
//! A value is a vector of ciphertexts sharing one type (count, level, exact scale, layout).
//! Every op names its operands by [`ValueId`] and defines exactly one new value; operands
//! always precede their users, so the op list is a topological order. Macro ops (ternary
//! linear layers, polynomials, repacking, bootstrapping) keep the plan compact: one op per
//! tensor operation, expanded by the executor.

use serde::{Deserialize, Serialize};

use super::layout::Layout;

/// Index of a value (the result of one op) in [`super::Plan::values`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ValueId(pub u32);

/// Index of a weight tensor in [`super::Plan::weights`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct WeightId(pub u32);

/// Index of a plaintext recipe in [`super::Plan::plains`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PlainId(pub u32);

/// Index of a polynomial approximation in [`super::Plan::approximations`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ApproxId(pub u32);

impl std::fmt::Display for ValueId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "v{}", self.0)
    }
}

/// The type of a value: what every executor checks before and after each op.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ValueType {
    /// Number of ciphertexts.
    pub count: u32,
    /// Level (number of ciphertext primes minus one still in the modulus).
    pub level: u32,
    /// Exact scale: decrypt-and-decode divides by it. Follows the actual primes.
    pub scale: f64,
    /// Slot layout of the logical `[T, d]` data.
    pub layout: Layout,
    /// Whether padding slots and unused blocks are exactly zero (causal shifts rely on it).
    pub zero_padding: bool,
}

/// One row of a ternary linear layer's output: `sign · W[row, :]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SignedRow {
    /// Row of the weight matrix.
    pub row: u32,
    /// Whether the row is negated (rotate_half of RoPE negates half the rows).
    pub negate: bool,
}

/// How a ternary linear layer is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum LinearMethod {
    /// ENSI's column method: one column per ciphertext on both sides, equal slot counts;
    /// every output is a sum and difference of whole input ciphertexts (padding included).
    /// No multiplication, no rotation, no level.
    Columns,
    /// Block-diagonal method with baby-step giant-step: ternary plaintext diagonals, one
    /// multiplicative level, rotations by multiples of the block size (the decomposition is
    /// `crate::exec::BlockDiagonals`'s). The output's padding is zero.
    Diagonals {
        /// Baby steps per giant step (rotations hoisted on the input).
        baby_steps: u32,
    },
}

/// An operation defining one new value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Op {
    /// The client's `index`-th encrypted input.
    Input {
        /// Index into [`super::Plan::inputs`].
        index: u32,
    },
    /// Elementwise sum; equal types.
    Add {
        /// Left operand.
        a: ValueId,
        /// Right operand.
        b: ValueId,
    },
    /// Elementwise difference; equal types.
    Sub {
        /// Left operand.
        a: ValueId,
        /// Right operand.
        b: ValueId,
    },
    /// Negation.
    Neg {
        /// Operand.
        a: ValueId,
    },
    /// Elementwise ciphertext product with relinearization (no rescale). When the counts
    /// differ, the smaller one divides the larger and its ciphertexts are broadcast over
    /// groups: with `g = wide.count / narrow.count`, ciphertext `i` of the wider operand
    /// meets ciphertext `i / g` of the narrower (a one-ciphertext operand meets every
    /// ciphertext; per-head attention weights meet each of their head's ciphertexts).
    MulCt {
        /// Left operand.
        a: ValueId,
        /// Right operand.
        b: ValueId,
    },
    /// `a ⊙ a` with relinearization.
    Square {
        /// Operand.
        a: ValueId,
    },
    /// Divides by the last prime with rounding: level − 1, scale / q_level.
    Rescale {
        /// Operand.
        a: ValueId,
    },
    /// Drops `levels` primes without rescaling (scale unchanged).
    DropLevels {
        /// Operand.
        a: ValueId,
        /// Primes to drop.
        levels: u32,
    },
    /// Multiplies by a plaintext built from a recipe and encoded at `scale` (no rescale).
    /// A one-ciphertext operand is broadcast against a recipe with more ciphertexts.
    MulPlain {
        /// Operand.
        a: ValueId,
        /// The plaintext recipe.
        plain: PlainId,
        /// Exact encoding scale of the plaintext.
        scale: f64,
    },
    /// Adds a plaintext built from a recipe, encoded at the operand's scale.
    AddPlain {
        /// Operand.
        a: ValueId,
        /// The plaintext recipe.
        plain: PlainId,
    },
    /// Multiplies every slot by `value`, encoded as the integer `round(value · scale)`
    /// (no rescale; the result's scale is the operand's times `scale`).
    MulConst {
        /// Operand.
        a: ValueId,
        /// The real constant.
        value: f64,
        /// Exact encoding scale of the constant (1 for an integer multiplication).
        scale: f64,
    },
    /// Adds `value` to every slot (valid and padding alike).
    AddConst {
        /// Operand.
        a: ValueId,
        /// The real constant.
        value: f64,
    },
    /// Reinterprets the same ciphertexts as `factor ·` the operand (scale / factor). Free.
    Relabel {
        /// Operand.
        a: ValueId,
        /// The positive factor.
        factor: f64,
    },
    /// Rotates every ciphertext left by `steps` slots (slot j takes slot j + steps). The
    /// declared result layout may relabel the data but keeps the slot count (as do `RotSum`,
    /// `SumCiphertexts`, `Slice` and `Concat`).
    Rotate {
        /// Operand.
        a: ValueId,
        /// Left rotation; negative rotates right.
        steps: i32,
    },
    /// All-reduce by rotations: `Σ_{i < count} rot(a, i · step)` in log2(count) steps.
    RotSum {
        /// Operand.
        a: ValueId,
        /// Rotation stride in slots.
        step: u32,
        /// Number of terms (a power of two).
        count: u32,
    },
    /// Sums each run of `group` consecutive ciphertexts (count / group results).
    SumCiphertexts {
        /// Operand.
        a: ValueId,
        /// Ciphertexts per sum.
        group: u32,
    },
    /// Picks ciphertexts `start .. start + count` of the operand.
    Slice {
        /// Operand.
        a: ValueId,
        /// First ciphertext.
        start: u32,
        /// Number of ciphertexts.
        count: u32,
    },
    /// Concatenates the ciphertext vectors of several values of one level and scale.
    Concat {
        /// Operands, in order.
        parts: Vec<ValueId>,
    },
    /// `y = W' x` with `W'` the rows `rows` of the ternary weight (no scale: scales are
    /// folded elsewhere by the compiler). The output layout is `out`.
    TernaryLinear {
        /// Input activation.
        x: ValueId,
        /// The ternary weight.
        weight: WeightId,
        /// Output column `j` is `rows[j]`.
        rows: Vec<SignedRow>,
        /// Output layout.
        out: Layout,
        /// Algorithm.
        method: LinearMethod,
        /// Encoding scale of the ternary diagonals (`Diagonals` only; 1 for `Columns`).
        plain_scale: f64,
    },
    /// Evaluates a Chebyshev series slotwise, landing exactly on `scale`.
    Poly {
        /// Operand.
        a: ValueId,
        /// The approximation.
        approx: ApproxId,
    },
    /// Refreshes every ciphertext to `level` (bootstrapping, sparse for small slot counts).
    Bootstrap {
        /// Operand.
        a: ValueId,
        /// Level after the bootstrap.
        level: u32,
    },
    /// Moves the data to another layout (masks and rotations; one level). Masks and
    /// rotations act in `max(slots)` of the two layouts ([`super::schedule::repack_schedule`]);
    /// into fewer slots, a fold follows ([`super::schedule::fold_rotations`]) so the result
    /// lives in the smaller subring. Padding and empty blocks of the result are zero. The
    /// exact algorithm is `crate::exec::Repacking`'s.
    Repack {
        /// Operand.
        a: ValueId,
        /// Target layout.
        to: Layout,
        /// Encoding scale of the masks.
        mask_scale: f64,
    },
}

impl Op {
    /// The operands, in order.
    pub fn operands(&self) -> Vec<ValueId> {
        match self {
            Op::Input { .. } => vec![],
            Op::Add { a, b } | Op::Sub { a, b } | Op::MulCt { a, b } => vec![*a, *b],
            Op::Neg { a }
            | Op::Square { a }
            | Op::Rescale { a }
            | Op::DropLevels { a, .. }
            | Op::MulPlain { a, .. }
            | Op::AddPlain { a, .. }
            | Op::MulConst { a, .. }
            | Op::AddConst { a, .. }
            | Op::Relabel { a, .. }
            | Op::Rotate { a, .. }
            | Op::RotSum { a, .. }
            | Op::SumCiphertexts { a, .. }
            | Op::Slice { a, .. }
            | Op::Poly { a, .. }
            | Op::Bootstrap { a, .. }
            | Op::Repack { a, .. } => vec![*a],
            Op::Concat { parts } => parts.clone(),
            Op::TernaryLinear { x, .. } => vec![*x],
        }
    }

    /// The mnemonic used by the text form and the reports.
    pub fn mnemonic(&self) -> &'static str {
        match self {
            Op::Input { .. } => "input",
            Op::Add { .. } => "add",
            Op::Sub { .. } => "sub",
            Op::Neg { .. } => "neg",
            Op::MulCt { .. } => "mul",
            Op::Square { .. } => "square",
            Op::Rescale { .. } => "rescale",
            Op::DropLevels { .. } => "drop_levels",
            Op::MulPlain { .. } => "mul_plain",
            Op::AddPlain { .. } => "add_plain",
            Op::MulConst { .. } => "mul_const",
            Op::AddConst { .. } => "add_const",
            Op::Relabel { .. } => "relabel",
            Op::Rotate { .. } => "rotate",
            Op::RotSum { .. } => "rot_sum",
            Op::SumCiphertexts { .. } => "sum_cts",
            Op::Slice { .. } => "slice",
            Op::Concat { .. } => "concat",
            Op::TernaryLinear { .. } => "ternary_linear",
            Op::Poly { .. } => "poly",
            Op::Bootstrap { .. } => "bootstrap",
            Op::Repack { .. } => "repack",
        }
    }
}

/// One step of the plan: an op, the value it defines, and the values that die after it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Instr {
    /// The operation.
    pub op: Op,
    /// The value it defines (always the next unused id).
    pub result: ValueId,
    /// Values whose last use is this instruction (the executor frees them afterwards).
    pub frees: Vec<ValueId>,
    /// Which part of the model this step belongs to (for profiles and reports), an index
    /// into [`super::Plan::regions`].
    pub region: u32,
}
