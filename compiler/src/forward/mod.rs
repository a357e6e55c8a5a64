//! Plaintext reference forward: a verified model-IR graph evaluated in f64 on a checkpoint's weights, with exact or substituted nonlinearities.
//!
//! The twin of the outside oracle (transformers, float32): the same operations in double
//! precision, so differences to the fixtures are float32 rounding, plus flipped 8-bit codes
//! when activation quantization is on. Values are freed after their last use, and nodes no
//! requested output needs are not evaluated.
//!
//! Every scalar nonlinearity (ReLU², SiLU, attention's sigmoid or softmax, RMSNorm's inverse
//! square root) goes through a [`Nonlinear`] implementation: [`Exact`] for [`run`], a
//! recorder for calibration, polynomial approximations for the approximate forward
//! ([`run_with`]).

mod nonlinear;
mod ternary;

pub use nonlinear::{Exact, Function, Nonlinear};

use ensi_checkpoint::{Checkpoint, FloatMatrix};
use rayon::prelude::*;

use crate::ir::{AttentionKind, Graph, GraphInfo, Handle, Node, Op, Output, Type};

/// A real `[rows, cols]` matrix, row-major: one row per token position.
#[derive(Debug, Clone, PartialEq)]
pub struct Matrix {
    rows: usize,
    cols: usize,
    data: Vec<f64>,
}

impl Matrix {
    fn zeros(rows: usize, cols: usize) -> Self {
        Self {
            rows,
            cols,
            data: vec![0.0; rows * cols],
        }
    }

    /// Number of rows (token positions).
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of columns.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// All entries, row-major.
    pub fn data(&self) -> &[f64] {
        &self.data
    }

    /// Row `row`.
    ///
    /// # Panics
    ///
    /// If `row >= self.rows()`.
    pub fn row(&self, row: usize) -> &[f64] {
        &self.data[row * self.cols..(row + 1) * self.cols]
    }

    fn row_mut(&mut self, row: usize) -> &mut [f64] {
        &mut self.data[row * self.cols..(row + 1) * self.cols]
    }

    /// The transpose, `[cols, rows]`.
    fn transposed(&self) -> Self {
        let mut out = Self::zeros(self.cols, self.rows);
        for (row, values) in self.data.chunks_exact(self.cols.max(1)).enumerate() {
            for (col, &value) in values.iter().enumerate() {
                out.data[col * self.rows + row] = value;
            }
        }
        out
    }

    /// Applies `f` to every entry.
    fn map(mut self, mut f: impl FnMut(f64) -> f64) -> Self {
        self.data.iter_mut().for_each(|x| *x = f(*x));
        self
    }
}

/// The values of a graph's outputs, in the order the graph declares them.
#[derive(Debug, Clone, PartialEq)]
pub struct Outputs {
    values: Vec<(String, Matrix)>,
}

impl Outputs {
    /// The output called `name`.
    pub fn get(&self, name: &str) -> Option<&Matrix> {
        self.values
            .iter()
            .find(|(given, _)| given == name)
            .map(|(_, matrix)| matrix)
    }

    /// Every output with its name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Matrix)> {
        self.values
            .iter()
            .map(|(name, matrix)| (name.as_str(), matrix))
    }
}

/// Why the forward pass cannot run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ForwardError {
    /// The certificate was made for a different graph.
    #[error("the graph info does not describe this graph (verify the graph that is run)")]
    ForeignInfo,
    /// The number of tokens differs from the graph's `T`.
    #[error("the graph takes {expected} tokens, {found} were given")]
    TokenCount {
        /// The graph's `T`.
        expected: usize,
        /// Tokens given.
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
    /// The graph names a weight the checkpoint does not have (of that kind).
    #[error("{node}: the checkpoint has no {what} `{name}`")]
    MissingWeight {
        /// The node naming it.
        node: Handle<Node>,
        /// The kind of tensor expected.
        what: &'static str,
        /// The tensor name.
        name: String,
    },
    /// A weight's shape disagrees with the node's types.
    #[error("{node}: `{name}` has shape {found}, but the node needs {expected}")]
    WeightShape {
        /// The node naming it.
        node: Handle<Node>,
        /// The tensor name.
        name: String,
        /// The weight's shape.
        found: String,
        /// The shape the node's types imply.
        expected: String,
    },
}

