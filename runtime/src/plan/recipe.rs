//! Plaintext recipes, weight references and polynomial approximations a plan refers to.
//!
//! Plaintexts are never stored in a plan: a recipe says how to build each ciphertext's slot
//! vector (from the model's tensors, checked by digest, or from a few inline numbers), and the
//! executor encodes it at the level and scale of use.

use serde::{Deserialize, Serialize};

use super::layout::Layout;
use super::op::WeightId;

/// A model tensor the plan uses, by name and content digest (never copied into the plan).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WeightRef {
    /// Tensor name in the checkpoint (e.g. `model.layers.0.self_attn.q_proj.weight`).
    pub name: String,
    /// What the tensor is.
    pub kind: WeightKind,
    /// Logical shape `[rows, cols]` (`[len, 1]` for vectors).
    pub shape: [u32; 2],
    /// BLAKE3 digest of the decoded content (see `ensi_checkpoint` digests); the server
    /// refuses a checkpoint whose tensor differs.
    pub digest: [u8; 32],
}

/// The kind of a referenced tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum WeightKind {
    /// A ternary projection matrix.
    Ternary,
    /// A vector of reals (a norm gain).
    Vector,
    /// A matrix of reals: the embedding table the client reads its input rows from
    /// ([`InputSignature::embedding`]); `shape` is `[vocab, hidden]`.
    Matrix,
}

impl std::fmt::Display for WeightKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            WeightKind::Ternary => "ternary matrix",
            WeightKind::Vector => "vector",
            WeightKind::Matrix => "float matrix",
        })
    }
}

/// How to build the slot vectors of a plaintext (one per ciphertext of `layout`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum PlainRecipe {
    /// Slot (column j, token t) = `factor · vector[j]` for valid tokens; zero in padding and
    /// empty blocks (so a multiplication by it also zeroes the padding).
    ColumnVector {
        /// The vector (a norm gain).
        weight: WeightId,
        /// A constant folded in (projection scales, 1/d, ...).
        factor: f64,
        /// Where the columns sit.
        layout: Layout,
    },
    /// Slot (column j, token t) = `values[j]` for valid tokens; zero elsewhere.
    ColumnValues {
        /// One value per column.
        values: Vec<f64>,
        /// Where the columns sit.
        layout: Layout,
    },
    /// Rotary embedding coefficients: slot (column j, token t) =
    /// `factor · cos(θ_i (t + position_offset))` (or `sin`), `θ_i = theta^(−2i/head_dim)`,
    /// `i = (j mod head_dim) mod (head_dim / 2)`; zero in padding.
    Rope {
        /// Where the columns sit (columns = heads · head_dim).
        layout: Layout,
        /// Per-head dimension.
        head_dim: u32,
        /// RoPE base.
        theta: f64,
        /// `sin` instead of `cos`.
        sine: bool,
        /// A constant folded in.
        factor: f64,
        /// Position of token 0.
        position_offset: u32,
    },
    /// 1 on valid slots (token < T, existing column), 0 on padding and empty blocks.
    ValidMask {
        /// The layout whose valid slots are kept.
        layout: Layout,
    },
    /// 1 on the valid slots of tokens `from..to`, 0 elsewhere: the causal mask of one shift
    /// of softmax attention (the positions `t ≥ r` that have a key `r` steps back).
    TokenRange {
        /// The layout whose slots are selected.
        layout: Layout,
        /// First token kept.
        from: u32,
        /// One past the last token kept (at most T).
        to: u32,
    },
}

impl PlainRecipe {
    /// The layout the recipe fills.
    pub fn layout(&self) -> &Layout {
        match self {
            PlainRecipe::ColumnVector { layout, .. }
            | PlainRecipe::ColumnValues { layout, .. }
            | PlainRecipe::Rope { layout, .. }
            | PlainRecipe::ValidMask { layout }
            | PlainRecipe::TokenRange { layout, .. } => layout,
        }
    }
}

/// A polynomial approximation: a Chebyshev series on `[lo, hi]` in the operand's value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolyApprox {
    /// What it approximates, for reports (`sigmoid(0.25 x − 2.08)`, `1/sqrt(x) guess`).
    pub function: String,
    /// Interval of the operand the series is valid on (calibrated, with margin).
    pub lo: f64,
    /// Upper end of the interval.
    pub hi: f64,
    /// Chebyshev coefficients c_0..c_d of `Σ c_k T_k((2x − lo − hi)/(hi − lo))`.
    pub coefficients: Vec<f64>,
    /// Multiplicative depth of its evaluation (the result is `depth` levels below the operand).
    pub depth: u32,
    /// Max absolute error on the interval, measured by the compiler.
    pub max_error: f64,
}

impl PolyApprox {
    /// The degree of the series.
    pub fn degree(&self) -> usize {
        self.coefficients.len().saturating_sub(1)
    }

    /// Evaluates the series at `x` (Clenshaw), as the plaintext executor does.
    pub fn evaluate(&self, x: f64) -> f64 {
        let u = (2.0 * x - self.lo - self.hi) / (self.hi - self.lo);
        let (mut b1, mut b2) = (0.0, 0.0);
        for &c in self.coefficients.iter().skip(1).rev() {
            let b0 = 2.0 * u * b1 - b2 + c;
            b2 = b1;
            b1 = b0;
        }
        u * b1 - b2 + self.coefficients.first().copied().unwrap_or(0.0)
    }
}

/// What the client encrypts: the embedding rows of `tokens` token ids, laid out in `layout`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputSignature {
    /// Name, for messages (`embeddings`).
    pub name: String,
    /// Embedding table the client reads rows from (tied to the LM head in BitNet): a
    /// [`WeightKind::Matrix`] whose columns are the layout's columns.
    pub embedding: WeightId,
    /// Slot layout of the `[T, d]` embeddings.
    pub layout: Layout,
    /// Level the client encrypts at.
    pub level: u32,
    /// Exact encoding scale.
    pub scale: f64,
}

/// What the client decrypts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputSignature {
    /// Name (`hidden`).
    pub name: String,
    /// The value holding it.
    pub value: super::op::ValueId,
}

/// A named part of the model (`layer 0 / attention`), for profiles and reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Region {
    /// Decoder layer, or `None` for the embedding and the final norm.
    pub layer: Option<u32>,
    /// Block within the layer (`attention norm`, `attention`, `mlp`, ...).
    pub block: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clenshaw_matches_the_chebyshev_definition() {
        let approx = PolyApprox {
            function: "test".into(),
            lo: -2.0,
            hi: 6.0,
            coefficients: vec![0.5, -1.0, 0.25, 2.0],
            depth: 2,
            max_error: 0.0,
        };
        for &x in &[-2.0, -1.3, 0.0, 2.0, 4.7, 6.0] {
            let u: f64 = (2.0 * x - 4.0) / 8.0;
            let t = [1.0, u, 2.0 * u * u - 1.0, 4.0 * u * u * u - 3.0 * u];
            let direct: f64 = approx.coefficients.iter().zip(t).map(|(c, t)| c * t).sum();
            assert!((approx.evaluate(x) - direct).abs() < 1e-12);
        }
    }
}
