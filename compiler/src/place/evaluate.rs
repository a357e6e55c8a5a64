//! The objective, once: checks a level assignment against the model's rules and prices it; every policy's result (and the brute force of the tests) goes through here.

use super::graph::{BootstrapSite, Level, LevelGraph, NodeId};
use super::{CostBreakdown, NodePlacement, PlaceError, Policy};

/// Checks `placement` (one entry per node) and returns its cost.
///
/// The rules: a node runs at a level at most the minimum of its operands' available
/// levels (an input: at most its input level) and at least its depth; its result is at
/// (level − depth); a bootstrap needs a site that is not [`BootstrapSite::Never`], a
/// finite bootstrap cost from the result's level to a target at most `max_level`; every
/// op and bootstrap cost must be finite.
///
/// # Errors
/// [`PlaceError::Invalid`] naming the first node that breaks a rule.
pub fn evaluate(
    graph: &LevelGraph,
    placement: &[NodePlacement],
) -> Result<CostBreakdown, PlaceError> {
    if placement.len() != graph.len() {
        return Err(PlaceError::Invalid {
            node: String::new(),
            what: format!("{} levels for {} nodes", placement.len(), graph.len()),
        });
    }
    let mut cost = CostBreakdown::default();
    for (i, (node, p)) in graph.nodes().iter().zip(placement).enumerate() {
        let id = NodeId(i as u32);
        let invalid = |what: String| PlaceError::Invalid {
            node: node.name().to_string(),
            what,
        };
        let ceiling = graph.operand_level(id, |o| placement[o.index()].available());
        if p.level > ceiling {
            return Err(invalid(format!(
                "runs at level {} but its operands give at most {ceiling}",
                p.level
            )));
        }
        if p.level < node.depth() || p.output != p.level - node.depth() {
            return Err(invalid(format!(
                "runs at level {} with depth {} but its result is at level {}",
                p.level,
                node.depth(),
                p.output
            )));
        }
        let op = node.op_cost(p.level);
        if op.is_infinite() {
            return Err(invalid(format!("cannot run at level {}", p.level)));
        }
        cost.ops += op;
        if let Some(target) = p.bootstrap {
            if node.site() == BootstrapSite::Never {
                return Err(invalid(String::from("is bootstrapped but may not be")));
            }
            let boot = graph.bootstrap_cost(id, p.output, target);
            if boot.is_infinite() || target > graph.max_level() {
                return Err(invalid(format!(
                    "cannot be bootstrapped from level {} to {target}",
                    p.output
                )));
            }
            cost.bootstraps += boot;
            cost.bootstrap_count += 1;
            cost.bootstrapped_ciphertexts += u64::from(node.count());
        }
    }
    if cost.total().is_infinite() {
        return Err(PlaceError::Invalid {
            node: String::new(),
            what: String::from("the total latency overflows"),
        });
    }
    Ok(cost)
}

/// Checks that every bootstrap of `placement` is one `policy` may place.
pub(crate) fn check_policy(
    graph: &LevelGraph,
    placement: &[NodePlacement],
    policy: Policy,
) -> Result<(), PlaceError> {
    for (node, p) in graph.nodes().iter().zip(placement) {
        if let Some(target) = p.bootstrap {
            let target_ok = policy != Policy::RmsNorm || target == graph.max_level();
            if !node.site().allows(policy) || !target_ok {
                return Err(PlaceError::Invalid {
                    node: node.name().to_string(),
                    what: format!("{policy} may not bootstrap it to level {target}"),
                });
            }
        }
    }
    Ok(())
}

/// Why no placement exists under `policy`: the first node that cannot run even when every
/// value the policy may bootstrap is refreshed to the top (this relaxation is exact for
/// feasibility, as a higher available level never hurts).
pub(crate) fn infeasibility(graph: &LevelGraph, policy: Policy) -> Option<PlaceError> {
    let mut best: Vec<Level> = Vec::with_capacity(graph.len());
    for (i, node) in graph.nodes().iter().enumerate() {
        let ceiling = graph.operand_level(NodeId(i as u32), |o| best[o.index()]);
        let runnable = |e: &Level| *e >= node.depth() && !node.op_cost(*e).is_infinite();
        let Some(top) = (0..=ceiling).rev().find(runnable) else {
            let needed = (0..=graph.max_level())
                .find(runnable)
                .unwrap_or(node.depth());
            return Some(PlaceError::Infeasible {
                policy,
                node: node.name().to_string(),
                needed,
                available: ceiling,
            });
        };
        let may_refresh = node.site().allows(policy)
            && (0..=top).filter(runnable).any(|e| {
                !graph
                    .bootstrap_cost(NodeId(i as u32), e - node.depth(), graph.max_level())
                    .is_infinite()
            });
        best.push(if may_refresh {
            graph.max_level()
        } else {
            top - node.depth()
        });
    }
    None
}
