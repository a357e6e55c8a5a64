//! The `greedy` baseline (HEIR's waterline): walk in topological order, and when an op would run out of levels, bootstrap its low operands to the top.

use super::graph::{Level, LevelGraph, NodeId};
use super::{NodePlacement, PlaceError, Policy};

/// Highest level `≤ ceiling` at which `id` can run, if any.
fn runnable_at(graph: &LevelGraph, id: NodeId, ceiling: Level) -> Option<Level> {
    let node = graph.node(id);
    (node.depth()..=ceiling.min(graph.max_level()))
        .rev()
        .find(|&e| !node.op_cost(e).is_infinite())
}

/// Levels when every node runs as high as its operands allow, given the bootstrapped set.
fn levels(graph: &LevelGraph, bootstrapped: &[bool]) -> Result<Vec<NodePlacement>, PlaceError> {
    let mut out: Vec<NodePlacement> = Vec::with_capacity(graph.len());
    for (i, node) in graph.nodes().iter().enumerate() {
        let id = NodeId(i as u32);
        let ceiling = graph.operand_level(id, |o| out[o.index()].available());
        let level = runnable_at(graph, id, ceiling).ok_or_else(|| PlaceError::Infeasible {
            policy: Policy::Greedy,
            node: node.name().to_string(),
            needed: node.depth(),
            available: ceiling,
        })?;
        out.push(NodePlacement {
            level,
            output: level - node.depth(),
            bootstrap: bootstrapped[i].then_some(graph.max_level()),
        });
    }
    Ok(out)
}

/// The greedy placement: every bootstrap goes to `max_level`, on the operand that ran out.
///
/// All consumers of a bootstrapped value read the refreshed value: after each bootstrap the
/// nodes already walked past are re-levelled (levels only rise), so no bootstrap is placed
/// for a value that an earlier refresh already lifted.
pub(crate) fn place(graph: &LevelGraph) -> Result<Vec<NodePlacement>, PlaceError> {
    let top = graph.max_level();
    let mut bootstrapped = vec![false; graph.len()];
    let mut walk: Vec<NodePlacement> = Vec::with_capacity(graph.len());
    for (i, node) in graph.nodes().iter().enumerate() {
        let id = NodeId(i as u32);
        let ceiling = graph.operand_level(id, |o| walk[o.index()].available());
        if runnable_at(graph, id, ceiling).is_none() && !node.is_input() {
            // Refresh every operand below what this op needs, then re-level the nodes
            // between the first refreshed operand and this one.
            let needed = (node.depth()..=top)
                .find(|&e| !node.op_cost(e).is_infinite())
                .unwrap_or(node.depth());
            let mut first = None;
            for &o in node.operands() {
                let p = walk[o.index()];
                if p.available() >= needed {
                    continue;
                }
                let operand = graph.node(o);
                if !operand.site().allows(Policy::Greedy)
                    || graph.bootstrap_cost(o, p.output, top).is_infinite()
                {
                    return Err(PlaceError::GreedyStuck {
                        node: node.name().to_string(),
                        operand: operand.name().to_string(),
                        needed,
                        available: p.available(),
                    });
                }
                bootstrapped[o.index()] = true;
                walk[o.index()].bootstrap = Some(top);
                first = Some(first.map_or(o.index(), |f: usize| f.min(o.index())));
            }
            if let Some(first) = first {
                for j in first + 1..i {
                    let ceiling =
                        graph.operand_level(NodeId(j as u32), |o| walk[o.index()].available());
                    if let Some(level) = runnable_at(graph, NodeId(j as u32), ceiling) {
                        let depth = graph.node(NodeId(j as u32)).depth();
                        walk[j].level = level;
                        walk[j].output = level - depth;
                    }
                }
            }
        }
        let ceiling = graph.operand_level(id, |o| walk[o.index()].available());
        let level = runnable_at(graph, id, ceiling).ok_or_else(|| PlaceError::Infeasible {
            policy: Policy::Greedy,
            node: node.name().to_string(),
            needed: node.depth(),
            available: ceiling,
        })?;
        walk.push(NodePlacement {
            level,
            output: level - node.depth(),
            bootstrap: None,
        });
    }
    levels(graph, &bootstrapped)
}

/// The `rmsnorm` reference: every norm candidate bootstrapped to the top, ops as high as
/// they can run (a fallback's anchor when a segment is too wide to solve exactly).
pub(crate) fn every_norm_site(graph: &LevelGraph) -> Result<Vec<NodePlacement>, PlaceError> {
    let bootstrapped: Vec<bool> = graph
        .nodes()
        .iter()
        .map(|n| n.site().allows(Policy::RmsNorm))
        .collect();
    levels(graph, &bootstrapped)
}
