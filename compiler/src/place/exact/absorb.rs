//! Absorption: a depth-0 value no policy may bootstrap, read by one consumer only and never cheaper at a higher level, runs at its consumer's level; it is merged into the consumer, exactly (a chain of partial sums becomes one n-ary sum).
//!
//! Why exact: such a node `i` with consumer `j` has `e_j ≤ s_i = e_i` in every placement.
//! Lowering `e_i` to `e_j` keeps every constraint (its operands allowed more, `j` reads
//! exactly `e_j`) and costs no more (its cost table is nondecreasing and finite at every
//! level). So some optimum has `e_i = e_j`, and the merged node — `j`'s op plus `i`'s at
//! the same level, reading `i`'s operands too — finds it. Applied in topological order, a
//! chain `a_1 = x_0 + x_1, a_2 = a_1 + x_2, …` whose partial sums are marked
//! [`BootstrapSite::Never`] collapses into one node over `x_0 … x_m`, which twin folding
//! then reduces to one lane when the `x_i` are identical shifts.

use crate::place::graph::{BootstrapSite, LevelGraph, NodeId, NodeSpec};

/// A graph with absorbed nodes merged into their consumers.
#[derive(Debug)]
pub(crate) struct Absorbed {
    pub graph: LevelGraph,
    /// Per original node: the node of `graph` that computes it, and whether it was absorbed
    /// (then it runs at that node's level and is never bootstrapped).
    pub home: Vec<(NodeId, bool)>,
    /// Per node of `graph`: the original node it is.
    pub origin: Vec<NodeId>,
}

fn absorbable(graph: &LevelGraph, id: NodeId, consumers: &[NodeId]) -> bool {
    let node = graph.node(id);
    let costs = node.op_costs();
    !node.is_input()
        && node.depth() == 0
        && node.site() == BootstrapSite::Never
        && consumers.len() == 1
        && costs.iter().all(|c| !c.is_infinite())
        && costs.windows(2).all(|w| w[0] <= w[1])
}

/// Merges every absorbable node into its consumer; `None` if there is none.
pub(crate) fn absorb(graph: &LevelGraph) -> Option<Absorbed> {
    let consumers = graph.consumers();
    let n = graph.len();
    let into: Vec<Option<NodeId>> = (0..n)
        .map(|i| {
            let id = NodeId(i as u32);
            absorbable(graph, id, &consumers[i]).then(|| consumers[i][0])
        })
        .collect();
    if into.iter().all(Option::is_none) {
        return None;
    }
    // The final host of each node (follow absorptions forward; hosts come later).
    let mut host: Vec<NodeId> = (0..n as u32).map(NodeId).collect();
    for i in (0..n).rev() {
        if let Some(j) = into[i] {
            host[i] = host[j.index()];
        }
    }
    // Per host: the op costs of its absorbed nodes and their operands (from outside).
    let mut extra_cost = vec![None::<Vec<crate::cost::Latency>>; n];
    let mut extra_operands: Vec<Vec<NodeId>> = vec![Vec::new(); n];
    for i in 0..n {
        if into[i].is_none() {
            continue;
        }
        let h = host[i].index();
        let node = graph.node(NodeId(i as u32));
        let sum = extra_cost[h]
            .get_or_insert_with(|| vec![crate::cost::Latency::ZERO; node.op_costs().len()]);
        for (s, &c) in sum.iter_mut().zip(node.op_costs()) {
            *s += c;
        }
        extra_operands[h].extend(
            node.operands()
                .iter()
                .filter(|o| host[o.index()] != host[i]),
        );
    }
    let mut out = LevelGraph::new(graph.bootstrap_costs().clone());
    for name in graph.regions().iter().skip(1) {
        out.region(name);
    }
    let mut new_id = vec![NodeId(u32::MAX); n];
    let mut origin = Vec::new();
    for i in 0..n {
        if into[i].is_some() {
            continue;
        }
        let node = graph.node(NodeId(i as u32));
        let mut operands: Vec<NodeId> = node
            .operands()
            .iter()
            .chain(&extra_operands[i])
            .map(|o| new_id[host[o.index()].index()])
            .filter(|o| o.0 != u32::MAX)
            .collect();
        operands.sort_unstable();
        operands.dedup();
        let mut op_cost = node.op_costs().to_vec();
        if let Some(extra) = &extra_cost[i] {
            for (c, &e) in op_cost.iter_mut().zip(extra) {
                *c += e;
            }
        }
        let mut spec = NodeSpec::new(
            node.name(),
            operands,
            node.depth(),
            node.count(),
            node.slots(),
            op_cost,
        )
        .site(node.site())
        .region(node.region());
        spec.input_level = node.input_level();
        // The spec is a copy of a checked node with operands mapped to earlier nodes.
        let id = out.add(spec).ok()?;
        new_id[i] = id;
        origin.push(NodeId(i as u32));
    }
    let home = (0..n)
        .map(|i| (new_id[host[i].index()], into[i].is_some()))
        .collect();
    Some(Absorbed {
        graph: out,
        home,
        origin,
    })
}
