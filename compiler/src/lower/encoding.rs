//! The encoding choice: the model lowered in each packing, costed by the latency model at the levels it would run at and sized in ciphertext memory, in; one encoding per decoder layer (the cheapest feasible sequence, repacks between layers included) and every alternative's cost out.

use std::collections::BTreeMap;

use ensi_checkpoint::Checkpoint;
use ensi_runtime::exec::Repacking;
use ensi_runtime::plan::LinearMethod;
use serde::Serialize;

use super::graph::{HeGraph, HeOp};
use super::layout::{Encoding, Shapes};
use super::levels::as_late_as_possible;
use super::{LowerError, lower};
use crate::approx::ApproxTable;
use crate::estimate::{CostOp, Estimator};
use crate::ir::Graph;
use crate::keys::LinearCache;

/// What the choice may pick from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EncodingPolicy {
    /// The cheapest feasible encoding per layer.
    Auto,
    /// Every layer in one encoding.
    Fixed(Encoding),
}

/// The machine and ring the costs are for.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Target {
    /// Latency estimates of the ring.
    pub estimator: Estimator,
    /// Highest level values run at (costs are taken at `min(level, cap)`).
    pub level_cap: u32,
    /// Bytes of one ciphertext at the top level.
    pub ciphertext_bytes: u64,
    /// Memory for ciphertexts (the machine's, less the keys').
    pub memory_bytes: u64,
}

/// The cost of one layer in one encoding.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LayerCost {
    /// Estimated seconds.
    pub seconds: f64,
    /// Most ciphertexts live at once while the layer runs.
    pub peak_ciphertexts: u64,
}

/// One way of encoding the model, costed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alternative {
    /// `all columns`, `all dense`, `chosen`.
    pub name: String,
    /// Encoding of each layer.
    pub encodings: Vec<Encoding>,
    /// Estimated seconds of the layers (repacks included).
    pub seconds: f64,
    /// Peak ciphertext memory, bytes.
    pub peak_bytes: u64,
    /// Whether the peak fits the memory.
    pub feasible: bool,
}

/// The encoding of every layer and what the alternatives cost.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EncodingChoice {
    /// Encoding of each decoder layer.
    pub encodings: Vec<Encoding>,
    /// The uniform encodings and the chosen sequence, costed.
    pub alternatives: Vec<Alternative>,
    /// Why, in words.
    pub reason: String,
}

/// Costs of every logical value of `graph`, grouped by decoder layer (values outside layers
/// count to the first or last one), with the peak live ciphertexts per layer.
pub fn layer_costs(
    graph: &HeGraph,
    layers: usize,
    linear: &LinearCache,
    target: &Target,
) -> Vec<LayerCost> {
    let assignment = as_late_as_possible(graph);
    let mut costs = vec![
        LayerCost {
            seconds: 0.0,
            peak_ciphertexts: 0,
        };
        layers.max(1)
    ];
    let layer_of = |value| {
        let region = &graph.regions[graph.node(value).region as usize];
        match region.layer {
            Some(layer) => (layer as usize).min(costs.len() - 1),
            None if region.block == "embedding" => 0,
            None => costs.len() - 1,
        }
    };
    let layer_index: Vec<usize> = graph.values().map(layer_of).collect();
    let mut last_use = vec![0usize; graph.len()];
    for value in graph.values() {
        for operand in graph.operands(value) {
            last_use[operand.index()] = value.index();
        }
    }
    for (_, output) in &graph.outputs {
        last_use[output.index()] = usize::MAX;
    }
    // Streamed terms are added into their sum's accumulator as they are computed: the first
    // lives on as the accumulator, the others die at once.
    for (index, sum) in super::levels::streamed_terms(graph).into_iter().enumerate() {
        if let Some(sum) = sum
            && graph.operands(sum).first().map(|f| f.index()) != Some(index)
        {
            last_use[index] = index;
        }
    }
    let mut live = 0u64;
    let mut dying: BTreeMap<usize, u64> = BTreeMap::new();
    for value in graph.values() {
        let node = graph.node(value);
        let level = assignment.nodes[value.index()].level.min(target.level_cap);
        let layer = layer_index[value.index()];
        costs[layer].seconds += logical_seconds(graph, value, linear, &target.estimator, level);
        live += u64::from(node.ty.count);
        costs[layer].peak_ciphertexts = costs[layer].peak_ciphertexts.max(live);
        *dying
            .entry(last_use[value.index()].max(value.index()))
            .or_insert(0) += u64::from(node.ty.count);
        if let Some(freed) = dying.remove(&value.index()) {
            live -= freed;
        }
    }
    costs
}

