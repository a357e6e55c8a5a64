//! Each model op as HE ops: the rewritten model IR, its approximation table and a per-layer encoding in, the logical HE graph out.

use std::collections::BTreeMap;

use ensi_checkpoint::Checkpoint;
use ensi_runtime::ckks::numerics::chebyshev::ChebyshevSeries;
use ensi_runtime::plan::{
    ApproxId, LinearMethod, PlainId, PlainRecipe, PolyApprox, Region, SignedRow, WeightId,
    WeightKind, WeightRef,
};

use super::LowerError;
use super::graph::{ApproxInfo, BootstrapHint, HeGraph, HeInput, HeOp, HeType, Value};
use super::layout::{Encoding, Shapes};
use crate::approx::{ApproxTable, Approximation, Form, poly_depth};
use crate::calibrate::Site;
use crate::forward::Function;
use crate::frontend::HIDDEN;
use crate::ir::{AttentionKind, Graph, Handle, Node, Op};

/// Where a model-IR node belongs: its decoder layer (if any) and block.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct IrRegion {
    pub layer: Option<u32>,
    pub block: &'static str,
}

/// The block of a tensor name (`model.layers.3.mlp.up_proj.weight` -> layer 3, `mlp`).
fn named_region(name: &str) -> Option<IrRegion> {
    let block = if name.contains("input_layernorm") {
        "attention norm"
    } else if name.contains("post_attention_layernorm") {
        "mlp norm"
    } else if name.contains("attn_sub_norm") || name.contains("inner_attn_ln") {
        "attention sub-norm"
    } else if name.contains("ffn_sub_norm") || name.contains("ffn_layernorm") {
        "mlp sub-norm"
    } else if name.contains("self_attn") {
        "attention"
    } else if name.contains("mlp") {
        "mlp"
    } else if name.contains("embed_tokens") {
        "embedding"
    } else {
        "final norm"
    };
    let layer = name
        .strip_prefix("model.layers.")
        .and_then(|rest| rest.split('.').next())
        .and_then(|index| index.parse().ok());
    Some(IrRegion { layer, block })
}

/// The region of every node of `graph` (tensor names decide; unnamed ops inherit the layer of
/// their latest operand).
pub(crate) fn ir_regions(graph: &Graph) -> Vec<IrRegion> {
    let mut regions: Vec<IrRegion> = Vec::with_capacity(graph.nodes().len());
    for (_, node) in graph.nodes().iter() {
        let inherited = node
            .op
            .operands()
            .iter()
            .map(|o| regions[o.index()].layer)
            .max()
            .flatten();
        let region = match &node.op {
            Op::Tokens {} | Op::Embed { .. } => IrRegion {
                layer: None,
                block: "embedding",
            },
            Op::RmsNorm { gain, .. } => named_region(gain.as_str()).unwrap_or(IrRegion {
                layer: inherited,
                block: "norm",
            }),
            Op::TernaryLinear { weight, .. } => named_region(weight.as_str()).unwrap_or(IrRegion {
                layer: inherited,
                block: "linear",
            }),
            Op::Rope { .. } | Op::Attention { .. } => IrRegion {
                layer: inherited,
                block: "attention",
            },
            Op::Relu2 { .. } | Op::Silu { .. } | Op::Mul { .. } | Op::ActQuant { .. } => IrRegion {
                layer: inherited,
                block: "mlp",
            },
            Op::Add { .. } => IrRegion {
                layer: inherited,
                block: "residual",
            },
            Op::Scale { x, .. } => regions[x.index()].clone(),
            Op::LmHead { .. } => IrRegion {
                layer: None,
                block: "lm head (client)",
            },
        };
        regions.push(region);
    }
    regions
}

/// The decoder layers of `graph` (one more than the largest layer index its names carry).
pub fn layer_count(graph: &Graph) -> usize {
    ir_regions(graph)
        .iter()
        .filter_map(|r| r.layer)
        .max()
        .map_or(0, |l| l as usize + 1)
}

/// A lowered model value: its HE value and the encoding it is in.
#[derive(Debug, Clone, Copy)]
struct Lowered {
    value: Value,
    encoding: Encoding,
}

/// The state of one lowering.
struct Lowerer<'a> {
    ir: &'a Graph,
    checkpoint: &'a Checkpoint,
    table: &'a ApproxTable,
    shapes: Shapes,
    encodings: &'a [Encoding],
    regions: Vec<IrRegion>,
    region_ids: BTreeMap<IrRegion, u32>,
    he: HeGraph,
    lowered: Vec<Option<Lowered>>,
    /// Repacked copies: (model node, encoding) -> value.
    repacked: BTreeMap<(usize, Encoding), Value>,
    weight_ids: BTreeMap<String, WeightId>,
    /// Model nodes whose only users are RoPE nodes (their projections are lowered there).
    rope_only: Vec<bool>,
    /// The IR node being lowered, for names and regions.
    current: Handle<Node>,
    name_prefix: String,
}

