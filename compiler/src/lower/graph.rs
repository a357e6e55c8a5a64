//! The typed HE dataflow graph: values (vectors of ciphertexts) as petgraph nodes in topological order, operands as ordered edges, each value typed by count, layout, zero padding and (once levels are assigned) level and exact scale.

use std::collections::BTreeMap;
use std::fmt::{self, Write};

use ensi_runtime::plan::{
    ApproxId, Layout, LinearMethod, PlainId, PlainRecipe, PolyApprox, Region, SignedRow, WeightId,
    WeightRef,
};
use petgraph::Direction;
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::EdgeRef;

/// A value of the HE graph (the node that defines it).
pub type Value = NodeIndex<u32>;

/// The type of a value: what every later pass and the plan verifier rely on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HeType {
    /// Ciphertexts in the vector.
    pub count: u32,
    /// Where each (column, token) sits in their slots.
    pub layout: Layout,
    /// Whether padding slots and empty blocks are exactly zero.
    pub zero_padding: bool,
    /// Level, once assigned.
    pub level: Option<u32>,
    /// Exact scale, once assigned.
    pub scale: Option<f64>,
}

impl HeType {
    /// A value of `layout` without level and scale (the logical graph).
    pub fn of(layout: Layout, zero_padding: bool) -> Self {
        Self {
            count: layout.ciphertexts(),
            layout,
            zero_padding,
            level: None,
            scale: None,
        }
    }
}

/// An operation defining one value. Operands are the node's incoming edges, in order.
///
/// The logical graph (after lowering) has no `Rescale`, `DropLevels`, `Bootstrap` or
/// `Relabel`; its multiplicative ops consume one level each ([`HeOp::depth`]) and `Sum` and
/// `Poly`'s input map are resolved by the level pass, after which every op is one plan
/// instruction with its exact scales.
#[derive(Debug, Clone, PartialEq)]
pub enum HeOp {
    /// The client's `index`-th encrypted input.
    Input {
        /// Index into [`HeGraph::inputs`].
        index: u32,
    },
    /// `a + b`.
    Add,
    /// `a − b`.
    Sub,
    /// `−a`.
    Neg,
    /// The sum of all operands (logical only: an accumulation that may be rescaled once).
    Sum,
    /// `a ⊙ b`, the operand with fewer ciphertexts broadcast over groups.
    MulCt,
    /// `a ⊙ a`.
    Square,
    /// `a ⊙ plain`, the plaintext encoded at `scale` (chosen by the level pass).
    MulPlain {
        /// The recipe.
        plain: PlainId,
        /// Encoding scale (NaN until levels are assigned).
        scale: f64,
    },
    /// `a + plain` (the plaintext encoded at the operand's scale).
    AddPlain {
        /// The recipe.
        plain: PlainId,
    },
    /// `value · a`, encoded at `scale` (chosen by the level pass).
    MulConst {
        /// The constant.
        value: f64,
        /// Encoding scale (NaN until levels are assigned).
        scale: f64,
    },
    /// `a + value` in every slot.
    AddConst {
        /// The constant.
        value: f64,
    },
    /// The same ciphertexts read as `factor · a` (leveled only).
    Relabel {
        /// Positive factor.
        factor: f64,
    },
    /// Left rotation of every ciphertext by `steps` slots.
    Rotate {
        /// Steps (negative: right).
        steps: i32,
    },
    /// `Σ_{i < count} rot(a, i·step)`.
    RotSum {
        /// Stride in slots.
        step: u32,
        /// Terms, a power of two.
        count: u32,
    },
    /// Sums of each run of `group` ciphertexts.
    SumCiphertexts {
        /// Ciphertexts per sum.
        group: u32,
    },
    /// Ciphertexts `start..start + count`.
    Slice {
        /// First ciphertext.
        start: u32,
        /// Number of ciphertexts.
        count: u32,
    },
    /// The operands' ciphertexts, in order.
    Concat,
    /// `y = W' x`, output in the node's layout.
    TernaryLinear {
        /// The ternary weight.
        weight: WeightId,
        /// Output column `j` is `rows[j]`.
        rows: Vec<SignedRow>,
        /// Columns (0 levels) or block diagonals (1 level).
        method: LinearMethod,
        /// Encoding scale of the diagonals (NaN until levels are assigned; 1 for columns).
        plain_scale: f64,
    },
    /// `p(alpha · a + beta)` with `p` the Chebyshev series `approx` on `[−1, 1]`; after the
    /// level pass `alpha = 1, beta = 0` (the map became a relabel and a constant addition).
    Poly {
        /// The series.
        approx: ApproxId,
        /// Input scale of the map.
        alpha: f64,
        /// Input shift of the map.
        beta: f64,
    },
    /// Division by the last prime (leveled only).
    Rescale,
    /// Drops primes without rescaling (leveled only).
    DropLevels {
        /// Primes dropped.
        levels: u32,
    },
    /// Refresh to `level` (leveled only).
    Bootstrap {
        /// Level after.
        level: u32,
    },
    /// Layout change to the node's layout (1 level), masks encoded at `mask_scale`.
    Repack {
        /// Encoding scale of the masks (NaN until levels are assigned).
        mask_scale: f64,
    },
}

