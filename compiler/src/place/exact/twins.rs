//! Twin lanes: identical copies of a subgraph (attention's T shifted products) folded into one node with a multiplicity, exactly.
//!
//! Nodes are numbered by value: two nodes get the same class when their parameters and the
//! classes of their operands are the same (in topological order, like global value
//! numbering). A class with k > 1 members becomes one node of multiplicity k when its
//! members form k *lanes*: disjoint, isomorphic copies joined to the rest of the graph only
//! through common nodes:
//! - every member has the same consumers by class, with the same multiplicities (so a
//!   common consumer reads every lane alike, like an n-ary sum over the shifts);
//! - operands in folded classes come from classes of the same size, and each member's lie
//!   in its own lane (union-find over operand edges; a class's k members must land in k
//!   different lanes).
//!
//! Classes that fail are split into singletons and numbering is redone until nothing fails
//! (a class judged against an operand class that is about to split is judged again in the
//! next round, so one bad class does not take its consumers down with it).
//!
//! Why folding is exact: fix the levels of the common nodes. Each lane is then the same
//! subproblem with the same constraints (common operands give every lane the same levels;
//! a common consumer needs every lane's output at its level). Copying the cheapest lane's
//! choices into all lanes keeps every constraint and costs no more. So some optimum is
//! symmetric, and the folded node, costing k times one lane, finds it.

use std::collections::HashMap;

use crate::place::graph::{LevelGraph, NodeId};

/// The folded graph: nodes are classes, in the topological order of their first member.
#[derive(Debug, Clone)]
pub(crate) struct Folded {
    /// Members of each folded node (the first is its representative), ascending.
    pub members: Vec<Vec<NodeId>>,
    /// Operands of each folded node (folded ids, deduplicated, ascending).
    pub operands: Vec<Vec<u32>>,
}

impl Folded {
    /// One folded node per graph node.
    pub fn identity(graph: &LevelGraph) -> Folded {
        let members = (0..graph.len() as u32).map(|i| vec![NodeId(i)]).collect();
        let operands = graph
            .nodes()
            .iter()
            .map(|n| {
                let mut ops: Vec<u32> = n.operands().iter().map(|o| o.0).collect();
                ops.sort_unstable();
                ops.dedup();
                ops
            })
            .collect();
        Folded { members, operands }
    }

    /// Multiplicity of folded node `q`.
    pub fn multiplicity(&self, q: usize) -> u32 {
        self.members[q].len() as u32
    }
}

fn find(parent: &mut [u32], mut x: u32) -> u32 {
    while parent[x as usize] != x {
        parent[x as usize] = parent[parent[x as usize] as usize];
        x = parent[x as usize];
    }
    x
}

/// Classes by value numbering; `singleton[v]` forces `v` into a class of its own.
fn number(graph: &LevelGraph, singleton: &[bool]) -> Vec<u32> {
    let mut classes: HashMap<Vec<u64>, u32> = HashMap::new();
    let mut class = Vec::with_capacity(graph.len());
    for (i, node) in graph.nodes().iter().enumerate() {
        if singleton[i] {
            let id = classes.len() as u32;
            classes.insert(vec![u64::MAX, i as u64], id);
            class.push(id);
            continue;
        }
        let mut key = vec![
            u64::from(node.depth()),
            u64::from(node.count()),
            u64::from(node.slots()),
            node.site() as u64,
            node.input_level().map_or(u64::MAX - 1, u64::from),
        ];
        key.extend(node.op_costs().iter().map(|c| c.as_nanos()));
        let mut ops: Vec<u64> = node
            .operands()
            .iter()
            .map(|o| u64::from(class[o.index()]))
            .collect();
        ops.sort_unstable();
        key.push(ops.len() as u64);
        key.extend(ops);
        let next = classes.len() as u32;
        class.push(*classes.entry(key).or_insert(next));
    }
    class
}