/// A value during evaluation.
enum Value {
    Ids(Vec<u32>),
    Tensor(Matrix),
}

/// Runs `graph` on `tokens` with the weights of `checkpoint` and returns its outputs.
pub fn run(
    graph: &Graph,
    info: &GraphInfo,
    checkpoint: &Checkpoint,
    tokens: &[u32],
) -> Result<Outputs, ForwardError> {
    run_observed(graph, info, checkpoint, tokens, |_, _| {})
}

/// The names of every output of `graph`.
fn every_output(graph: &Graph) -> Vec<&str> {
    graph.outputs().iter().map(|o| o.name.as_str()).collect()
}

/// [`run`], also showing every tensor value to `observe` as soon as it is computed, in node
/// order (for calibration: value ranges of every node).
pub fn run_observed(
    graph: &Graph,
    info: &GraphInfo,
    checkpoint: &Checkpoint,
    tokens: &[u32],
    observe: impl FnMut(Handle<Node>, &Matrix),
) -> Result<Outputs, ForwardError> {
    let outputs = every_output(graph);
    run_with_observed(
        graph, info, checkpoint, tokens, &outputs, &mut Exact, observe,
    )
}

/// [`run`] with the nonlinearities of `nonlinear` in place of the exact functions (the
/// approximate forward, when `nonlinear` holds the chosen polynomial approximations).
pub fn run_with(
    graph: &Graph,
    info: &GraphInfo,
    checkpoint: &Checkpoint,
    tokens: &[u32],
    nonlinear: &mut impl Nonlinear,
) -> Result<Outputs, ForwardError> {
    let outputs = every_output(graph);
    run_with_observed(
        graph,
        info,
        checkpoint,
        tokens,
        &outputs,
        nonlinear,
        |_, _| {},
    )
}

/// [`run_with`] and [`run_observed`] in one, for the outputs named in `outputs` only:
/// substituted nonlinearities, every tensor value those outputs need shown to `observe`.
/// Nodes none of them needs are not evaluated (names the graph does not have select
/// nothing).
pub fn run_with_observed(
    graph: &Graph,
    info: &GraphInfo,
    checkpoint: &Checkpoint,
    tokens: &[u32],
    outputs: &[&str],
    nonlinear: &mut impl Nonlinear,
    mut observe: impl FnMut(Handle<Node>, &Matrix),
) -> Result<Outputs, ForwardError> {
    if !info.describes(graph) {
        return Err(ForwardError::ForeignInfo);
    }
    if tokens.len() != info.tokens() {
        return Err(ForwardError::TokenCount {
            expected: info.tokens(),
            found: tokens.len(),
        });
    }
    let selected = |output: &&Output| outputs.contains(&output.name.as_str());
    let mut is_output = vec![false; graph.nodes().len()];
    for output in graph.outputs().iter().filter(selected) {
        is_output[output.value.index()] = true;
    }
    // Operands precede their users, so one backward sweep finds everything needed.
    let mut needed = is_output.clone();
    for index in (0..needed.len()).rev() {
        if needed[index] {
            for operand in graph.node(Handle::from_index(index)).op.operands() {
                needed[operand.index()] = true;
            }
        }
    }
    let mut values: Vec<Option<Value>> = Vec::with_capacity(graph.nodes().len());
    for (handle, node) in graph.nodes().iter() {
        let value = if needed[handle.index()] {
            let value = Evaluator {
                values: &values,
                checkpoint,
                handle,
                tokens,
            }
            .eval(node, nonlinear)?;
            if let Value::Tensor(matrix) = &value {
                observe(handle, matrix);
            }
            Some(value)
        } else {
            None
        };
        values.push(value);
        for operand in node.op.operands() {
            if info.last_use(operand) == Some(handle) && !is_output[operand.index()] {
                values[operand.index()] = None;
            }
        }
    }
    let mut computed = Vec::with_capacity(graph.outputs().len());
    for output in graph.outputs().iter().filter(selected) {
        // Outputs are never freed, and the verifier proved each names a node.
        if let Some(Some(Value::Tensor(matrix))) = values.get(output.value.index()) {
            computed.push((output.name.clone(), matrix.clone()));
        } else if let Some(Some(Value::Ids(ids))) = values.get(output.value.index()) {
            let data = ids.iter().map(|&id| f64::from(id)).collect();
            computed.push((
                output.name.clone(),
                Matrix {
                    rows: 1,
                    cols: ids.len(),
                    data,
                },
            ));
        }
    }
    Ok(Outputs { values: computed })
}