impl HeOp {
    /// The mnemonic of the text form (the plan's where one exists).
    pub fn mnemonic(&self) -> &'static str {
        match self {
            HeOp::Input { .. } => "input",
            HeOp::Add => "add",
            HeOp::Sub => "sub",
            HeOp::Neg => "neg",
            HeOp::Sum => "sum",
            HeOp::MulCt => "mul",
            HeOp::Square => "square",
            HeOp::MulPlain { .. } => "mul_plain",
            HeOp::AddPlain { .. } => "add_plain",
            HeOp::MulConst { .. } => "mul_const",
            HeOp::AddConst { .. } => "add_const",
            HeOp::Relabel { .. } => "relabel",
            HeOp::Rotate { .. } => "rotate",
            HeOp::RotSum { .. } => "rot_sum",
            HeOp::SumCiphertexts { .. } => "sum_cts",
            HeOp::Slice { .. } => "slice",
            HeOp::Concat => "concat",
            HeOp::TernaryLinear { .. } => "ternary_linear",
            HeOp::Poly { .. } => "poly",
            HeOp::Rescale => "rescale",
            HeOp::DropLevels { .. } => "drop_levels",
            HeOp::Bootstrap { .. } => "bootstrap",
            HeOp::Repack { .. } => "repack",
        }
    }

    /// Levels the op consumes in the logical graph (each product with its rescale).
    pub fn depth(&self, approximations: &[PolyApprox]) -> u32 {
        match self {
            HeOp::MulCt
            | HeOp::Square
            | HeOp::MulPlain { .. }
            | HeOp::MulConst { .. }
            | HeOp::Repack { .. } => 1,
            HeOp::TernaryLinear { method, .. } => match method {
                LinearMethod::Columns => 0,
                LinearMethod::Diagonals { .. } => 1,
            },
            // An input map (`alpha·x + beta`) costs one level: the level pass multiplies by
            // alpha and rescales so that the series starts exactly at the default scale (the
            // power basis squares any scale excess at every product).
            HeOp::Poly {
                approx,
                alpha,
                beta,
            } => {
                approximations
                    .get(approx.0 as usize)
                    .map_or(0, |approx| approx.depth)
                    + u32::from(*alpha != 1.0 || *beta != 0.0)
            }
            _ => 0,
        }
    }

    /// Whether the op exists only after levels are assigned.
    pub fn is_leveled_only(&self) -> bool {
        matches!(
            self,
            HeOp::Rescale | HeOp::DropLevels { .. } | HeOp::Bootstrap { .. } | HeOp::Relabel { .. }
        )
    }

    /// Whether the op multiplies (one level in the logical graph, a rescale after it).
    pub fn is_product(&self) -> bool {
        matches!(
            self,
            HeOp::MulCt | HeOp::Square | HeOp::MulPlain { .. } | HeOp::MulConst { .. }
        )
    }
}

