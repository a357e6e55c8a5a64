//! Levels and scales: a level assignment of the logical HE graph (each value's execution level, result level and optional bootstrap) in, the leveled graph out, with rescales, level drops, scale alignments and bootstraps made explicit and every value at an exact scale.
//!
//! Scale convention (FLEXIBLEAUTO, following the actual primes): a value at level `l` carries
//! the default scale `D_l` (`D_top = 2^log_scale`, `D_{l−1} = D_l² / q_l`). Products at level
//! `l` take operands at `D_l` and encode plaintexts and constants so that the rescale by
//! `q_l` lands exactly on `D_{l−1}`; a plaintext or constant factor can absorb any operand
//! scale, so an operand that was only dropped (scale `D_h` at a lower level) needs nothing
//! more. Ops that need operands at exactly `D_l` (additions, ciphertext products, rotations
//! and the other linear ops) get a dropped operand through one multiplication by `1.0`
//! encoded at `D_l q_{l+1} / D_h` and a rescale, which lands on `D_l` for free in levels
//! (the operand was above `l`). Lazy rescaling: when every term of an accumulation is a
//! product at the same level used only there, the terms stay at `D_l²`, are added, and the
//! sum is rescaled once. A polynomial's input map `alpha·x + beta` is a relabel (scale
//! `/|alpha|`, free) and a constant addition, so the series runs on `[−1, 1]` with no level
//! for the change of interval. A bootstrap of a value bounded by `M > 1` is wrapped in
//! relabels by `1/M` and `M`, so the bootstrapper sees a message in `[−1, 1]`.

use std::collections::BTreeMap;

use ensi_runtime::plan::LinearMethod;

use super::graph::{HeGraph, HeInput, HeOp, HeType, Stage, Value};

/// Where one logical value runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeLevels {
    /// Execution level: operands are brought to it before the op.
    pub level: u32,
    /// Level of the result (`level − depth`).
    pub output: u32,
    /// Target level of a bootstrap of the result, if any.
    pub bootstrap: Option<u32>,
}

impl NodeLevels {
    /// The level consumers read.
    pub fn available(&self) -> u32 {
        self.bootstrap.unwrap_or(self.output)
    }
}

/// A level assignment of every value of a logical graph.
#[derive(Debug, Clone, PartialEq)]
pub struct Assignment {
    /// Per value, in graph order.
    pub nodes: Vec<NodeLevels>,
    /// Why each bootstrap is there, by value.
    pub reasons: BTreeMap<usize, String>,
}

impl Assignment {
    /// The highest level any value runs at (the chain the plan needs).
    pub fn max_level(&self) -> u32 {
        self.nodes
            .iter()
            .map(|n| n.level.max(n.bootstrap.unwrap_or(0)))
            .max()
            .unwrap_or(0)
    }

    /// Number of bootstraps.
    pub fn bootstraps(&self) -> usize {
        self.nodes.iter().filter(|n| n.bootstrap.is_some()).count()
    }
}

/// Why levels cannot be assigned or realized.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum LevelError {
    /// The assignment does not cover the graph.
    #[error("the level assignment has {given} entries for {values} values")]
    Size {
        /// Entries given.
        given: usize,
        /// Values of the graph.
        values: usize,
    },
    /// An operand is below the level its consumer runs at, or an op lacks levels.
    #[error("v{value} ({op}) runs at level {level}, but {problem}")]
    Infeasible {
        /// The logical value.
        value: usize,
        /// Its op.
        op: &'static str,
        /// Its execution level.
        level: u32,
        /// What does not fit.
        problem: String,
    },
    /// The chain has fewer primes than the assignment uses.
    #[error("the assignment uses level {needed}, the chain has {available}")]
    ChainTooShort {
        /// Highest level used.
        needed: u32,
        /// Top level of the chain.
        available: u32,
    },
}

/// Every value as low as its users allow (as late as possible), without bootstraps: the
/// shortest chain for the whole graph, each op at the lowest level it can run at (the
/// fewest limbs), inputs encrypted at the level they need. The compiler uses the placement
/// pass ([`super::placement`]); this is the memory estimate's and the tests' baseline.
pub fn as_late_as_possible(graph: &HeGraph) -> Assignment {
    let n = graph.len();
    let mut output = vec![0u32; n];
    let mut nodes = vec![
        NodeLevels {
            level: 0,
            output: 0,
            bootstrap: None,
        };
        n
    ];
    for value in graph.values().rev() {
        let node = graph.node(value);
        let out = graph
            .users(value)
            .iter()
            .map(|u| nodes[u.index()].level)
            .max()
            .unwrap_or(0);
        output[value.index()] = out;
        nodes[value.index()] = NodeLevels {
            level: out + node.op.depth(&graph.approximations),
            output: out,
            bootstrap: None,
        };
    }
    Assignment {
        nodes,
        reasons: BTreeMap::new(),
    }
}

