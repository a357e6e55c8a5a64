//! The logical HE graph as a bootstrap-placement problem: one [`LevelGraph`] node per value (its depth, ciphertext count, slots and latency by level from the cost model; its bootstrap site and range from the lowering's hints and the calibration) in; the placement's levels and bootstraps, with the reason and input range of each, as a level [`Assignment`] out.
//!
//! A value may be bootstrapped only if every slot of it has a stated bound (the
//! bootstrapper's modular reduction sees the padding too):
//!
//! - the value of a model node whose type has zero padding: the node's calibrated magnitude
//!   (widened by the calibration margin) bounds it; an RMSNorm's operand is a
//!   [`BootstrapSite::Norm`] (ENSI's site), any other such value [`BootstrapSite::Any`];
//! - a value of a norm's statistic path bounded by construction (its padding holds the
//!   interval's centre): [`BootstrapSite::Norm`];
//! - a polynomial's output (the series' largest `|p|` on `[−1, 1]` and at the padding
//!   argument, with a quarter of margin): [`BootstrapSite::Any`];
//! - everything else: [`BootstrapSite::Never`].
//!
//! The bound `M` of a bootstrapped value becomes its range `2^⌈log2 M⌉`: the level pass wraps
//! the bootstrap in relabels by `1/2^k` and `2^k` (free: the scale changes, not the
//! ciphertext), so the bootstrapper receives a message in `[−1, 1]` at a scale `2^k` times
//! larger and its ScaleDown brings it to its own input scale.

use std::collections::BTreeMap;

use super::encoding::logical_seconds;
use super::graph::{BootstrapHint, HeGraph, region_label};
use super::levels::{Assignment, NodeLevels};
use crate::calibrate::Calibration;
use crate::cost::Latency;
use crate::estimate::Estimator;
use crate::keys::LinearCache;
use crate::params::{Q0_BITS, SCALE_BITS};
use crate::place::{BootstrapCosts, BootstrapSite, GraphError, LevelGraph, NodeSpec, Placement};

/// The largest `|x|` a value at level 0 may hold: q_0 of [`Q0_BITS`] bits at the default scale
/// of [`SCALE_BITS`] bits, one bit of headroom (2^19).
pub const LEVEL0_BOUND: f64 = (1u64 << (Q0_BITS - SCALE_BITS - 1)) as f64;

/// The stated bound of `value` on every slot (NaN if none): calibrated for model-node values
/// with zero padding, by construction for the others with a hint.
fn bound_of(he: &HeGraph, value: super::Value, calibration: &Calibration) -> f64 {
    match he.hints.get(&value) {
        Some(&BootstrapHint::Node { node: model, .. }) if he.node(value).ty.zero_padding => {
            calibration.magnitude_bound(model)
        }
        Some(&BootstrapHint::Bounded { bound, .. }) => bound,
        _ => f64::NAN,
    }
}

/// A placement problem and the range of every value that may be bootstrapped.
#[derive(Debug, Clone)]
pub struct Problem {
    /// One node per logical value, same order.
    pub graph: LevelGraph,
    /// `max |x|` over every slot of each logical value that may be bootstrapped (NaN for
    /// the others).
    pub bounds: Vec<f64>,
}

/// The placement problem of `he`: op latencies from `estimator` (the encoding choice's), one
/// bootstrap table per slot count from `bootstraps` (its `max_level` is the level budget
/// between bootstraps), sites and ranges from `he.hints` and `calibration`.
///
/// # Errors
/// [`GraphError::TooDeep`] when one op (a polynomial) needs more levels than a bootstrap
/// gives.
pub fn problem(
    he: &HeGraph,
    linear: &LinearCache,
    estimator: &Estimator,
    bootstraps: BootstrapCosts,
    calibration: &Calibration,
) -> Result<Problem, GraphError> {
    let max_level = bootstraps.max_level();
    let mut graph = LevelGraph::new(bootstraps);
    let mut bounds = vec![f64::NAN; he.len()];
    for value in he.values() {
        let node = he.node(value);
        let depth = node.op.depth(&he.approximations);
        let bound = bound_of(he, value, calibration);
        // A value larger than q_0 holds at the default scale may not end at level 0.
        let floor = depth + u32::from(bound > LEVEL0_BOUND);
        let op_cost = (0..=max_level)
            .map(|level| {
                if level < floor {
                    Latency::INFINITE
                } else {
                    Latency::from_micros(logical_seconds(he, value, linear, estimator, level) * 1e6)
                }
            })
            .collect();
        let (site, bound) = match he.hints.get(&value) {
            Some(&BootstrapHint::Node { node: model, norm }) if node.ty.zero_padding => (
                if norm {
                    BootstrapSite::Norm
                } else {
                    BootstrapSite::Any
                },
                calibration.magnitude_bound(model),
            ),
            Some(&BootstrapHint::Bounded { bound, norm }) => (
                if norm {
                    BootstrapSite::Norm
                } else {
                    BootstrapSite::Any
                },
                bound,
            ),
            _ => (BootstrapSite::Never, f64::NAN),
        };
        let (site, bound) = if bound.is_finite() {
            (site, bound)
        } else {
            (BootstrapSite::Never, f64::NAN)
        };
        bounds[value.index()] = bound;
        let region = he
            .regions
            .get(node.region as usize)
            .map(region_label)
            .unwrap_or_default();
        let region = graph.region(&region);
        let operands = he
            .operands(value)
            .iter()
            .map(|o| crate::place::NodeId(o.index() as u32))
            .collect();
        let spec = NodeSpec::new(
            node.name.clone(),
            operands,
            depth,
            node.ty.count.max(1),
            node.ty.layout.slots.max(1),
            op_cost,
        )
        .site(site)
        .region(region);
        graph.add(spec)?;
    }
    Ok(Problem { graph, bounds })
}

/// `placement` of `problem` as the level pass's assignment, each bootstrap's reason with its
/// input range.
pub fn assignment(problem: &Problem, placement: &Placement) -> Assignment {
    let nodes = placement
        .nodes
        .iter()
        .map(|p| NodeLevels {
            level: p.level,
            output: p.output,
            bootstrap: p.bootstrap,
        })
        .collect();
    let mut reasons = BTreeMap::new();
    for decision in &placement.bootstraps {
        let index = decision.node.index();
        let bound = problem.bounds[index];
        let range = range_of(bound);
        reasons.insert(
            index,
            format!(
                "{} ({} policy): {}; level {} -> {}, {} ciphertext(s) of {} slots, est. {:.3} s; |x| <= {bound:.4e}, brought into range by 1/{range}",
                problem.graph.node(decision.node).name(),
                placement.policy,
                decision.reason,
                decision.input_level,
                decision.target,
                decision.count,
                decision.slots,
                decision.cost.as_secs(),
            ),
        );
    }
    Assignment { nodes, reasons }
}

/// The power of two a bootstrapped value bounded by `bound` is divided by (1 when `bound ≤ 1`).
pub fn range_of(bound: f64) -> f64 {
    if bound.is_finite() && bound > 1.0 {
        bound.log2().ceil().exp2()
    } else {
        1.0
    }
}