/// One value: the op defining it, its type, and where it belongs.
#[derive(Debug, Clone, PartialEq)]
pub struct HeNode {
    /// The op.
    pub op: HeOp,
    /// The type of its result.
    pub ty: HeType,
    /// Index into [`HeGraph::regions`].
    pub region: u32,
    /// A short name for reports and placement (`l0.attn.q`).
    pub name: String,
}

/// A client input of the graph.
#[derive(Debug, Clone, PartialEq)]
pub struct HeInput {
    /// Name (`embeddings`).
    pub name: String,
    /// The embedding table the client reads its rows from.
    pub embedding: WeightId,
    /// The `Input` node.
    pub value: Value,
}

/// What the report says about one polynomial approximation of the graph.
#[derive(Debug, Clone, PartialEq)]
pub struct ApproxInfo {
    /// The function, in words (`sigmoid`, `inv_sqrt guess`).
    pub function: String,
    /// The calibrated interval of the function's argument.
    pub interval: (f64, f64),
    /// Newton steps after the series (0 for plain polynomials).
    pub newton_steps: usize,
    /// Max error of the whole form on the interval (the site's measure).
    pub max_error: f64,
    /// Value of the series at the argument padding slots receive (bounded garbage, masked later).
    pub padding_value: f64,
    /// Largest `|p|` on `[−1, 1]` and at the padding argument: bounds every slot of the
    /// output while the valid arguments stay in the interval.
    pub max_abs: f64,
}

/// What the lowering knows about the range of a value, for bootstrap placement: a value may
/// be bootstrapped only if every slot of it (padding included) has a stated bound.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum BootstrapHint {
    /// The value of a model node: its calibrated magnitude bounds the valid slots (and the
    /// padding when the type says it is zero). `norm`: the operand of an RMSNorm, whose
    /// scale invariance makes bringing it into range free (ENSI's bootstrap site).
    Node {
        /// The model node.
        node: crate::ir::Handle<crate::ir::Node>,
        /// Whether it is an RMSNorm's input.
        norm: bool,
    },
    /// A value bounded by construction on every slot: a polynomial's output, or a value of
    /// an RMSNorm's statistic path (`norm`: the statistic, the inverse square root; the
    /// padding holds the interval's centre).
    Bounded {
        /// `max |x|` over every slot.
        bound: f64,
        /// Whether it is on a norm's statistic path (a site of the `rmsnorm` policy).
        norm: bool,
    },
}

/// Which passes have run: what a well-formed graph may contain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Right after lowering: no levels, logical ops.
    Logical,
    /// After the level pass: every value has a level and scale; one op per plan instruction.
    Leveled,
}

/// The typed HE dataflow graph.
///
/// Nodes are added after their operands, so node order is a topological order. The tables
/// (weights, plaintext recipes, approximations, regions) are those of the plan it becomes.
#[derive(Debug, Clone)]
pub struct HeGraph {
    graph: DiGraph<HeNode, u32>,
    /// Which passes have run.
    pub stage: Stage,
    /// Model tensors referenced.
    pub weights: Vec<WeightRef>,
    /// Plaintext recipes.
    pub plains: Vec<PlainRecipe>,
    /// Polynomial approximations (series on `[−1, 1]`).
    pub approximations: Vec<PolyApprox>,
    /// Report data of each approximation, same order.
    pub approx_info: Vec<ApproxInfo>,
    /// Named model regions.
    pub regions: Vec<Region>,
    /// Client inputs.
    pub inputs: Vec<HeInput>,
    /// Outputs the client decrypts.
    pub outputs: Vec<(String, Value)>,
    /// Range facts of the logical graph's values (side table for bootstrap placement).
    pub hints: BTreeMap<Value, BootstrapHint>,
}

impl HeGraph {
    /// An empty logical graph.
    pub fn new() -> Self {
        Self {
            graph: DiGraph::default(),
            stage: Stage::Logical,
            weights: Vec::new(),
            plains: Vec::new(),
            approximations: Vec::new(),
            approx_info: Vec::new(),
            regions: Vec::new(),
            inputs: Vec::new(),
            outputs: Vec::new(),
            hints: BTreeMap::new(),
        }
    }