/// Evaluates one node from the values of its operands.
struct Evaluator<'a> {
    values: &'a [Option<Value>],
    checkpoint: &'a Checkpoint,
    handle: Handle<Node>,
    tokens: &'a [u32],
}

impl Evaluator<'_> {
    fn eval(&self, node: &Node, nonlinear: &mut impl Nonlinear) -> Result<Value, ForwardError> {
        let handle = self.handle;
        let cols = match node.ty {
            Type::Tensor { cols, .. } => cols,
            Type::Ids { .. } => 0,
        };
        let matrix = match &node.op {
            Op::Tokens {} => return Ok(Value::Ids(self.tokens.to_vec())),
            Op::Embed { ids, table } => self.embed(self.ids(*ids), table.as_str(), cols)?,
            Op::RmsNorm {
                x,
                gain,
                gain_scale,
                eps,
            } => self.rms_norm(
                self.tensor(*x),
                gain.as_str(),
                gain_scale.0,
                eps.0,
                |mean_square| nonlinear.inv_sqrt(handle, mean_square),
            )?,
            Op::ActQuant { x, bits } => act_quant(self.tensor(*x), *bits),
            Op::TernaryLinear { x, weight, scale } => {
                self.ternary_linear(self.tensor(*x), weight.as_str(), scale.0, cols)?
            }
            Op::Scale { x, factor } => self.tensor(*x).clone().map(|x| factor.0 * x),
            Op::Rope {
                x,
                heads,
                head_dim,
                theta,
            } => rope(self.tensor(*x), *heads, *head_dim, theta.0),
            Op::Attention {
                q,
                k,
                v,
                heads,
                kv_heads,
                head_dim,
                kind,
                causal,
                score_scale,
            } => attention(
                [self.tensor(*q), self.tensor(*k), self.tensor(*v)],
                &AttentionShape {
                    heads: *heads,
                    kv_heads: *kv_heads,
                    head_dim: *head_dim,
                    kind: *kind,
                    causal: *causal,
                    score_scale: score_scale.0,
                },
                &mut Weights {
                    node: handle,
                    nonlinear,
                },
            ),
            Op::Relu2 { x } => self.tensor(*x).clone().map(|x| nonlinear.relu2(handle, x)),
            Op::Silu { x, input_scale } => self
                .tensor(*x)
                .clone()
                .map(|x| nonlinear.silu(handle, input_scale.0 * x)),
            Op::Mul { lhs, rhs } => zip(self.tensor(*lhs), self.tensor(*rhs), |a, b| a * b),
            Op::Add { lhs, rhs } => zip(self.tensor(*lhs), self.tensor(*rhs), |a, b| a + b),
            Op::LmHead { x, weight, tied: _ } => {
                self.lm_head(self.tensor(*x), weight.as_str(), cols)?
            }
        };
        Ok(Value::Tensor(matrix))
    }

    /// The tensor value of an operand.
    ///
    /// Invariant (from the verifier and the liveness rule): operands precede their user, are
    /// freed only after their last use, and have the type the op expects.
    fn tensor(&self, operand: Handle<Node>) -> &Matrix {
        match &self.values[operand.index()] {
            Some(Value::Tensor(matrix)) => matrix,
            _ => unreachable!("verified graphs give tensor operands to tensor ops"),
        }
    }

    /// The token ids of an operand (same invariant as [`Self::tensor`]).
    fn ids(&self, operand: Handle<Node>) -> &[u32] {
        match &self.values[operand.index()] {
            Some(Value::Ids(ids)) => ids,
            _ => unreachable!("verified graphs give the tokens node to embed"),
        }
    }

    fn missing(&self, what: &'static str, name: &str) -> ForwardError {
        ForwardError::MissingWeight {
            node: self.handle,
            what,
            name: name.to_owned(),
        }
    }

    fn shape(
        &self,
        name: &str,
        found: (usize, usize),
        expected: (usize, usize),
    ) -> Result<(), ForwardError> {
        if found == expected {
            return Ok(());
        }
        Err(ForwardError::WeightShape {
            node: self.handle,
            name: name.to_owned(),
            found: format!("[{}, {}]", found.0, found.1),
            expected: format!("[{}, {}]", expected.0, expected.1),
        })
    }

    fn embed(&self, ids: &[u32], table: &str, width: usize) -> Result<Matrix, ForwardError> {
        let table_matrix = self
            .checkpoint
            .matrix(table)
            .ok_or_else(|| self.missing("matrix", table))?;
        let (vocab, cols) = (table_matrix.rows(), table_matrix.cols());
        self.shape(table, (vocab, cols), (vocab, width))?;
        let mut out = Matrix::zeros(ids.len(), width);
        let mut row = vec![0.0f32; width];
        for (position, &token) in ids.iter().enumerate() {
            let index = token as usize;
            if index >= vocab {
                return Err(ForwardError::TokenOutOfRange {
                    position,
                    token,
                    vocab,
                });
            }
            table_matrix.row_into(index, &mut row);
            for (y, &x) in out.row_mut(position).iter_mut().zip(&row) {
                *y = f64::from(x);
            }
        }
        Ok(out)
    }

    fn rms_norm(
        &self,
        x: &Matrix,
        gain: &str,
        gain_scale: f64,
        eps: f64,
        mut inv_sqrt: impl FnMut(f64) -> f64,
    ) -> Result<Matrix, ForwardError> {
        let gains = self
            .checkpoint
            .vector(gain)
            .ok_or_else(|| self.missing("vector", gain))?;
        self.shape(gain, (1, gains.len()), (1, x.cols))?;
        let gains: Vec<f64> = gains
            .to_vec()
            .into_iter()
            .map(|g| gain_scale * f64::from(g))
            .collect();
        let mut out = x.clone();
        for row in 0..x.rows {
            let values = out.row_mut(row);
            let mean_square = values.iter().map(|v| v * v).sum::<f64>() / values.len() as f64;
            let inverse_rms = inv_sqrt(mean_square + eps);
            for (value, gain) in values.iter_mut().zip(&gains) {
                *value = gain * (*value * inverse_rms);
            }
        }
        Ok(out)
    }

    /// `scale · x Wᵀ` (see [`ternary::product`]).
    fn ternary_linear(
        &self,
        x: &Matrix,
        weight: &str,
        scale: f64,
        out_cols: usize,
    ) -> Result<Matrix, ForwardError> {
        let matrix = self
            .checkpoint
            .ternary(weight)
            .ok_or_else(|| self.missing("ternary matrix", weight))?;
        self.shape(weight, (matrix.rows(), matrix.cols()), (out_cols, x.cols))?;
        Ok(ternary::product(x, matrix).map(|sum| scale * sum))
    }

    /// `x Wᵀ` with a float matrix (see [`blocked_product`]).
    fn lm_head(&self, x: &Matrix, weight: &str, vocab: usize) -> Result<Matrix, ForwardError> {
        let matrix = self
            .checkpoint
            .matrix(weight)
            .ok_or_else(|| self.missing("matrix", weight))?;
        self.shape(weight, (matrix.rows(), matrix.cols()), (vocab, x.cols))?;
        Ok(blocked_product(x, matrix))
    }
}