/// Lowers `graph` (rewritten and verified; its nonlinearities approximated by `table`) into
/// the logical HE graph, layer `l` in `encodings[l]` (the embedding in the first layer's,
/// the final norm in the last's).
pub fn lower(
    graph: &Graph,
    checkpoint: &Checkpoint,
    table: &ApproxTable,
    shapes: Shapes,
    encodings: &[Encoding],
) -> Result<HeGraph, LowerError> {
    let layers = layer_count(graph);
    if encodings.len() != layers.max(1) {
        return Err(LowerError::EncodingCount {
            layers,
            given: encodings.len(),
        });
    }
    let mut users = vec![Vec::new(); graph.nodes().len()];
    for (handle, node) in graph.nodes().iter() {
        for operand in node.op.operands() {
            users[operand.index()].push(handle);
        }
    }
    let rope_only = users
        .iter()
        .map(|u| {
            !u.is_empty()
                && u.iter()
                    .all(|&user| matches!(graph.node(user).op, Op::Rope { .. }))
        })
        .collect();
    let mut lowerer = Lowerer {
        ir: graph,
        checkpoint,
        table,
        shapes,
        encodings,
        regions: ir_regions(graph),
        region_ids: BTreeMap::new(),
        he: HeGraph::new(),
        lowered: vec![None; graph.nodes().len()],
        repacked: BTreeMap::new(),
        weight_ids: BTreeMap::new(),
        rope_only,
        current: graph
            .nodes()
            .iter()
            .next()
            .map_or_else(|| Handle::from_index(0), |(handle, _)| handle),
        name_prefix: String::new(),
    };
    for (handle, node) in graph.nodes().iter() {
        lowerer.current = handle;
        lowerer.name_prefix = lowerer.prefix(handle);
        lowerer.node(handle, node)?;
    }
    let hidden = graph.output(HIDDEN).ok_or(LowerError::NoHiddenOutput)?;
    let value = lowerer.lowered[hidden.index()]
        .ok_or(LowerError::NoHiddenOutput)?
        .value;
    lowerer.he.outputs.push((HIDDEN.to_owned(), value));
    Ok(lowerer.he)
}