    /// An empty graph with the tables of `other` (for passes that rebuild the nodes).
    pub fn with_tables_of(other: &HeGraph, stage: Stage) -> Self {
        Self {
            graph: DiGraph::default(),
            stage,
            weights: other.weights.clone(),
            plains: other.plains.clone(),
            approximations: other.approximations.clone(),
            approx_info: other.approx_info.clone(),
            regions: other.regions.clone(),
            inputs: Vec::new(),
            outputs: Vec::new(),
            hints: BTreeMap::new(),
        }
    }

    /// Appends a value computed by `op` from `operands` (earlier values).
    ///
    /// # Panics
    /// If an operand is not an earlier value (a bug of the pass that adds it).
    pub fn push(
        &mut self,
        op: HeOp,
        operands: &[Value],
        ty: HeType,
        region: u32,
        name: String,
    ) -> Value {
        let value = self.graph.add_node(HeNode {
            op,
            ty,
            region,
            name,
        });
        for (position, &operand) in operands.iter().enumerate() {
            assert!(
                operand < value,
                "operand {operand:?} is not defined before {value:?}"
            );
            self.graph.add_edge(operand, value, position as u32);
        }
        value
    }

    /// Number of values.
    pub fn len(&self) -> usize {
        self.graph.node_count()
    }

    /// Whether the graph has no values.
    pub fn is_empty(&self) -> bool {
        self.graph.node_count() == 0
    }

    /// The node defining `value`.
    ///
    /// # Panics
    /// If `value` is not in the graph.
    pub fn node(&self, value: Value) -> &HeNode {
        &self.graph[value]
    }

    /// The node defining `value`, mutably (types and scales are refined in place).
    ///
    /// # Panics
    /// If `value` is not in the graph.
    pub fn node_mut(&mut self, value: Value) -> &mut HeNode {
        &mut self.graph[value]
    }

    /// Every value in topological (creation) order.
    pub fn values(&self) -> impl DoubleEndedIterator<Item = Value> + ExactSizeIterator + use<> {
        (0..self.graph.node_count()).map(NodeIndex::new)
    }

    /// The operands of `value`, in order.
    pub fn operands(&self, value: Value) -> Vec<Value> {
        let mut edges: Vec<(u32, Value)> = self
            .graph
            .edges_directed(value, Direction::Incoming)
            .map(|edge| (*edge.weight(), edge.source()))
            .collect();
        edges.sort_unstable();
        edges.into_iter().map(|(_, source)| source).collect()
    }

    /// The values that use `value` (once per use), in increasing order.
    pub fn users(&self, value: Value) -> Vec<Value> {
        let mut users: Vec<Value> = self
            .graph
            .edges_directed(value, Direction::Outgoing)
            .map(|edge| edge.target())
            .collect();
        users.sort_unstable();
        users
    }

    /// The underlying petgraph graph (for DOT export and graph algorithms).
    pub fn petgraph(&self) -> &DiGraph<HeNode, u32> {
        &self.graph
    }

    /// The region of `value`, described (`layer 0 / attention`).
    pub fn region_name(&self, value: Value) -> String {
        region_label(&self.regions[self.node(value).region as usize])
    }
}

impl Default for HeGraph {
    fn default() -> Self {
        Self::new()
    }
}

/// `layer 3 / attention`, or the block alone outside layers.
pub fn region_label(region: &Region) -> String {
    match region.layer {
        Some(layer) => format!("layer {layer} / {}", region.block),
        None => region.block.clone(),
    }
}

fn log2(x: f64) -> String {
    if x.is_finite() && x > 0.0 {
        format!("2^{:.3}", x.log2())
    } else {
        "?".to_owned()
    }
}