/// Output features per parallel task of [`blocked_product`].
const BLOCK: usize = 16;

/// `x Wᵀ` (`[T, in]` times `[out, in]ᵀ`) for a float matrix `W`, widened to f64 row by row.
///
/// Blocks of [`BLOCK`] output features run in parallel. A block's weights are stored
/// input-major (`[in][BLOCK]`), and each token accumulates all [`BLOCK`] outputs at once
/// (one broadcast input times a vector of weights per step), so weights stream from cache
/// once per token and the sums stay in registers. Every output is the plain sequential sum
/// over the inputs, whichever instruction set runs it.
fn blocked_product(x: &Matrix, matrix: &FloatMatrix) -> Matrix {
    let (tokens, inputs, outputs) = (x.rows, x.cols, matrix.rows());
    let mut transposed = Matrix::zeros(outputs, tokens);
    transposed
        .data
        .par_chunks_mut(BLOCK * tokens.max(1))
        .enumerate()
        .for_each_init(
            || (vec![0.0f32; inputs], vec![0.0f64; BLOCK * inputs]),
            |(row, block_weights), (block, sums)| {
                let first = block * BLOCK;
                let count = sums.len() / tokens.max(1);
                block_weights.iter_mut().for_each(|w| *w = 0.0);
                for offset in 0..count {
                    matrix.row_into(first + offset, row);
                    for (input, &w) in row.iter().enumerate() {
                        block_weights[input * BLOCK + offset] = f64::from(w);
                    }
                }
                for token in 0..tokens {
                    let outputs = block_sums(x.row(token), block_weights);
                    for (offset, &sum) in outputs.iter().take(count).enumerate() {
                        sums[offset * tokens + token] = sum;
                    }
                }
            },
        );
    transposed.transposed()
}