/// The exact default scales of a chain: `scales[l] = D_l`.
#[derive(Debug, Clone, PartialEq)]
pub struct Chain {
    /// The primes q_0..q_L.
    pub q: Vec<u64>,
    /// `D_l` for every level.
    pub scales: Vec<f64>,
}

impl Chain {
    /// `D_L = 2^log_scale` at the top, `D_{l−1} = D_l² / q_l` below (as `Params` computes them).
    pub fn new(q: Vec<u64>, log_scale: u32) -> Self {
        let top = q.len().saturating_sub(1);
        let mut scales = vec![0.0; q.len()];
        if !q.is_empty() {
            scales[top] = 2f64.powi(log_scale as i32);
            for l in (1..=top).rev() {
                scales[l - 1] = scales[l] * scales[l] / q[l] as f64;
            }
        }
        Self { q, scales }
    }

    /// The top level.
    pub fn top(&self) -> u32 {
        self.q.len().saturating_sub(1) as u32
    }

    fn scale(&self, level: u32) -> f64 {
        self.scales[level as usize]
    }

    fn prime(&self, level: u32) -> f64 {
        self.q[level as usize] as f64
    }
}

/// The `Bootstrap` of the leveled graph that refreshed the value [`realize`] maps to `holder`:
/// the holder itself, or the relabel's operand when the bootstrap was wrapped in relabels
/// (see `Realizer::bootstrap`). `None` if the value was not bootstrapped.
pub fn bootstrap_of(leveled: &HeGraph, holder: Value) -> Option<Value> {
    let value = match leveled.node(holder).op {
        HeOp::Relabel { .. } => *leveled.operands(holder).first()?,
        _ => holder,
    };
    matches!(leveled.node(value).op, HeOp::Bootstrap { .. }).then_some(value)
}

/// Realizes `assignment` on the logical graph `graph` over `chain`. `bounds[v]` bounds
/// `|value|` of logical value `v` on every slot (for bootstrap ranges; values without a
/// bootstrap may be NaN). Values no output depends on are dropped. Returns the leveled
/// graph and, per logical value, the leveled value holding it (after any bootstrap).
pub fn realize(
    graph: &HeGraph,
    assignment: &Assignment,
    chain: &Chain,
    bounds: &[f64],
) -> Result<(HeGraph, Vec<Option<Value>>), LevelError> {
    if assignment.nodes.len() != graph.len() {
        return Err(LevelError::Size {
            given: assignment.nodes.len(),
            values: graph.len(),
        });
    }
    if assignment.max_level() > chain.top() {
        return Err(LevelError::ChainTooShort {
            needed: assignment.max_level(),
            available: chain.top(),
        });
    }
    let needed = needed(graph);
    let lazy = lazy_products(graph, assignment);
    let mut realizer = Realizer {
        src: graph,
        assignment,
        chain,
        out: HeGraph::with_tables_of(graph, Stage::Leveled),
        map: vec![None; graph.len()],
        unrescaled: vec![None; graph.len()],
        dropped: BTreeMap::new(),
        aligned: BTreeMap::new(),
        lazy,
        streamed: streamed_terms(graph),
        accumulators: BTreeMap::new(),
    };
    for value in graph.values() {
        if needed[value.index()] {
            realizer.value(
                value,
                bounds.get(value.index()).copied().unwrap_or(f64::NAN),
            )?;
            if let Some(sum) = realizer.streamed[value.index()] {
                realizer.accumulate(sum, value)?;
            }
        }
    }
    let mut out = realizer.out;
    for (name, value) in &graph.outputs {
        let realized = realizer.map[value.index()].ok_or_else(|| LevelError::Infeasible {
            value: value.index(),
            op: graph.node(*value).op.mnemonic(),
            level: 0,
            problem: "the output was not computed".to_owned(),
        })?;
        out.outputs.push((name.clone(), realized));
    }
    Ok((out, realizer.map))
}