impl Lowerer<'_> {
    fn prefix(&self, handle: Handle<Node>) -> String {
        let region = &self.regions[handle.index()];
        let block = region
            .block
            .split_whitespace()
            .map(|w| w.trim_end_matches(|c: char| !c.is_alphanumeric()))
            .collect::<Vec<_>>()
            .join("_");
        match region.layer {
            Some(layer) => format!("l{layer}.{block}"),
            None => block,
        }
    }

    /// The encoding of the layer `handle` belongs to.
    fn encoding_of(&self, handle: Handle<Node>) -> Encoding {
        let region = &self.regions[handle.index()];
        match region.layer {
            Some(layer) => self.encodings[(layer as usize).min(self.encodings.len() - 1)],
            None if region.block == "embedding" => self.encodings[0],
            None => self.encodings[self.encodings.len() - 1],
        }
    }

    fn region(&mut self) -> u32 {
        let region = self.regions[self.current.index()].clone();
        if let Some(&id) = self.region_ids.get(&region) {
            return id;
        }
        let id = self.he.regions.len() as u32;
        self.he.regions.push(Region {
            layer: region.layer,
            block: region.block.to_owned(),
        });
        self.region_ids.insert(region, id);
        id
    }

    fn push(&mut self, op: HeOp, operands: &[Value], ty: HeType, what: &str) -> Value {
        let region = self.region();
        let name = format!("{}.{what}", self.name_prefix);
        self.he.push(op, operands, ty, region, name)
    }

    fn ty(&self, value: Value) -> HeType {
        self.he.node(value).ty
    }

    /// A value with the layout of `like` but `zero_padding` as given.
    fn same(&self, like: Value, zero_padding: bool) -> HeType {
        HeType {
            zero_padding,
            ..self.ty(like)
        }
    }

    fn weight(&mut self, name: &str, kind: WeightKind, shape: [u32; 2]) -> WeightId {
        if let Some(&id) = self.weight_ids.get(name) {
            return id;
        }
        let id = WeightId(self.he.weights.len() as u32);
        // Digests are filled in when the plan is emitted (one pass over the checkpoint).
        self.he.weights.push(WeightRef {
            name: name.to_owned(),
            kind,
            shape,
            digest: [0; 32],
        });
        self.weight_ids.insert(name.to_owned(), id);
        id
    }

    fn plain(&mut self, recipe: PlainRecipe) -> PlainId {
        if let Some(index) = self.he.plains.iter().position(|p| *p == recipe) {
            return PlainId(index as u32);
        }
        self.he.plains.push(recipe);
        PlainId(self.he.plains.len() as u32 - 1)
    }

    fn approximation(&self, function: Function) -> Result<&Approximation, LowerError> {
        let site = Site {
            node: self.current,
            function,
        };
        self.table
            .get(site)
            .ok_or(LowerError::MissingApproximation { site })
    }

    /// Registers `series` (fitted on the argument `arg = k·x + m` of the operand `x`) as a
    /// series on `[−1, 1]` and returns it with the input map `t = alpha·x + beta`.
    fn series(
        &mut self,
        approximation: &Approximation,
        series: &ChebyshevSeries,
        function: String,
        (k, m): (f64, f64),
        padding_operand: f64,
    ) -> (ApproxId, f64, f64) {
        let (a, b) = (series.a(), series.b());
        let alpha = 2.0 * k / (b - a);
        let beta = (2.0 * m - a - b) / (b - a);
        let id = ApproxId(self.he.approximations.len() as u32);
        self.he.approximations.push(PolyApprox {
            function: format!("{function} on [{a:.6e}, {b:.6e}]"),
            lo: -1.0,
            hi: 1.0,
            coefficients: series.coeffs().to_vec(),
            depth: poly_depth(series.degree()),
            max_error: approximation.max_error,
        });
        let interval = approximation.interval;
        let padding_value = series.evaluate_unit(alpha * padding_operand + beta);
        let max_abs = (0..=2048)
            .map(|i| series.evaluate_unit(-1.0 + f64::from(i) / 1024.0).abs())
            .fold(padding_value.abs(), f64::max);
        self.he.approx_info.push(ApproxInfo {
            function,
            interval: (interval.lo, interval.hi),
            newton_steps: approximation.form.steps(),
            max_error: approximation.max_error,
            padding_value,
            max_abs,
        });
        (id, alpha, beta)
    }

    fn poly(&mut self, x: Value, (approx, alpha, beta): (ApproxId, f64, f64), what: &str) -> Value {
        let ty = self.same(x, false);
        let value = self.push(
            HeOp::Poly {
                approx,
                alpha,
                beta,
            },
            &[x],
            ty,
            what,
        );
        let bound = 1.25 * self.he.approx_info[approx.0 as usize].max_abs;
        self.he
            .hints
            .insert(value, BootstrapHint::Bounded { bound, norm: false });
        value
    }

    /// The lowered value of `handle` in `encoding` (repacked once if its own differs).
    fn value_in(&mut self, handle: Handle<Node>, encoding: Encoding) -> Result<Value, LowerError> {
        let lowered = self.lowered[handle.index()].ok_or(LowerError::Unsupported {
            node: handle,
            op: self.ir.node(handle).op.kind().mnemonic(),
            reason: "its value is not computed under encryption".to_owned(),
        })?;
        if lowered.encoding == encoding {
            return Ok(lowered.value);
        }
        if let Some(&value) = self.repacked.get(&(handle.index(), encoding)) {
            return Ok(value);
        }
        let from = self.ty(lowered.value).layout;
        let to = self.shapes.layout(encoding, from.columns);
        let value = self.push(
            HeOp::Repack {
                mask_scale: f64::NAN,
            },
            &[lowered.value],
            HeType::of(to, true),
            &format!("repack.{}", encoding.name()),
        );
        self.repacked.insert((handle.index(), encoding), value);
        Ok(value)
    }

    fn set(&mut self, handle: Handle<Node>, value: Value) {
        self.he.hints.entry(value).or_insert(BootstrapHint::Node {
            node: handle,
            norm: false,
        });
        let encoding = self.encoding_of(handle);
        self.lowered[handle.index()] = Some(Lowered { value, encoding });
    }

    fn node(&mut self, handle: Handle<Node>, node: &Node) -> Result<(), LowerError> {
        let encoding = self.encoding_of(handle);
        let unsupported = |reason: &str| LowerError::Unsupported {
            node: handle,
            op: node.op.kind().mnemonic(),
            reason: reason.to_owned(),
        };
        let value = match &node.op {
            Op::Tokens {} | Op::LmHead { .. } => return Ok(()),
            Op::Embed { table, .. } => {
                let columns = node_columns(node);
                let vocab = self
                    .checkpoint
                    .matrix(table.as_str())
                    .map_or(0, |m| m.rows() as u32);
                let embedding = self.weight(table.as_str(), WeightKind::Matrix, [vocab, columns]);
                let layout = self.shapes.layout(encoding, columns);
                let index = self.he.inputs.len() as u32;
                let value = self.push(
                    HeOp::Input { index },
                    &[],
                    HeType::of(layout, true),
                    "input",
                );
                self.he.inputs.push(HeInput {
                    name: "embeddings".to_owned(),
                    embedding,
                    value,
                });
                value
            }
            Op::ActQuant { .. } => {
                return Err(unsupported(
                    "activation quantization is not computed under encryption (build the graph \
                     with act_quant off)",
                ));
            }
            Op::RmsNorm {
                x,
                gain,
                gain_scale,
                eps,
            } => {
                let operand = *x;
                let x = self.value_in(operand, encoding)?;
                self.he.hints.insert(
                    x,
                    BootstrapHint::Node {
                        node: operand,
                        norm: true,
                    },
                );
                self.rms_norm(x, encoding, gain.as_str(), gain_scale.0, eps.0)?
            }
            Op::TernaryLinear { x, weight, scale } => {
                if self.rope_only[handle.index()] {
                    return Ok(());
                }
                let x = self.value_in(*x, encoding)?;
                let rows = identity_rows(node_columns(node));
                let y = self.ternary(x, encoding, weight.as_str(), rows, "linear")?;
                self.scaled(y, scale.0)
            }
            Op::Scale { x, factor } => {
                let x = self.value_in(*x, encoding)?;
                self.scaled(x, factor.0)
            }
            Op::Rope {
                x,
                heads,
                head_dim,
                theta,
            } => {
                let Op::TernaryLinear {
                    x: input,
                    weight,
                    scale,
                } = &self.ir.node(*x).op
                else {
                    return Err(unsupported(
                        "RoPE is lowered as two projections, so its operand must be a ternary linear layer",
                    ));
                };
                let input = self.value_in(*input, encoding)?;
                self.rope(
                    input,
                    encoding,
                    weight.as_str(),
                    scale.0,
                    (*heads as u32, *head_dim as u32),
                    theta.0,
                )?
            }
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
            } => {
                if !causal {
                    return Err(unsupported(
                        "only causal attention is lowered (the shifts pull zero padding in)",
                    ));
                }
                if *kv_heads == 0 || heads % kv_heads != 0 {
                    return Err(unsupported(
                        "heads must be a multiple of the key-value heads",
                    ));
                }
                let (q, k, v) = (
                    self.value_in(*q, encoding)?,
                    self.value_in(*k, encoding)?,
                    self.value_in(*v, encoding)?,
                );
                let shape = AttentionShape {
                    heads: *heads as u32,
                    kv_heads: *kv_heads as u32,
                    head_dim: *head_dim as u32,
                    score_scale: score_scale.0,
                };
                match kind {
                    AttentionKind::Sigmoid => self.sigmoid_attention(q, k, v, encoding, shape)?,
                    AttentionKind::Softmax => self.softmax_attention(q, k, v, encoding, shape)?,
                }
            }
            Op::Relu2 { x } => {
                let x = self.value_in(*x, encoding)?;
                self.relu2(x)?
            }
            Op::Silu { x, input_scale } => {
                let x = self.value_in(*x, encoding)?;
                let approximation = self.approximation(Function::Silu)?.clone();
                let map = self.series(
                    &approximation,
                    &approximation.series,
                    "silu".to_owned(),
                    (input_scale.0, 0.0),
                    0.0,
                );
                self.poly(x, map, "silu")
            }
            Op::Mul { lhs, rhs } => {
                let (a, b) = (
                    self.value_in(*lhs, encoding)?,
                    self.value_in(*rhs, encoding)?,
                );
                let ty = self.same(a, self.ty(a).zero_padding || self.ty(b).zero_padding);
                self.push(HeOp::MulCt, &[a, b], ty, "mul")
            }
            Op::Add { lhs, rhs } => {
                let (a, b) = (
                    self.value_in(*lhs, encoding)?,
                    self.value_in(*rhs, encoding)?,
                );
                let ty = self.same(a, self.ty(a).zero_padding && self.ty(b).zero_padding);
                self.push(HeOp::Add, &[a, b], ty, "add")
            }
        };
        self.set(handle, value);
        Ok(())
    }

    /// `factor · x` (one level unless `factor` is 1).
    fn scaled(&mut self, x: Value, factor: f64) -> Value {
        if factor == 1.0 {
            return x;
        }
        let ty = self.ty(x);
        self.push(
            HeOp::MulConst {
                value: factor,
                scale: f64::NAN,
            },
            &[x],
            ty,
            "scale",
        )
    }

    /// `W' x` with the rows `rows` of the ternary matrix `weight`, in `encoding`.
    fn ternary(
        &mut self,
        x: Value,
        encoding: Encoding,
        weight: &str,
        rows: Vec<SignedRow>,
        what: &str,
    ) -> Result<Value, LowerError> {
        let input = self.ty(x);
        let matrix = self
            .checkpoint
            .ternary(weight)
            .ok_or_else(|| LowerError::MissingWeight {
                name: weight.to_owned(),
            })?;
        let id = self.weight(
            weight,
            WeightKind::Ternary,
            [matrix.rows() as u32, matrix.cols() as u32],
        );
        let out = self.shapes.layout(encoding, rows.len() as u32);
        let (method, zero_padding) = match encoding {
            Encoding::Columns => (LinearMethod::Columns, input.zero_padding),
            Encoding::Dense => (
                LinearMethod::Diagonals {
                    baby_steps: baby_steps(
                        input.count,
                        out.ciphertexts(),
                        self.shapes.blocks(encoding),
                    ),
                },
                true,
            ),
        };
        let plain_scale = match method {
            LinearMethod::Columns => 1.0,
            LinearMethod::Diagonals { .. } => f64::NAN,
        };
        Ok(self.push(
            HeOp::TernaryLinear {
                weight: id,
                rows,
                method,
                plain_scale,
            },
            &[x],
            HeType::of(out, zero_padding),
            what,
        ))
    }

    /// RMSNorm: the statistic `s = Σ x²` on one ciphertext, `y ≈ 1/√(s/d + eps)` by the
    /// approximation's series (and Newton steps), the gain folded into one plaintext product
    /// of `y`, and one product on the data path.
    fn rms_norm(
        &mut self,
        x: Value,
        encoding: Encoding,
        gain: &str,
        gain_scale: f64,
        eps: f64,
    ) -> Result<Value, LowerError> {
        let input = self.ty(x);
        let columns = input.layout.columns;
        let d = f64::from(columns);
        let approximation = self.approximation(Function::InvSqrt)?.clone();
        let Interval2 { lo, hi } = Interval2::of(&approximation);
        let square = self.push(HeOp::Square, &[x], input, "square");
        let blocks = self.shapes.blocks(encoding);
        let mut statistic = square;
        if input.count > 1 {
            let layout = self.shapes.layout(encoding, blocks);
            statistic = self.push(
                HeOp::SumCiphertexts { group: input.count },
                &[statistic],
                HeType::of(layout, input.zero_padding),
                "sum_cts",
            );
        }
        if blocks > 1 {
            let layout = self.shapes.replicated(encoding, 1);
            statistic = self.push(
                HeOp::RotSum {
                    step: self.shapes.block,
                    count: blocks,
                },
                &[statistic],
                HeType::of(layout, input.zero_padding),
                "rot_sum",
            );
        }
        // Padding slots would evaluate the series at s = 0 (m = eps), outside its interval:
        // give them the interval's centre instead (two additions, no level).
        let padding = d * ((lo + hi) / 2.0 - eps);
        let statistic = if padding > 0.0 {
            self.fill_padding(statistic, padding)
        } else {
            statistic
        };
        let series = approximation.series.clone();
        let guess = self.series(
            &approximation,
            &series,
            "inv_sqrt".to_owned(),
            (1.0 / d, eps),
            padding.max(0.0),
        );
        let mut y = self.poly(statistic, guess, "inv_sqrt");
        // Range facts for bootstrapping on the statistic path (every slot: the padding holds
        // the interval's centre): s = d (m − eps) ≤ d·hi; the guess is the series on [−1, 1];
        // Newton iterates stay near 1/√m ≤ 1/√lo (a quarter of margin on both).
        let norm = |bound: f64| BootstrapHint::Bounded { bound, norm: true };
        // Every value of the statistic's sum (squares, partial sums, the padding fill's
        // intermediate s + fill) is at most 2·d·hi.
        let mut partial = statistic;
        while partial != x {
            self.he.hints.insert(partial, norm(2.0 * d * hi));
            partial = self.he.operands(partial)[0];
        }
        let guess_bound = 1.25 * self.he.approx_info[guess.0.0 as usize].max_abs;
        self.he.hints.insert(y, norm(guess_bound));
        let iterate_bound = 1.25 / lo.max(f64::MIN_POSITIVE).sqrt();
        let steps = approximation.form.steps();
        if steps > 0 {
            // z = −m/2 = −s/(2d) − eps/2, shared by every step.
            let ty = self.ty(statistic);
            let z = self.push(
                HeOp::MulConst {
                    value: -0.5 / d,
                    scale: f64::NAN,
                },
                &[statistic],
                ty,
                "newton.half_m",
            );
            let z = self.push(
                HeOp::AddConst { value: -0.5 * eps },
                &[z],
                HeType {
                    zero_padding: false,
                    ..ty
                },
                "newton.half_m",
            );
            for step in 0..steps {
                y = self.newton_inv_sqrt(y, z, step);
                self.he.hints.insert(y, norm(iterate_bound));
            }
        }
        let recipe = PlainRecipe::ColumnVector {
            weight: self.weight(gain, WeightKind::Vector, [columns, 1]),
            factor: gain_scale,
            layout: input.layout,
        };
        let plain = self.plain(recipe);
        let scaled = self.push(
            HeOp::MulPlain {
                plain,
                scale: f64::NAN,
            },
            &[y],
            HeType::of(input.layout, true),
            "gain",
        );
        Ok(self.push(
            HeOp::MulCt,
            &[x, scaled],
            HeType::of(input.layout, true),
            "normed",
        ))
    }

    /// One Newton step of `1/√m` with `z = −m/2`: `y ← 1.5 y + (z y)(y²)` (two levels).
    fn newton_inv_sqrt(&mut self, y: Value, z: Value, step: usize) -> Value {
        let ty = self.ty(y);
        let what = format!("newton{step}");
        let square = self.push(HeOp::Square, &[y], ty, &format!("{what}.y2"));
        let zy = self.push(HeOp::MulCt, &[z, y], ty, &format!("{what}.zy"));
        let cube = self.push(HeOp::MulCt, &[square, zy], ty, &format!("{what}.zy3"));
        let linear = self.push(
            HeOp::MulConst {
                value: 1.5,
                scale: f64::NAN,
            },
            &[y],
            ty,
            &format!("{what}.1.5y"),
        );
        self.push(HeOp::Add, &[cube, linear], ty, &what)
    }

    /// One Newton step of `1/S`: `y ← y (2 − S y)` (two levels).
    fn newton_inverse(&mut self, y: Value, s: Value, step: usize) -> Value {
        let ty = self.ty(y);
        let what = format!("newton{step}");
        let sy = self.push(HeOp::MulCt, &[s, y], ty, &format!("{what}.sy"));
        let negated = self.push(HeOp::Neg, &[sy], ty, &format!("{what}.-sy"));
        let residual = self.push(
            HeOp::AddConst { value: 2.0 },
            &[negated],
            HeType {
                zero_padding: false,
                ..ty
            },
            &format!("{what}.2-sy"),
        );
        self.push(HeOp::MulCt, &[y, residual], ty, &what)
    }

    /// `x` with `value` in its padding slots (valid slots unchanged): `x + value − value·valid`.
    fn fill_padding(&mut self, x: Value, value: f64) -> Value {
        let ty = self.ty(x);
        let shifted = self.push(
            HeOp::AddConst { value },
            &[x],
            HeType {
                zero_padding: false,
                ..ty
            },
            "pad_fill",
        );
        let plain = self.plain(PlainRecipe::ColumnValues {
            values: vec![-value; ty.layout.columns as usize],
            layout: ty.layout,
        });
        self.push(
            HeOp::AddPlain { plain },
            &[shifted],
            HeType {
                zero_padding: false,
                ..ty
            },
            "pad_fill",
        )
    }

    /// RoPE of `scale · W x`: `(W x) ⊙ cos + (rotate_half(W) x) ⊙ sin`, the scale folded
    /// into both recipes and `rotate_half` a signed row map of `W`.
    fn rope(
        &mut self,
        x: Value,
        encoding: Encoding,
        weight: &str,
        scale: f64,
        (heads, head_dim): (u32, u32),
        theta: f64,
    ) -> Result<Value, LowerError> {
        let columns = heads * head_dim;
        let plain = self.ternary(x, encoding, weight, identity_rows(columns), "proj")?;
        let rotated = self.ternary(
            x,
            encoding,
            weight,
            rotate_half(heads, head_dim),
            "proj_rotated",
        )?;
        let layout = self.shapes.layout(encoding, columns);
        let recipe = |sine| PlainRecipe::Rope {
            layout,
            head_dim,
            theta,
            sine,
            factor: scale,
            position_offset: 0,
        };
        let (cos, sin) = (self.plain(recipe(false)), self.plain(recipe(true)));
        let ty = HeType::of(layout, true);
        let a = self.push(
            HeOp::MulPlain {
                plain: cos,
                scale: f64::NAN,
            },
            &[plain],
            ty,
            "rope.cos",
        );
        let b = self.push(
            HeOp::MulPlain {
                plain: sin,
                scale: f64::NAN,
            },
            &[rotated],
            ty,
            "rope.sin",
        );
        Ok(self.push(HeOp::Sum, &[a, b], ty, "rope"))
    }

    /// `x` (key-value heads) repeated for every query head of each group: slices of each
    /// head's ciphertexts, concatenated (no arithmetic).
    fn repeat_heads(
        &mut self,
        x: Value,
        encoding: Encoding,
        shape: &AttentionShape,
        what: &str,
    ) -> Value {
        if shape.kv_heads == shape.heads {
            return x;
        }
        let per = self.shapes.per_head(encoding, shape.head_dim);
        let ty = self.ty(x);
        let slices: Vec<Value> = (0..shape.kv_heads)
            .map(|g| {
                let layout = self.shapes.layout(encoding, shape.head_dim);
                self.push(
                    HeOp::Slice {
                        start: g * per,
                        count: per,
                    },
                    &[x],
                    HeType::of(layout, ty.zero_padding),
                    &format!("{what}.head{g}"),
                )
            })
            .collect();
        let group = shape.heads / shape.kv_heads;
        let parts: Vec<Value> = (0..shape.heads)
            .map(|h| slices[(h / group) as usize])
            .collect();
        let layout = self.shapes.layout(encoding, shape.heads * shape.head_dim);
        self.push(
            HeOp::Concat,
            &parts,
            HeType::of(layout, ty.zero_padding),
            &format!("{what}.repeat"),
        )
    }

    /// `Rotate(x, −r)` for `r > 0`: token `t` takes token `t − r`, zeros for `t < r`.
    fn shift(&mut self, x: Value, r: u32, what: &str) -> Value {
        if r == 0 {
            return x;
        }
        let ty = self.same(x, false);
        self.push(
            HeOp::Rotate { steps: -(r as i32) },
            &[x],
            ty,
            &format!("{what}.shift{r}"),
        )
    }

    /// Per-head dot products of `q` and the `r`-shifted, head-repeated `k`: one value per
    /// head and token, repeated over the head's blocks.
    fn head_scores(
        &mut self,
        q: Value,
        k: Value,
        encoding: Encoding,
        shape: &AttentionShape,
        r: u32,
    ) -> Value {
        let shifted = self.shift(k, r, "k");
        let keys = self.repeat_heads(shifted, encoding, shape, &format!("k{r}"));
        let ty = self.same(q, self.ty(q).zero_padding && self.ty(keys).zero_padding);
        let product = self.push(HeOp::MulCt, &[q, keys], ty, &format!("qk{r}"));
        let per = self.shapes.per_head(encoding, shape.head_dim);
        let blocks = self.shapes.blocks(encoding);
        let mut sum = product;
        if per > 1 {
            let layout = self.shapes.layout(encoding, shape.heads * blocks);
            sum = self.push(
                HeOp::SumCiphertexts { group: per },
                &[sum],
                HeType::of(layout, ty.zero_padding),
                &format!("score{r}.sum_cts"),
            );
        }
        if blocks > 1 {
            let layout = self.shapes.replicated(encoding, shape.heads);
            sum = self.push(
                HeOp::RotSum {
                    step: self.shapes.block,
                    count: blocks,
                },
                &[sum],
                HeType::of(layout, ty.zero_padding),
                &format!("score{r}.rot_sum"),
            );
        }
        sum
    }

    /// Sigmoid attention: for every shift `r < T`, `A_r = σ(score_scale·(q·k_r)/√d − ln T)`
    /// per head, `O += A_r ⊙ v_r`; zero padding of `k` and `v` makes the shifts causal.
    fn sigmoid_attention(
        &mut self,
        q: Value,
        k: Value,
        v: Value,
        encoding: Encoding,
        shape: AttentionShape,
    ) -> Result<Value, LowerError> {
        let tokens = self.shapes.tokens;
        let approximation = self.approximation(Function::Sigmoid)?.clone();
        let k_scale = shape.score_scale / f64::from(shape.head_dim).sqrt();
        let map = self.series(
            &approximation,
            &approximation.series,
            "sigmoid".to_owned(),
            (k_scale, -f64::from(tokens).ln()),
            0.0,
        );
        let mut terms = Vec::with_capacity(tokens as usize);
        for r in 0..tokens {
            let score = self.head_scores(q, k, encoding, &shape, r);
            let weight = self.poly(score, map, &format!("sigmoid{r}"));
            let shifted = self.shift(v, r, "v");
            let values = self.repeat_heads(shifted, encoding, &shape, &format!("v{r}"));
            let ty = self.same(values, false);
            terms.push(self.push(HeOp::MulCt, &[values, weight], ty, &format!("av{r}")));
        }
        let ty = self.same(terms[0], false);
        let out = self.push(HeOp::Sum, &terms, ty, "out.sum");
        Ok(self.mask_padding(out, "out"))
    }

    /// `x` with its padding zeroed: a product by the valid-slot mask (one level). Attention's
    /// shifted values carry valid rows into the padding of the next positions and its weights
    /// are the series at the padding argument, so its output's padding holds by-products that
    /// would otherwise reach the residual stream and every later norm statistic.
    fn mask_padding(&mut self, x: Value, what: &str) -> Value {
        let ty = self.ty(x);
        let plain = self.plain(PlainRecipe::ColumnValues {
            values: vec![1.0; ty.layout.columns as usize],
            layout: ty.layout,
        });
        self.push(
            HeOp::MulPlain {
                plain,
                scale: f64::NAN,
            },
            &[x],
            HeType {
                zero_padding: true,
                ..ty
            },
            what,
        )
    }

    /// Softmax attention (the baseline): `E_r = e^(score − c)` per shift, the row sum
    /// `S = Σ_r E_r ⊙ mask_r` (positions with a key `r` back), `O = (Σ_r E_r ⊙ v_r) ⊙ 1/S`.
    fn softmax_attention(
        &mut self,
        q: Value,
        k: Value,
        v: Value,
        encoding: Encoding,
        shape: AttentionShape,
    ) -> Result<Value, LowerError> {
        let tokens = self.shapes.tokens;
        let exp = self.approximation(Function::Exp)?.clone();
        let inverse = self.approximation(Function::Inverse)?.clone();
        let k_scale = shape.score_scale / f64::from(shape.head_dim).sqrt();
        let exp_map = self.series(
            &exp,
            &exp.series,
            format!("exp(x − {:.4})", exp.shift),
            (k_scale, 0.0),
            0.0,
        );
        let (mut masked, mut products) = (Vec::new(), Vec::new());
        for r in 0..tokens {
            let score = self.head_scores(q, k, encoding, &shape, r);
            let weight = self.poly(score, exp_map, &format!("exp{r}"));
            let layout = self.ty(weight).layout;
            let mask = self.plain(PlainRecipe::TokenRange {
                layout,
                from: r,
                to: tokens,
            });
            masked.push(self.push(
                HeOp::MulPlain {
                    plain: mask,
                    scale: f64::NAN,
                },
                &[weight],
                HeType::of(layout, true),
                &format!("exp{r}.masked"),
            ));
            let shifted = self.shift(v, r, "v");
            let values = self.repeat_heads(shifted, encoding, &shape, &format!("v{r}"));
            let ty = self.same(values, false);
            products.push(self.push(HeOp::MulCt, &[values, weight], ty, &format!("ev{r}")));
        }
        let ty = self.same(masked[0], true);
        let sum = self.push(HeOp::Sum, &masked, ty, "row_sum");
        let Interval2 { lo, hi } = Interval2::of(&inverse);
        let centre = (lo + hi) / 2.0;
        let sum = self.fill_padding(sum, centre);
        let guess = self.series(
            &inverse,
            &inverse.series,
            "inverse".to_owned(),
            (1.0, 0.0),
            centre,
        );
        let mut y = self.poly(sum, guess, "inverse");
        for step in 0..inverse.form.steps() {
            y = self.newton_inverse(y, sum, step);
        }
        let ty = self.same(products[0], false);
        let numerator = self.push(HeOp::Sum, &products, ty, "weighted");
        let out = self.push(HeOp::MulCt, &[numerator, y], ty, "out.product");
        Ok(self.mask_padding(out, "out"))
    }

    /// ReLU²: the series alone, or `x² · (1 + p(x))/2` with `p ≈ sign` (the `1/2` and the
    /// `1 +` folded into the coefficients).
    fn relu2(&mut self, x: Value) -> Result<Value, LowerError> {
        let approximation = self.approximation(Function::Relu2)?.clone();
        match approximation.form {
            Form::SignDamped => {
                let half = halved_plus_half(&approximation.series)?;
                let map = self.series(
                    &approximation,
                    &half,
                    "(1 + sign)/2".to_owned(),
                    (1.0, 0.0),
                    0.0,
                );
                let ty = self.ty(x);
                let square = self.push(HeOp::Square, &[x], ty, "relu2.x2");
                let step = self.poly(x, map, "relu2.step");
                Ok(self.push(HeOp::MulCt, &[square, step], ty, "relu2"))
            }
            _ => {
                let map = self.series(
                    &approximation,
                    &approximation.series,
                    "relu2".to_owned(),
                    (1.0, 0.0),
                    0.0,
                );
                Ok(self.poly(x, map, "relu2"))
            }
        }
    }
}