/// `Σ_i x_i w[i][j]` for the [`BLOCK`] columns `j` of input-major weights, in an AVX2 build
/// of the same code when the processor has it (no FMA: the same roundings, bit for bit).
fn block_sums(x: &[f64], weights: &[f64]) -> [f64; BLOCK] {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the processor supports AVX2 (checked just above).
        return unsafe { block_sums_avx2(x, weights) };
    }
    block_sums_portable(x, weights)
}

/// [`block_sums_portable`] compiled for AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn block_sums_avx2(x: &[f64], weights: &[f64]) -> [f64; BLOCK] {
    block_sums_portable(x, weights)
}

#[inline(always)]
fn block_sums_portable(x: &[f64], weights: &[f64]) -> [f64; BLOCK] {
    let mut sums = [0.0f64; BLOCK];
    for (&xi, w) in x.iter().zip(weights.chunks_exact(BLOCK)) {
        for lane in 0..BLOCK {
            sums[lane] += xi * w[lane];
        }
    }
    sums
}

/// Per-token absmax fake quantization to `bits`-bit integers (transformers' `ActQuant`):
/// `s = qmax / max(max|x|, 1e-5)`, `x̃ = clamp(round_half_even(x·s), −qmax−1, qmax) / s`.
fn act_quant(x: &Matrix, bits: u32) -> Matrix {
    let qmax = f64::from((1u32 << (bits - 1)) - 1);
    let mut out = x.clone();
    for row in 0..x.rows {
        let values = out.row_mut(row);
        let absmax = values.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1e-5);
        let scale = qmax / absmax;
        for value in values {
            *value = (*value * scale).round_ties_even().clamp(-qmax - 1.0, qmax) / scale;
        }
    }
    out
}

/// Half-split rotary embedding: in each head, dimension `i` pairs with `i + head_dim/2`,
/// rotated by `p·θ^(−2i/head_dim)` at position `p` (the row index).
fn rope(x: &Matrix, heads: usize, head_dim: usize, theta: f64) -> Matrix {
    let half = head_dim / 2;
    let frequencies: Vec<f64> = (0..half)
        .map(|i| theta.powf(-((2 * i) as f64) / head_dim as f64))
        .collect();
    let mut out = x.clone();
    for position in 0..x.rows {
        let row = out.row_mut(position);
        for head in 0..heads {
            let u = &mut row[head * head_dim..(head + 1) * head_dim];
            for (i, frequency) in frequencies.iter().enumerate() {
                let (sin, cos) = (position as f64 * frequency).sin_cos();
                let (a, b) = (u[i], u[i + half]);
                u[i] = a * cos - b * sin;
                u[i + half] = b * cos + a * sin;
            }
        }
    }
    out
}

/// The attributes of an attention node.
struct AttentionShape {
    heads: usize,
    kv_heads: usize,
    head_dim: usize,
    kind: AttentionKind,
    causal: bool,
    score_scale: f64,
}

/// Attention weights from scores, through a [`Nonlinear`] at one node.
struct Weights<'a, N> {
    node: Handle<Node>,
    nonlinear: &'a mut N,
}