/// Whether each value is needed by an output.
fn needed(graph: &HeGraph) -> Vec<bool> {
    let mut needed = vec![false; graph.len()];
    for (_, value) in &graph.outputs {
        needed[value.index()] = true;
    }
    for value in graph.values().rev() {
        if needed[value.index()] {
            for operand in graph.operands(value) {
                needed[operand.index()] = true;
            }
        }
    }
    needed
}

/// The terms of each `Sum` all of whose operands are distinct and used only by it: they are
/// added into a running accumulator as soon as they are computed (the sum's terms are never
/// all live at once: attention's `T` shifted products).
pub(crate) fn streamed_terms(graph: &HeGraph) -> Vec<Option<Value>> {
    let mut streamed = vec![None; graph.len()];
    for value in graph.values() {
        if !matches!(graph.node(value).op, HeOp::Sum) {
            continue;
        }
        let terms = graph.operands(value);
        let mut distinct = terms.clone();
        distinct.sort_unstable();
        distinct.dedup();
        if distinct.len() == terms.len() && terms.iter().all(|&t| graph.users(t).len() == 1) {
            for t in terms {
                streamed[t.index()] = Some(value);
            }
        }
    }
    streamed
}

/// The products rescaled lazily: every operand of a `Sum` is a product used only by it, all
/// run at one level, none is bootstrapped, and the sum runs one level below.
fn lazy_products(graph: &HeGraph, assignment: &Assignment) -> Vec<bool> {
    let mut lazy = vec![false; graph.len()];
    for value in graph.values() {
        if !matches!(graph.node(value).op, HeOp::Sum) {
            continue;
        }
        let terms = graph.operands(value);
        let level = assignment.nodes[value.index()].level;
        let qualifies = terms.len() > 1
            && terms.iter().all(|&t| {
                let placed = assignment.nodes[t.index()];
                graph.node(t).op.is_product()
                    && graph.users(t).len() == 1
                    && placed.bootstrap.is_none()
                    && placed.level == level + 1
                    && placed.output == level
            });
        if qualifies {
            for t in terms {
                lazy[t.index()] = true;
            }
        }
    }
    lazy
}

struct Realizer<'a> {
    src: &'a HeGraph,
    assignment: &'a Assignment,
    chain: &'a Chain,
    out: HeGraph,
    /// Logical value -> leveled value of its (bootstrapped) result.
    map: Vec<Option<Value>>,
    /// Lazy products: the leveled product before its (deferred) rescale.
    unrescaled: Vec<Option<Value>>,
    /// (logical value, level) -> the value dropped there (scale unchanged).
    dropped: BTreeMap<(usize, u32), Value>,
    /// (logical value, level) -> the value at exactly `D_level` there.
    aligned: BTreeMap<(usize, u32), Value>,
    lazy: Vec<bool>,
    /// The `Sum` each streamed term is accumulated into.
    streamed: Vec<Option<Value>>,
    /// Running accumulators of streamed sums.
    accumulators: BTreeMap<usize, Value>,
}