/// Estimated seconds of one logical value at `level` (products include their rescale).
pub fn logical_seconds(
    graph: &HeGraph,
    value: super::Value,
    linear: &LinearCache,
    estimator: &Estimator,
    level: u32,
) -> f64 {
    let node = graph.node(value);
    let count = node.ty.count;
    let operands = graph.operands(value);
    let operand = |i: usize| graph.node(operands[i]).ty;
    let seconds = |op: CostOp| estimator.seconds(&op, level, count);
    let rescaled = |op: CostOp| seconds(op) + seconds(CostOp::Rescale);
    match &node.op {
        HeOp::Input { .. }
        | HeOp::Slice { .. }
        | HeOp::Concat
        | HeOp::Relabel { .. }
        | HeOp::DropLevels { .. } => 0.0,
        HeOp::Add | HeOp::Sub | HeOp::Neg => seconds(CostOp::Adds { count: 1.0 }),
        HeOp::Sum => seconds(CostOp::Adds {
            count: operands.len().saturating_sub(1) as f64,
        }),
        HeOp::AddConst { .. } => seconds(CostOp::AddConst),
        HeOp::AddPlain { .. } => seconds(CostOp::AddPlain),
        HeOp::MulConst { .. } => rescaled(CostOp::MulConst),
        HeOp::MulPlain { .. } => rescaled(CostOp::MulPlain),
        HeOp::MulCt | HeOp::Square => rescaled(CostOp::MulCt),
        HeOp::Rescale => seconds(CostOp::Rescale),
        HeOp::Rotate { steps } => {
            if steps.rem_euclid(node.ty.layout.slots as i32) == 0 {
                0.0
            } else {
                seconds(CostOp::Rotations { count: 1.0 })
            }
        }
        HeOp::RotSum { count: terms, .. } => seconds(CostOp::Rotations {
            count: f64::from(terms.trailing_zeros()),
        }),
        HeOp::SumCiphertexts { group } => seconds(CostOp::Adds {
            count: f64::from(group.saturating_sub(1)),
        }),
        HeOp::TernaryLinear { method, .. } => {
            let stats = linear.get(graph, value).cloned().unwrap_or_default();
            match method {
                LinearMethod::Columns => seconds(CostOp::TernaryColumns {
                    additions: stats.additions,
                }),
                LinearMethod::Diagonals { .. } => {
                    seconds(CostOp::TernaryDiagonals {
                        diagonals: stats.nonzero_diagonals,
                        rotations: stats.rotations,
                    }) + seconds(CostOp::Rescale)
                }
            }
        }
        HeOp::Poly {
            approx,
            alpha,
            beta,
        } => {
            let degree = graph.approximations[approx.0 as usize].degree() as u32;
            let map = if *beta != 0.0 || *alpha < 0.0 {
                seconds(CostOp::AddConst)
            } else {
                0.0
            };
            map + seconds(CostOp::Poly { degree })
        }
        HeOp::Bootstrap { .. } => seconds(CostOp::Bootstrap {
            slots: node.ty.layout.slots,
        }),
        HeOp::Repack { .. } => {
            let repacking = Repacking::new(&operand(0).layout, &node.ty.layout);
            let outputs = f64::from(count.max(1));
            rescaled(CostOp::Repack {
                masks: repacking.moves().len() as f64 / outputs,
                rotations: repacking.rotations() as f64 / outputs,
            })
        }
    }
}

/// Seconds of repacking the residual stream (`hidden` columns) from one encoding to another.
fn repack_seconds(
    shapes: &Shapes,
    hidden: u32,
    from: Encoding,
    to: Encoding,
    target: &Target,
) -> f64 {
    if from == to {
        return 0.0;
    }
    let (a, b) = (shapes.layout(from, hidden), shapes.layout(to, hidden));
    let repacking = Repacking::new(&a, &b);
    let outputs = b.ciphertexts();
    let level = target.level_cap;
    target.estimator.seconds(
        &CostOp::Repack {
            masks: repacking.moves().len() as f64 / f64::from(outputs),
            rotations: repacking.rotations() as f64 / f64::from(outputs),
        },
        level,
        outputs,
    ) + target.estimator.seconds(&CostOp::Rescale, level, outputs)
}