/// Grouped-query attention: query head `h` reads key/value head `h / (heads / kv_heads)`.
fn attention<N: Nonlinear>(
    [q, k, v]: [&Matrix; 3],
    shape: &AttentionShape,
    weigh: &mut Weights<'_, N>,
) -> Matrix {
    let &AttentionShape {
        heads,
        kv_heads,
        head_dim,
        kind,
        causal,
        score_scale,
    } = shape;
    let tokens = q.rows;
    let group = heads / kv_heads;
    let scale = score_scale / (head_dim as f64).sqrt();
    // σ(score − ln T): the bias keeps the unnormalized row sums of order one.
    let bias = -(tokens as f64).ln();
    let mut out = Matrix::zeros(tokens, heads * head_dim);
    let mut weights = vec![0.0; tokens];
    for head in 0..heads {
        let kv_head = head / group;
        let query_range = head * head_dim..(head + 1) * head_dim;
        let kv_range = kv_head * head_dim..(kv_head + 1) * head_dim;
        for query in 0..tokens {
            let keys = if causal { query + 1 } else { tokens };
            let q_row = &q.row(query)[query_range.clone()];
            for (key, weight) in weights[..keys].iter_mut().enumerate() {
                let k_row = &k.row(key)[kv_range.clone()];
                *weight = q_row.iter().zip(k_row).map(|(a, b)| a * b).sum::<f64>() * scale;
            }
            match kind {
                AttentionKind::Softmax => weigh.nonlinear.softmax(weigh.node, &mut weights[..keys]),
                AttentionKind::Sigmoid => {
                    for weight in &mut weights[..keys] {
                        *weight = weigh.nonlinear.sigmoid(weigh.node, *weight + bias);
                    }
                }
            }
            let out_row = &mut out.row_mut(query)[query_range.clone()];
            for (key, weight) in weights[..keys].iter().enumerate() {
                let v_row = &v.row(key)[kv_range.clone()];
                for (y, value) in out_row.iter_mut().zip(v_row) {
                    *y += weight * value;
                }
            }
        }
    }
    out
}

