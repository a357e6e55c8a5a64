//! Extraction: the cheapest graph an e-graph holds under the encryption cost model, chosen greedily over the DAG (shared values count once), deterministically.
//!
//! The cost of a graph is the sum over its distinct values of each value's [`Cost`],
//! compared lexicographically (scalings, then kernels, then multiplications):
//!
//! - a standalone scaling (a `scale` node, or a `ternary_linear` whose `scale` is not 1)
//!   costs one multiplicative level and one ciphertext-by-constant multiplication per
//!   ciphertext (per column: ENSI's column packing has one ciphertext per column);
//! - every other op is one kernel (a duplicated norm or polynomial costs a whole kernel);
//! - constants and attributes are free: a scale absorbed into a norm's `eps` or
//!   `gain_scale`, attention's `score_scale` or SiLU's `input_scale` costs nothing.
//!
//! Levels come first because they are the scarce resource: each one is a share of a
//! bootstrap of every ciphertext on the path.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Add;

use egg::{Id, Language};
use serde::Serialize;

use super::language::{EGraph, Model};
use crate::ir::{OpKind, Type};

/// The cost of a graph (or of one value) under encryption, ordered lexicographically.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Cost {
    /// Standalone scalings, each a multiplicative level on its path.
    pub scalings: u64,
    /// Tensor ops other than scalings (kernels).
    pub kernels: u64,
    /// Ciphertext-by-constant multiplications of the scalings (one per column).
    pub multiplications: u64,
}

impl Add for Cost {
    type Output = Cost;

    fn add(self, other: Cost) -> Cost {
        Cost {
            scalings: self.scalings + other.scalings,
            kernels: self.kernels + other.kernels,
            multiplications: self.multiplications + other.multiplications,
        }
    }
}

impl std::iter::Sum for Cost {
    fn sum<I: Iterator<Item = Cost>>(iter: I) -> Cost {
        iter.fold(Cost::default(), Add::add)
    }
}

/// The cost of one value computed by an op of `kind` with result type `ty`; `scaled` says
/// whether a `ternary_linear`'s scale differs from 1.
pub fn op_cost(kind: OpKind, ty: Option<Type>, scaled: bool) -> Cost {
    let columns = match ty {
        Some(Type::Tensor { cols, .. }) => cols as u64,
        _ => 0,
    };
    let scaling = Cost {
        scalings: 1,
        kernels: 0,
        multiplications: columns,
    };
    let kernel = Cost {
        kernels: 1,
        ..Cost::default()
    };
    match kind {
        OpKind::Scale => scaling,
        OpKind::TernaryLinear if scaled => kernel + scaling,
        _ => kernel,
    }
}

/// The cost of one e-node (its own share, children excluded); `None` for arithmetic nodes,
/// which extraction never picks (folded classes hold a number).
fn node_cost(egraph: &EGraph, class: Id, node: &Model) -> Option<Cost> {
    match node {
        Model::Num(_) | Model::Attr(_) => Some(Cost::default()),
        Model::Times(_) | Model::Divide(_) => None,
        Model::Op(kind, children) => {
            let scaled =
                *kind == OpKind::TernaryLinear && egraph[children[2]].data.constant != Some(1.0);
            Some(op_cost(*kind, egraph[class].data.ty, scaled))
        }
    }
}

/// The chosen node of every class reachable from the roots, and the total cost.
#[derive(Debug, Clone)]
pub struct Extraction {
    /// The node chosen for each class reachable from the roots.
    pub choice: BTreeMap<Id, Model>,
    /// The cost of the extracted graph (each class counted once).
    pub cost: Cost,
}

/// The best known term of one class: its node and the classes (with their own costs) of
/// the sub-DAG it needs.
#[derive(Debug, Clone)]
struct Best {
    node: Model,
    total: Cost,
    needs: BTreeMap<Id, Cost>,
}