/// Chooses the encoding of every layer of `graph` (see the module docs); `Fixed` policies
/// are costed the same way, and refused if they do not fit the memory.
#[allow(
    clippy::too_many_arguments,
    reason = "the stage's inputs, each used once"
)]
pub fn choose(
    graph: &Graph,
    checkpoint: &Checkpoint,
    table: &ApproxTable,
    shapes: Shapes,
    hidden: u32,
    policy: EncodingPolicy,
    target: &Target,
    linear: &mut LinearCache,
) -> Result<EncodingChoice, LowerError> {
    let layers = super::layer_count(graph).max(1);
    let mut per_encoding: BTreeMap<Encoding, Vec<LayerCost>> = BTreeMap::new();
    for encoding in Encoding::ALL {
        let he = lower(graph, checkpoint, table, shapes, &vec![encoding; layers])?;
        linear.fill(&he, checkpoint);
        per_encoding.insert(encoding, layer_costs(&he, layers, linear, target));
    }
    let fits =
        |cost: &LayerCost| cost.peak_ciphertexts * target.ciphertext_bytes <= target.memory_bytes;
    // Cheapest feasible sequence: a dynamic program over layers, two states.
    let mut best: BTreeMap<Encoding, (f64, Vec<Encoding>)> = BTreeMap::new();
    for layer in 0..layers {
        let mut next = BTreeMap::new();
        for encoding in Encoding::ALL {
            if let EncodingPolicy::Fixed(fixed) = policy
                && fixed != encoding
            {
                continue;
            }
            let Some(cost) = per_encoding[&encoding].get(layer) else {
                continue;
            };
            if !fits(cost) {
                continue;
            }
            let from = if layer == 0 {
                Some((0.0, Vec::new()))
            } else {
                best.iter()
                    .map(|(&previous, (seconds, path))| {
                        (
                            seconds + repack_seconds(&shapes, hidden, previous, encoding, target),
                            path.clone(),
                        )
                    })
                    .min_by(|a, b| a.0.total_cmp(&b.0))
            };
            if let Some((seconds, mut path)) = from {
                path.push(encoding);
                next.insert(encoding, (seconds + cost.seconds, path));
            }
        }
        best = next;
    }
    let peak = |encodings: &[Encoding]| -> u64 {
        encodings
            .iter()
            .enumerate()
            .map(|(layer, e)| per_encoding[e][layer].peak_ciphertexts)
            .max()
            .unwrap_or(0)
            * target.ciphertext_bytes
    };
    let total = |encodings: &[Encoding]| -> f64 {
        encodings
            .iter()
            .enumerate()
            .map(|(layer, e)| {
                let repack = if layer == 0 {
                    0.0
                } else {
                    repack_seconds(&shapes, hidden, encodings[layer - 1], *e, target)
                };
                per_encoding[e][layer].seconds + repack
            })
            .sum()
    };
    let mut alternatives: Vec<Alternative> = Encoding::ALL
        .iter()
        .map(|&e| {
            let encodings = vec![e; layers];
            let peak_bytes = peak(&encodings);
            Alternative {
                name: format!("all {e}"),
                seconds: total(&encodings),
                feasible: peak_bytes <= target.memory_bytes,
                peak_bytes,
                encodings,
            }
        })
        .collect();
    let Some((_, encodings)) = best.into_values().min_by(|a, b| a.0.total_cmp(&b.0)) else {
        let needed = alternatives.iter().map(|a| a.peak_bytes).min().unwrap_or(0);
        return Err(LowerError::OutOfMemory {
            policy: match policy {
                EncodingPolicy::Auto => "any encoding".to_owned(),
                EncodingPolicy::Fixed(e) => format!("the {e} encoding"),
            },
            needed_gib: needed as f64 / f64::from(1u32 << 30),
            available_gib: target.memory_bytes as f64 / f64::from(1u32 << 30),
        });
    };
    let chosen = Alternative {
        name: "chosen".to_owned(),
        seconds: total(&encodings),
        peak_bytes: peak(&encodings),
        feasible: true,
        encodings: encodings.clone(),
    };
    let reason = match policy {
        EncodingPolicy::Fixed(e) => format!("{e} requested"),
        EncodingPolicy::Auto => {
            let infeasible: Vec<&str> = alternatives
                .iter()
                .filter(|a| !a.feasible)
                .map(|a| a.name.as_str())
                .collect();
            if infeasible.is_empty() {
                "the lowest estimated latency".to_owned()
            } else {
                format!(
                    "the lowest estimated latency; {} does not fit the memory",
                    infeasible.join(", ")
                )
            }
        }
    };
    alternatives.push(chosen);
    Ok(EncodingChoice {
        encodings,
        alternatives,
        reason,
    })
}