/// Folds twin lanes of `graph`.
pub(crate) fn fold(graph: &LevelGraph) -> Folded {
    let n = graph.len();
    let consumers = graph.consumers();
    let mut singleton = vec![false; n];
    loop {
        let class = number(graph, &singleton);
        let class_count = class.iter().map(|&c| c as usize + 1).max().unwrap_or(0);
        let mut members: Vec<Vec<u32>> = vec![Vec::new(); class_count];
        for (v, &c) in class.iter().enumerate() {
            members[c as usize].push(v as u32);
        }
        let folded = |c: u32| members[c as usize].len() > 1;
        // Consumers by class and multiplicity.
        let signature = |m: u32| {
            let mut sig: Vec<(u32, usize)> = consumers[m as usize]
                .iter()
                .map(|w| {
                    let uses = graph
                        .node(*w)
                        .operands()
                        .iter()
                        .filter(|o| o.0 == m)
                        .count();
                    (class[w.index()], uses)
                })
                .collect();
            sig.sort_unstable();
            sig
        };
        let mut order: Vec<u32> = (0..class_count as u32).collect();
        order.sort_by_key(|&c| members[c as usize][0]);
        // In topological order of classes, so that an operand class is judged before its
        // consumers: a class is bad if its members are read differently, or if it takes an
        // operand from a good folded class of another size. Lanes join members with their
        // operands in good folded classes. A bad operand class is ignored: it will split.
        let mut parent: Vec<u32> = (0..n as u32).collect();
        let mut bad = vec![false; class_count];
        for &c in &order {
            let ms = &members[c as usize];
            if ms.len() < 2 {
                continue;
            }
            let first = signature(ms[0]);
            if ms[1..].iter().any(|&m| signature(m) != first) {
                bad[c as usize] = true;
                continue;
            }
            let good_operand = |o: &NodeId| {
                let co = class[o.index()];
                (folded(co) && !bad[co as usize]).then_some(co)
            };
            let sizes_match = ms.iter().all(|&m| {
                graph
                    .node(NodeId(m))
                    .operands()
                    .iter()
                    .filter_map(good_operand)
                    .all(|co| members[co as usize].len() == ms.len())
            });
            if !sizes_match {
                bad[c as usize] = true;
                continue;
            }
            for &m in ms {
                for o in graph.node(NodeId(m)).operands() {
                    if good_operand(o).is_some() {
                        let (a, b) = (find(&mut parent, m), find(&mut parent, o.0));
                        parent[a as usize] = b;
                    }
                }
            }
        }
        // Every good class has its members in distinct lanes.
        for &c in &order {
            let ms = &members[c as usize];
            if ms.len() < 2 || bad[c as usize] {
                continue;
            }
            let mut lanes: Vec<u32> = ms.iter().map(|&m| find(&mut parent, m)).collect();
            lanes.sort_unstable();
            lanes.dedup();
            bad[c as usize] = lanes.len() != ms.len();
        }
        if !bad.iter().any(|&b| b) {
            let mut position = vec![0u32; class_count];
            for (i, &c) in order.iter().enumerate() {
                position[c as usize] = i as u32;
            }
            let members_out: Vec<Vec<NodeId>> = order
                .iter()
                .map(|&c| members[c as usize].iter().map(|&m| NodeId(m)).collect())
                .collect();
            let operands = order
                .iter()
                .map(|&c| {
                    let rep = members[c as usize][0];
                    let mut ops: Vec<u32> = graph
                        .node(NodeId(rep))
                        .operands()
                        .iter()
                        .map(|o| position[class[o.index()] as usize])
                        .collect();
                    ops.sort_unstable();
                    ops.dedup();
                    ops
                })
                .collect();
            return Folded {
                members: members_out,
                operands,
            };
        }
        for (c, ms) in members.iter().enumerate() {
            if bad[c] {
                for &m in ms {
                    singleton[m as usize] = true;
                }
            }
        }
    }
}