/// The calibrated interval of an approximation, as plain numbers.
struct Interval2 {
    lo: f64,
    hi: f64,
}

impl Interval2 {
    fn of(approximation: &Approximation) -> Self {
        Self {
            lo: approximation.interval.lo,
            hi: approximation.interval.hi,
        }
    }
}

/// `(1 + p)/2` as a Chebyshev series on `p`'s interval.
fn halved_plus_half(p: &ChebyshevSeries) -> Result<ChebyshevSeries, LowerError> {
    let mut coefficients: Vec<f64> = p.coeffs().iter().map(|c| c / 2.0).collect();
    if let Some(c0) = coefficients.first_mut() {
        *c0 += 0.5;
    }
    ChebyshevSeries::new(p.a(), p.b(), coefficients).map_err(|e| LowerError::Series {
        message: e.to_string(),
    })
}

/// Heads of an attention node.
#[derive(Debug, Clone, Copy)]
struct AttentionShape {
    heads: u32,
    kv_heads: u32,
    head_dim: u32,
    score_scale: f64,
}

/// The width of a tensor node.
fn node_columns(node: &Node) -> u32 {
    match node.ty {
        crate::ir::Type::Tensor { cols, .. } => cols as u32,
        crate::ir::Type::Ids { .. } => 0,
    }
}