impl Realizer<'_> {
    fn level_scale(&self, value: Value) -> (u32, f64) {
        let ty = self.out.node(value).ty;
        (ty.level.unwrap_or(0), ty.scale.unwrap_or(f64::NAN))
    }

    fn infeasible(&self, value: Value, level: u32, problem: String) -> LevelError {
        LevelError::Infeasible {
            value: value.index(),
            op: self.src.node(value).op.mnemonic(),
            level,
            problem,
        }
    }

    /// Appends a leveled op in the region of logical `origin`.
    fn emit(
        &mut self,
        origin: Value,
        op: HeOp,
        operands: &[Value],
        ty: HeType,
        (level, scale): (u32, f64),
        suffix: &str,
    ) -> Value {
        let node = self.src.node(origin);
        let name = if suffix.is_empty() {
            node.name.clone()
        } else {
            format!("{}.{suffix}", node.name)
        };
        let ty = HeType {
            level: Some(level),
            scale: Some(scale),
            ..ty
        };
        self.out.push(op, operands, ty, node.region, name)
    }

    fn rescale(&mut self, origin: Value, x: Value) -> Value {
        let (level, scale) = self.level_scale(x);
        let ty = self.out.node(x).ty;
        self.emit(
            origin,
            HeOp::Rescale,
            &[x],
            ty,
            (level - 1, scale / self.chain.prime(level)),
            "rescale",
        )
    }

    /// The realized operand `operand` (logical) at level `level`, its scale unchanged.
    fn dropped(&mut self, user: Value, operand: Value, level: u32) -> Result<Value, LevelError> {
        let realized = self.map[operand.index()].ok_or_else(|| {
            self.infeasible(
                user,
                level,
                format!("operand v{} is missing", operand.index()),
            )
        })?;
        let (have, scale) = self.level_scale(realized);
        if have == level {
            return Ok(realized);
        }
        if have < level {
            return Err(self.infeasible(
                user,
                level,
                format!("operand v{} is at level {have}", operand.index()),
            ));
        }
        if let Some(&value) = self.dropped.get(&(operand.index(), level)) {
            return Ok(value);
        }
        let ty = self.out.node(realized).ty;
        let value = self.emit(
            operand,
            HeOp::DropLevels {
                levels: have - level,
            },
            &[realized],
            ty,
            (level, scale),
            "drop",
        );
        self.dropped.insert((operand.index(), level), value);
        Ok(value)
    }

    /// The realized operand at level `level` and scale exactly `D_level`.
    fn settled(&mut self, user: Value, operand: Value, level: u32) -> Result<Value, LevelError> {
        let realized = self.map[operand.index()].ok_or_else(|| {
            self.infeasible(
                user,
                level,
                format!("operand v{} is missing", operand.index()),
            )
        })?;
        let (have, scale) = self.level_scale(realized);
        let target = self.chain.scale(level);
        if have == level && close(scale, target) {
            return Ok(realized);
        }
        if have <= level {
            return Err(self.infeasible(
                user,
                level,
                format!(
                    "operand v{} is at level {have} with scale 2^{:.4} (needs 2^{:.4})",
                    operand.index(),
                    scale.log2(),
                    target.log2()
                ),
            ));
        }
        if let Some(&value) = self.aligned.get(&(operand.index(), level)) {
            return Ok(value);
        }
        // Drop to one level above, multiply by 1 at the scale that lands on D_level, rescale.
        let above = self.dropped(user, operand, level + 1)?;
        let constant = target * self.chain.prime(level + 1) / scale;
        let ty = self.out.node(above).ty;
        let product = self.emit(
            operand,
            HeOp::MulConst {
                value: 1.0,
                scale: constant,
            },
            &[above],
            ty,
            (level + 1, scale * constant),
            "align",
        );
        let value = self.rescale(operand, product);
        self.aligned.insert((operand.index(), level), value);
        Ok(value)
    }

    fn value(&mut self, value: Value, bound: f64) -> Result<(), LevelError> {
        let node = self.src.node(value);
        let placed = self.assignment.nodes[value.index()];
        let level = placed.level;
        let ty = node.ty;
        let operands = self.src.operands(value);
        let d = |l: u32| self.chain.scale(l);
        let result = match &node.op {
            HeOp::Input { index } => {
                let v = self.emit(
                    value,
                    HeOp::Input { index: *index },
                    &[],
                    ty,
                    (level, d(level)),
                    "",
                );
                let input = &self.src.inputs[*index as usize];
                self.out.inputs.push(HeInput {
                    name: input.name.clone(),
                    embedding: input.embedding,
                    value: v,
                });
                v
            }
            HeOp::Sum if operands.iter().all(|o| self.streamed[o.index()].is_some()) => {
                let lazy = operands.iter().all(|o| self.lazy[o.index()]);
                let acc = self.accumulators.remove(&value.index()).ok_or_else(|| {
                    self.infeasible(value, level, "a streamed sum has no accumulator".into())
                })?;
                if lazy { self.rescale(value, acc) } else { acc }
            }
            HeOp::Sum => {
                let lazy = operands.iter().all(|o| self.lazy[o.index()]);
                let terms: Vec<Value> = if lazy {
                    operands
                        .iter()
                        .map(|o| {
                            self.unrescaled[o.index()].ok_or_else(|| {
                                self.infeasible(value, level, "a lazy term is missing".into())
                            })
                        })
                        .collect::<Result<_, _>>()?
                } else {
                    operands
                        .iter()
                        .map(|&o| self.settled(value, o, level))
                        .collect::<Result<_, _>>()?
                };
                let mut acc = terms[0];
                for &term in &terms[1..] {
                    let (l, s) = self.level_scale(acc);
                    let zp =
                        self.out.node(acc).ty.zero_padding && self.out.node(term).ty.zero_padding;
                    acc = self.emit(
                        value,
                        HeOp::Add,
                        &[acc, term],
                        HeType {
                            zero_padding: zp,
                            ..ty
                        },
                        (l, s),
                        "",
                    );
                }
                if lazy { self.rescale(value, acc) } else { acc }
            }
            HeOp::Add
            | HeOp::Sub
            | HeOp::Neg
            | HeOp::AddConst { .. }
            | HeOp::AddPlain { .. }
            | HeOp::Rotate { .. }
            | HeOp::RotSum { .. }
            | HeOp::SumCiphertexts { .. }
            | HeOp::Slice { .. }
            | HeOp::Concat => {
                let inputs: Vec<Value> = operands
                    .iter()
                    .map(|&o| self.settled(value, o, level))
                    .collect::<Result<_, _>>()?;
                self.emit(value, node.op.clone(), &inputs, ty, (level, d(level)), "")
            }
            HeOp::TernaryLinear {
                weight,
                rows,
                method,
                ..
            } => match method {
                LinearMethod::Columns => {
                    let x = self.settled(value, operands[0], level)?;
                    self.emit(value, node.op.clone(), &[x], ty, (level, d(level)), "")
                }
                LinearMethod::Diagonals { .. } => {
                    let x = self.dropped(value, operands[0], level)?;
                    let (_, s) = self.level_scale(x);
                    let plain_scale = self.landing(level, s, false);
                    let op = HeOp::TernaryLinear {
                        weight: *weight,
                        rows: rows.clone(),
                        method: *method,
                        plain_scale,
                    };
                    let product = self.emit(value, op, &[x], ty, (level, s * plain_scale), "");
                    self.rescale(value, product)
                }
            },
            HeOp::MulCt | HeOp::Square => {
                let inputs: Vec<Value> = operands
                    .iter()
                    .map(|&o| self.settled(value, o, level))
                    .collect::<Result<_, _>>()?;
                let product = self.emit(
                    value,
                    node.op.clone(),
                    &inputs,
                    ty,
                    (level, d(level) * d(level)),
                    "",
                );
                self.finish_product(value, product)
            }
            HeOp::MulPlain { plain, .. } => {
                let x = self.dropped(value, operands[0], level)?;
                let (_, s) = self.level_scale(x);
                let scale = self.landing(level, s, self.lazy[value.index()]);
                let product = self.emit(
                    value,
                    HeOp::MulPlain {
                        plain: *plain,
                        scale,
                    },
                    &[x],
                    ty,
                    (level, s * scale),
                    "",
                );
                self.finish_product(value, product)
            }
            HeOp::MulConst {
                value: constant, ..
            } => {
                let x = self.dropped(value, operands[0], level)?;
                let (_, s) = self.level_scale(x);
                let scale = self.landing(level, s, self.lazy[value.index()]);
                let product = self.emit(
                    value,
                    HeOp::MulConst {
                        value: *constant,
                        scale,
                    },
                    &[x],
                    ty,
                    (level, s * scale),
                    "",
                );
                self.finish_product(value, product)
            }
            HeOp::Repack { .. } => {
                let x = self.dropped(value, operands[0], level)?;
                let (_, s) = self.level_scale(x);
                let mask_scale = self.landing(level, s, false);
                let product = self.emit(
                    value,
                    HeOp::Repack { mask_scale },
                    &[x],
                    ty,
                    (level, s * mask_scale),
                    "",
                );
                self.rescale(value, product)
            }
            HeOp::Poly {
                approx,
                alpha,
                beta,
            } => {
                let depth = node.op.depth(&self.src.approximations);
                if depth > level {
                    return Err(self.infeasible(
                        value,
                        level,
                        format!("the polynomial needs {depth} levels"),
                    ));
                }
                let mut x = self.dropped(value, operands[0], level)?;
                let operand_ty = self.out.node(x).ty;
                if *alpha != 1.0 || *beta != 0.0 {
                    // The map: alpha at the scale that lands on D_(level−1) after the
                    // rescale. A relabel would be free but leaves the series' input off the
                    // default scale, an excess every power-basis product doubles.
                    // The constant is the integer k = round(alpha·σ): with σ = k/alpha the
                    // map is alpha exactly (a small alpha rounded at σ would shift the
                    // series' argument), the scale off D_(level−1) by at most 1/(2|k|).
                    let (l, s) = self.level_scale(x);
                    let exact = self.chain.scale(l - 1) * self.chain.prime(l) / s;
                    let integer = (alpha * exact).round();
                    let scale = if integer == 0.0 {
                        exact
                    } else {
                        integer / alpha
                    };
                    let product = self.emit(
                        value,
                        HeOp::MulConst {
                            value: *alpha,
                            scale,
                        },
                        &[x],
                        operand_ty,
                        (l, s * scale),
                        "map",
                    );
                    x = self.rescale(value, product);
                }
                if *beta != 0.0 {
                    let (l, s) = self.level_scale(x);
                    x = self.emit(
                        value,
                        HeOp::AddConst { value: *beta },
                        &[x],
                        HeType {
                            zero_padding: false,
                            ..operand_ty
                        },
                        (l, s),
                        "map",
                    );
                }
                let out_level = level - depth;
                self.emit(
                    value,
                    HeOp::Poly {
                        approx: *approx,
                        alpha: 1.0,
                        beta: 0.0,
                    },
                    &[x],
                    ty,
                    (out_level, d(out_level)),
                    "",
                )
            }
            HeOp::Relabel { .. }
            | HeOp::Rescale
            | HeOp::DropLevels { .. }
            | HeOp::Bootstrap { .. } => {
                return Err(self.infeasible(
                    value,
                    level,
                    "the logical graph has a leveled-only op".into(),
                ));
            }
        };
        if !self.lazy[value.index()] {
            let (have, _) = self.level_scale(result);
            if have != placed.output {
                return Err(self.infeasible(
                    value,
                    level,
                    format!(
                        "its result is at level {have}, the assignment says {}",
                        placed.output
                    ),
                ));
            }
        }
        let result = match placed.bootstrap {
            Some(target) => self.bootstrap(value, result, target, bound),
            None => result,
        };
        self.map[value.index()] = Some(result);
        Ok(())
    }

    /// Adds the realized streamed term `term` into the accumulator of `sum` (unrescaled for a
    /// lazy sum, at the sum's level and default scale otherwise).
    fn accumulate(&mut self, sum: Value, term: Value) -> Result<(), LevelError> {
        let level = self.assignment.nodes[sum.index()].level;
        let realized = if self.lazy[term.index()] {
            self.unrescaled[term.index()]
                .ok_or_else(|| self.infeasible(sum, level, "a lazy term is missing".into()))?
        } else {
            self.settled(sum, term, level)?
        };
        let acc = match self.accumulators.get(&sum.index()) {
            None => realized,
            Some(&acc) => {
                let (l, s) = self.level_scale(acc);
                let zero_padding =
                    self.out.node(acc).ty.zero_padding && self.out.node(realized).ty.zero_padding;
                let ty = HeType {
                    zero_padding,
                    ..self.src.node(sum).ty
                };
                self.emit(sum, HeOp::Add, &[acc, realized], ty, (l, s), "")
            }
        };
        self.accumulators.insert(sum.index(), acc);
        Ok(())
    }

    /// The encoding scale of a plaintext factor at `level` for an operand at scale `s`: lands
    /// on `D_{level−1}` after the rescale, or on `D_level²` (lazy, rescaled with its sum).
    fn landing(&self, level: u32, s: f64, lazy: bool) -> f64 {
        let target = if lazy {
            self.chain.scale(level) * self.chain.scale(level)
        } else {
            self.chain.scale(level - 1) * self.chain.prime(level)
        };
        target / s
    }

    /// A product: kept unrescaled for its lazy sum, or rescaled now.
    fn finish_product(&mut self, value: Value, product: Value) -> Value {
        if self.lazy[value.index()] {
            self.unrescaled[value.index()] = Some(product);
            product
        } else {
            self.rescale(value, product)
        }
    }

    /// `Relabel(1/M) → Bootstrap(target) → Relabel(M)` (no relabels when `M ≤ 1`).
    fn bootstrap(&mut self, origin: Value, x: Value, target: u32, bound: f64) -> Value {
        let range = super::placement::range_of(bound);
        let ty = self.out.node(x).ty;
        let mut input = x;
        if range > 1.0 {
            let (l, s) = self.level_scale(x);
            input = self.emit(
                origin,
                HeOp::Relabel {
                    factor: 1.0 / range,
                },
                &[x],
                ty,
                (l, s * range),
                "to_range",
            );
        }
        let scale = self.chain.scale(target) * range;
        let refreshed = self.emit(
            origin,
            HeOp::Bootstrap { level: target },
            &[input],
            ty,
            (target, scale),
            "bootstrap",
        );
        if range > 1.0 {
            self.emit(
                origin,
                HeOp::Relabel { factor: range },
                &[refreshed],
                ty,
                (target, scale / range),
                "from_range",
            )
        } else {
            refreshed
        }
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-12 * a.abs().max(b.abs())
}