/// Extraction in two steps, both deterministic (classes in id order, nodes in their sorted
/// order, a choice changes only for a strictly lower cost):
///
/// 1. greedy DAG extraction (as extraction-gym's `greedy-dag`): repeatedly, the cost of a
///    node is the sum over the union of its children's sub-DAGs plus its own, and each
///    class keeps its cheapest node; nodes whose sub-DAG contains their own class (cycles
///    such as `x = scale(x, 1)`) are skipped;
/// 2. local improvement: each class of the extracted DAG tries its other nodes with every
///    other choice fixed, and keeps one that lowers the cost of the whole DAG (greedy
///    costs each output's sub-DAG alone, so two outputs sharing a value may each pick a
///    form the other does not reuse), until no single change helps.
///
/// Returns `None` for a root with no finite term (cannot happen for a graph's own classes).
pub fn extract(egraph: &EGraph, roots: &[Id]) -> Option<Extraction> {
    let mut choice = greedy(egraph)?;
    let roots: Vec<Id> = roots.iter().map(|&root| egraph.find(root)).collect();
    let mut cost = dag_cost(egraph, &choice, &roots)?;
    // Each accepted change lowers the cost, so this ends; the bound is a safety net.
    for _ in 0..64 {
        let mut improved = false;
        let reachable: Vec<Id> = reachable(egraph, &choice, &roots)?.into_iter().collect();
        for class in reachable {
            for node in &egraph[class].nodes {
                if choice.get(&class) == Some(node)
                    || node_cost(egraph, class, node).is_none()
                    || !node
                        .children()
                        .iter()
                        .all(|c| choice.contains_key(&egraph.find(*c)))
                {
                    continue;
                }
                let previous = choice.insert(class, node.clone())?;
                match dag_cost(egraph, &choice, &roots) {
                    Some(trial) if trial < cost => {
                        cost = trial;
                        improved = true;
                    }
                    _ => {
                        choice.insert(class, previous);
                    }
                }
            }
        }
        if !improved {
            break;
        }
    }
    let reachable = reachable(egraph, &choice, &roots)?;
    let choice = choice
        .into_iter()
        .filter(|(class, _)| reachable.contains(class))
        .collect();
    Some(Extraction { choice, cost })
}

/// The classes reachable from `roots` through the chosen nodes; `None` if the choice has a
/// cycle or misses a class.
fn reachable(egraph: &EGraph, choice: &BTreeMap<Id, Model>, roots: &[Id]) -> Option<BTreeSet<Id>> {
    // Iterative depth-first search with colours: on the stack (grey) or finished (black).
    let mut finished: BTreeSet<Id> = BTreeSet::new();
    let mut on_stack: BTreeSet<Id> = BTreeSet::new();
    for &root in roots {
        let mut stack: Vec<(Id, bool)> = vec![(root, false)];
        while let Some((class, expanded)) = stack.pop() {
            if expanded {
                on_stack.remove(&class);
                finished.insert(class);
                continue;
            }
            if finished.contains(&class) {
                continue;
            }
            if !on_stack.insert(class) {
                return None;
            }
            stack.push((class, true));
            for child in choice.get(&class)?.children() {
                let child = egraph.find(*child);
                if on_stack.contains(&child) {
                    return None;
                }
                if !finished.contains(&child) {
                    stack.push((child, false));
                }
            }
        }
    }
    Some(finished)
}

/// The cost of the DAG the choice makes from the roots (each class once); `None` if cyclic.
fn dag_cost(egraph: &EGraph, choice: &BTreeMap<Id, Model>, roots: &[Id]) -> Option<Cost> {
    reachable(egraph, choice, roots)?
        .into_iter()
        .map(|class| node_cost(egraph, class, choice.get(&class)?))
        .sum()
}

/// Step 1 of [`extract`]: the greedy choice of every class that has a finite term.
fn greedy(egraph: &EGraph) -> Option<BTreeMap<Id, Model>> {
    let mut classes: Vec<Id> = egraph.classes().map(|class| class.id).collect();
    classes.sort_unstable();
    let mut best: BTreeMap<Id, Best> = BTreeMap::new();
    loop {
        let mut changed = false;
        for &class in &classes {
            for node in &egraph[class].nodes {
                let Some(own) = node_cost(egraph, class, node) else {
                    continue;
                };
                let children: Option<Vec<&Best>> = node
                    .children()
                    .iter()
                    .map(|child| best.get(&egraph.find(*child)))
                    .collect();
                let Some(children) = children else { continue };
                let mut needs = children
                    .iter()
                    .max_by_key(|child| child.needs.len())
                    .map(|child| child.needs.clone())
                    .unwrap_or_default();
                for child in &children {
                    needs.extend(child.needs.iter().map(|(&id, &cost)| (id, cost)));
                }
                if needs.contains_key(&class) {
                    continue;
                }
                needs.insert(class, own);
                let total: Cost = needs.values().copied().sum();
                if best.get(&class).is_none_or(|current| total < current.total) {
                    best.insert(
                        class,
                        Best {
                            node: node.clone(),
                            total,
                            needs,
                        },
                    );
                    changed = true;
                }
            }
        }
        if !changed {
            break;
        }
    }

    Some(
        best.into_iter()
            .map(|(class, best)| (class, best.node))
            .collect(),
    )
}