/// Rows `0..n` in order.
pub(crate) fn identity_rows(n: u32) -> Vec<SignedRow> {
    (0..n).map(|row| SignedRow { row, negate: false }).collect()
}

/// `rotate_half` of each head as a signed row map: output `i < half` of a head is
/// `−W[i + half]`, the rest `W[i − half]`.
pub(crate) fn rotate_half(heads: u32, head_dim: u32) -> Vec<SignedRow> {
    let half = head_dim / 2;
    (0..heads * head_dim)
        .map(|j| {
            let (head, i) = (j / head_dim, j % head_dim);
            if i < half {
                SignedRow {
                    row: head * head_dim + i + half,
                    negate: true,
                }
            } else {
                SignedRow {
                    row: head * head_dim + i - half,
                    negate: false,
                }
            }
        })
        .collect()
}

/// The baby-step count of a block-diagonal layer with `blocks` diagonals that needs the
/// fewest rotations (`inputs · (baby − 1)` hoisted baby steps plus `outputs · (giant − 1)`
/// giant steps), then the fewest distinct rotation keys.
pub(crate) fn baby_steps(inputs: u32, outputs: u32, blocks: u32) -> u32 {
    (1..=blocks.max(1))
        .min_by_key(|&baby| {
            let giant = blocks.div_ceil(baby);
            let rotations =
                u64::from(inputs) * u64::from(baby - 1) + u64::from(outputs) * u64::from(giant - 1);
            (rotations, baby + giant)
        })
        .unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotate_half_negates_the_first_half_of_each_head() {
        let rows = rotate_half(2, 4);
        let pairs: Vec<(u32, bool)> = rows.iter().map(|r| (r.row, r.negate)).collect();
        assert_eq!(
            pairs,
            [
                (2, true),
                (3, true),
                (0, false),
                (1, false),
                (6, true),
                (7, true),
                (4, false),
                (5, false)
            ]
        );
    }

    #[test]
    fn baby_steps_balance_hoisted_and_giant_rotations() {
        // One input and one output ciphertext of 16 blocks: 4 baby and 4 giant steps.
        assert_eq!(baby_steps(1, 1, 16), 4);
        // Many inputs per output: fewer baby steps (each costs a rotation per input).
        assert!(baby_steps(20, 1, 16) < 4);
        assert_eq!(baby_steps(3, 3, 1), 1);
    }

    #[test]
    fn regions_follow_tensor_names() {
        let region = named_region("model.layers.12.self_attn.attn_sub_norm.weight").unwrap();
        assert_eq!(
            region,
            IrRegion {
                layer: Some(12),
                block: "attention sub-norm"
            }
        );
        let region = named_region("model.norm.weight").unwrap();
        assert_eq!(
            region,
            IrRegion {
                layer: None,
                block: "final norm"
            }
        );
    }
}