/// The attributes of an op in the text form.
fn attributes(op: &HeOp, leveled: bool) -> String {
    let scale = |s: f64| {
        if leveled {
            format!(", scale={}", log2(s))
        } else {
            String::new()
        }
    };
    match op {
        HeOp::Input { index } => format!("#{index}"),
        HeOp::MulPlain { plain, scale: s } => format!("plain#{}{}", plain.0, scale(*s)),
        HeOp::AddPlain { plain } => format!("plain#{}", plain.0),
        HeOp::MulConst { value, scale: s } => format!("{value:e}{}", scale(*s)),
        HeOp::AddConst { value } => format!("{value:e}"),
        HeOp::Relabel { factor } => format!("factor={factor:e}"),
        HeOp::Rotate { steps } => format!("steps={steps}"),
        HeOp::RotSum { step, count } => format!("step={step}, count={count}"),
        HeOp::SumCiphertexts { group } => format!("group={group}"),
        HeOp::Slice { start, count } => format!("start={start}, count={count}"),
        HeOp::TernaryLinear {
            weight,
            rows,
            method,
            plain_scale,
        } => {
            let method = match method {
                LinearMethod::Columns => "columns".to_owned(),
                LinearMethod::Diagonals { baby_steps } => {
                    format!("diagonals(baby={baby_steps}{})", scale(*plain_scale))
                }
            };
            format!("weight#{}, rows={}, {method}", weight.0, rows.len())
        }
        HeOp::Poly {
            approx,
            alpha,
            beta,
        } => {
            if *alpha == 1.0 && *beta == 0.0 {
                format!("approx#{}", approx.0)
            } else {
                format!("approx#{}, map={alpha:.6e}·x{beta:+.6e}", approx.0)
            }
        }
        HeOp::DropLevels { levels } => format!("levels={levels}"),
        HeOp::Bootstrap { level } => format!("level={level}"),
        HeOp::Repack { mask_scale } => {
            if leveled {
                format!("mask_scale={}", log2(*mask_scale))
            } else {
                String::new()
            }
        }
        HeOp::Add
        | HeOp::Sub
        | HeOp::Neg
        | HeOp::Sum
        | HeOp::MulCt
        | HeOp::Square
        | HeOp::Concat
        | HeOp::Rescale => String::new(),
    }
}

/// A short description of a layout: `cols(64×16)` for column packing, `dense(4×256/16)`.
pub fn layout_label(layout: &Layout) -> String {
    let group = if layout.group > 1 {
        format!(" g{}", layout.group)
    } else {
        String::new()
    };
    if layout.blocks_per_ciphertext() == 1 {
        format!("cols(d={}, n={}{group})", layout.columns, layout.slots)
    } else {
        format!(
            "dense(d={}, n={}, b={}{group})",
            layout.columns, layout.slots, layout.block
        )
    }
}

impl fmt::Display for HeGraph {
    /// The text form: one line per value, `v3: 2×ct dense(...) @L5 2^40.000 zp = mul v1, v2`,
    /// a comment line at each region change.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let leveled = self.stage == Stage::Leveled;
        for (i, approx) in self.approximations.iter().enumerate() {
            writeln!(
                f,
                "approx#{i} = {}, degree {}, depth {}, max error {:.3e}",
                approx.function,
                approx.degree(),
                approx.depth,
                approx.max_error
            )?;
        }
        let mut region = u32::MAX;
        for value in self.values() {
            let node = self.node(value);
            if node.region != region {
                region = node.region;
                writeln!(f, "; {}", region_label(&self.regions[region as usize]))?;
            }
            let mut line = String::new();
            write!(
                line,
                "v{}: {}×ct {}",
                value.index(),
                node.ty.count,
                layout_label(&node.ty.layout)
            )?;
            if let (Some(level), Some(scale)) = (node.ty.level, node.ty.scale) {
                write!(line, " @L{level} {}", log2(scale))?;
            }
            if node.ty.zero_padding {
                line.push_str(" zp");
            }
            let operands: Vec<String> = self
                .operands(value)
                .iter()
                .map(|v| format!("v{}", v.index()))
                .collect();
            let mut args = operands.join(", ");
            let attrs = attributes(&node.op, leveled);
            if !attrs.is_empty() {
                if !args.is_empty() {
                    args.push_str(", ");
                }
                args.push_str(&attrs);
            }
            writeln!(f, "{line} = {} {args}  ; {}", node.op.mnemonic(), node.name)?;
        }
        for (name, value) in &self.outputs {
            writeln!(f, "output {name} = v{}", value.index())?;
        }
        Ok(())
    }
}