fn zip(a: &Matrix, b: &Matrix, f: impl Fn(f64, f64) -> f64) -> Matrix {
    let data = a.data.iter().zip(&b.data).map(|(&x, &y)| f(x, y)).collect();
    Matrix {
        rows: a.rows,
        cols: a.cols,
        data,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matrix(rows: usize, cols: usize, data: &[f64]) -> Matrix {
        Matrix {
            rows,
            cols,
            data: data.to_vec(),
        }
    }

    /// The AVX2 build of the block product gives the same bits as the portable one, and both
    /// are the sequential sums.
    #[test]
    fn block_sums_agree_to_the_bit() {
        let inputs = 1037;
        let x: Vec<f64> = (0..inputs)
            .map(|i| ((i * 7919) % 1013) as f64 / 97.0 - 5.0)
            .collect();
        let w: Vec<f64> = (0..inputs * BLOCK)
            .map(|i| ((i * 104_729) % 997) as f64 / 89.0 - 5.5)
            .collect();
        let sums = block_sums(&x, &w);
        assert_eq!(
            sums.map(f64::to_bits),
            block_sums_portable(&x, &w).map(f64::to_bits)
        );
        for (lane, &sum) in sums.iter().enumerate() {
            let sequential = (0..inputs).fold(0.0, |s, i| s + x[i] * w[i * BLOCK + lane]);
            assert_eq!(sum.to_bits(), sequential.to_bits(), "lane {lane}");
        }
    }

    /// Selecting `hidden` skips the lm head: its value is neither computed nor shown, and
    /// `hidden` is the one of a full run.
    #[test]
    fn unselected_outputs_are_not_computed() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/dev-h32");
        let checkpoint = Checkpoint::open(dir).expect("fixture opens");
        let graph = crate::frontend::build(&checkpoint, &crate::frontend::Options::encrypted(3))
            .expect("graph");
        let info = crate::ir::verify(&graph).expect("verifies");
        let tokens = [1, 2, 3];
        let full = run(&graph, &info, &checkpoint, &tokens).expect("runs");
        let mut seen = Vec::new();
        let hidden = crate::frontend::HIDDEN;
        let selected = run_with_observed(
            &graph,
            &info,
            &checkpoint,
            &tokens,
            &[hidden],
            &mut Exact,
            |node, _| seen.push(node),
        )
        .expect("runs");
        assert_eq!(selected.iter().count(), 1);
        assert_eq!(selected.get(hidden), full.get(hidden));
        assert!(full.get(crate::frontend::LOGITS).is_some());
        assert!(
            seen.iter()
                .all(|&node| !matches!(graph.node(node).op, Op::LmHead { .. })),
            "the lm head is skipped"
        );
        assert_eq!(
            seen.len(),
            graph.nodes().len() - 2,
            "all but tokens and lm head"
        );
    }

    #[test]
    fn act_quant_rounds_half_to_even_per_row() {
        // Row 0: absmax 1, s = 127: 0.3·127 = 38.1 -> 38; 2.5/127·127 = 2.5 -> 2 (tie to even).
        // Row 1: all zeros stay zero (the 1e-5 floor avoids dividing by zero).
        let x = matrix(2, 3, &[0.3, -1.0, 2.5 / 127.0, 0.0, 0.0, 0.0]);
        let y = act_quant(&x, 8);
        let expected = [38.0 / 127.0, -1.0, 2.0 / 127.0, 0.0, 0.0, 0.0];
        for (got, want) in y.data().iter().zip(expected) {
            assert!((got - want).abs() < 1e-15, "{got} vs {want}");
        }
    }

    #[test]
    fn rope_rotates_half_split_pairs_by_position() {
        // One head of width 4, θ = 100: frequencies 1 and 1/10. Position 0 is unrotated.
        let x = matrix(2, 4, &[1.0, 2.0, 3.0, 4.0, 1.0, 2.0, 3.0, 4.0]);
        let y = rope(&x, 1, 4, 100.0);
        assert_eq!(y.row(0), x.row(0));
        let (s1, c1) = 1.0f64.sin_cos();
        let (s2, c2) = 0.1f64.sin_cos();
        let expected = [
            1.0 * c1 - 3.0 * s1,
            2.0 * c2 - 4.0 * s2,
            3.0 * c1 + 1.0 * s1,
            4.0 * c2 + 2.0 * s2,
        ];
        for (got, want) in y.row(1).iter().zip(expected) {
            assert!((got - want).abs() < 1e-15, "{got} vs {want}");
        }
    }

    /// Causal attention with score scale 1 and exact weights.
    fn attend(
        [q, k, v]: [&Matrix; 3],
        heads: usize,
        kv_heads: usize,
        head_dim: usize,
        kind: AttentionKind,
    ) -> Matrix {
        let shape = AttentionShape {
            heads,
            kv_heads,
            head_dim,
            kind,
            causal: true,
            score_scale: 1.0,
        };
        let mut weights = Weights {
            node: Handle::from_index(0),
            nonlinear: &mut Exact,
        };
        attention([q, k, v], &shape, &mut weights)
    }

    #[test]
    fn sigmoid_attention_is_unnormalized_and_causal() {
        // T = 2, one head of width 1: q = k = [1, 2], v = [10, 20].
        let q = matrix(2, 1, &[1.0, 2.0]);
        let v = matrix(2, 1, &[10.0, 20.0]);
        let y = attend([&q, &q, &v], 1, 1, 1, AttentionKind::Sigmoid);
        let sigma = |z: f64| 1.0 / (1.0 + (-z).exp());
        let bias = -(2.0f64).ln();
        assert!((y.row(0)[0] - sigma(1.0 + bias) * 10.0).abs() < 1e-12);
        let second = sigma(2.0 + bias) * 10.0 + sigma(4.0 + bias) * 20.0;
        assert!((y.row(1)[0] - second).abs() < 1e-12);

        let softmax = attend([&q, &q, &v], 1, 1, 1, AttentionKind::Softmax);
        let w = 1.0 / (1.0 + (2.0f64).exp());
        assert!((softmax.row(0)[0] - 10.0).abs() < 1e-12);
        assert!((softmax.row(1)[0] - (w * 10.0 + (1.0 - w) * 20.0)).abs() < 1e-12);
    }

    #[test]
    fn grouped_query_attention_shares_key_value_heads() {
        // Two query heads over one KV head: identical queries give identical outputs.
        let q = matrix(1, 2, &[0.5, 0.5]);
        let k = matrix(1, 1, &[1.0]);
        let v = matrix(1, 1, &[3.0]);
        let y = attend([&q, &k, &v], 2, 1, 1, AttentionKind::Softmax);
        assert_eq!(y.row(0), [3.0, 3.0]);
    }
}
