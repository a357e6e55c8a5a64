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

use std::collections::BTreeMap;
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
    let classes = Classes::new(egraph);
    let mut choice = greedy(egraph, &classes);
    let roots: Vec<usize> = roots
        .iter()
        .map(|&root| usize::from(egraph.find(root)))
        .collect();
    let mut walk = Walk::new(classes.len());
    let mut cost = walk.cost(egraph, &classes, &choice, &roots)?;
    // Each accepted change lowers the cost, so this ends; the bound is a safety net.
    for _ in 0..64 {
        let mut improved = false;
        let reachable = walk.reachable(egraph, &classes, &choice, &roots)?;
        for class in reachable {
            let id = classes.id(class);
            for (index, node) in egraph[id].nodes.iter().enumerate() {
                if choice[class] == Some(index)
                    || node_cost(egraph, id, node).is_none()
                    || !node
                        .children()
                        .iter()
                        .all(|child| choice[usize::from(egraph.find(*child))].is_some())
                {
                    continue;
                }
                let previous = choice[class].replace(index);
                match walk.cost(egraph, &classes, &choice, &roots) {
                    Some(trial) if trial < cost => {
                        cost = trial;
                        improved = true;
                    }
                    _ => choice[class] = previous,
                }
            }
        }
        if !improved {
            break;
        }
    }
    let choice = walk
        .reachable(egraph, &classes, &choice, &roots)?
        .into_iter()
        .map(|class| {
            let id = classes.id(class);
            let index = choice[class]?;
            Some((id, egraph[id].nodes[index].clone()))
        })
        .collect::<Option<BTreeMap<Id, Model>>>()?;
    Some(Extraction { choice, cost })
}

/// The e-classes by dense index (`usize::from(id)`), in id order.
struct Classes {
    ids: Vec<Option<Id>>,
    order: Vec<usize>,
}

impl Classes {
    fn new(egraph: &EGraph) -> Self {
        let mut order: Vec<usize> = egraph
            .classes()
            .map(|class| usize::from(class.id))
            .collect();
        order.sort_unstable();
        let mut ids = vec![None; order.last().map_or(0, |&last| last + 1)];
        for &index in &order {
            ids[index] = Some(Id::from(index));
        }
        Self { ids, order }
    }

    fn len(&self) -> usize {
        self.ids.len()
    }

    fn id(&self, index: usize) -> Id {
        // Indices come from canonical ids of this e-graph.
        self.ids[index].unwrap_or_else(|| Id::from(index))
    }
}

/// The chosen node (index into the class's nodes) per class index.
type Choice = Vec<Option<usize>>;

/// Step 1 of [`extract`]: the greedy choice of every class that has a finite term.
///
/// A class's sub-DAG is a sorted list of the op classes it needs (leaf classes, constants
/// and attributes, cost nothing and are left out).
fn greedy(egraph: &EGraph, classes: &Classes) -> Choice {
    let mut choice: Choice = vec![None; classes.len()];
    let mut own: Vec<Cost> = vec![Cost::default(); classes.len()];
    let mut totals: Vec<Option<Cost>> = vec![None; classes.len()];
    let mut needs: Vec<Vec<u32>> = vec![Vec::new(); classes.len()];
    loop {
        let mut changed = false;
        for &class in &classes.order {
            let id = classes.id(class);
            for (index, node) in egraph[id].nodes.iter().enumerate() {
                let Some(node_own) = node_cost(egraph, id, node) else {
                    continue;
                };
                let children: Option<Vec<usize>> = node
                    .children()
                    .iter()
                    .map(|child| {
                        let child = usize::from(egraph.find(*child));
                        choice[child].map(|_| child)
                    })
                    .collect();
                let Some(children) = children else { continue };
                let mut set: Vec<u32> = Vec::new();
                for &child in &children {
                    if !node_is_leaf(egraph, classes.id(child), choice[child]) {
                        set.extend_from_slice(&needs[child]);
                        set.push(child as u32);
                    }
                }
                set.sort_unstable();
                set.dedup();
                if set.binary_search(&(class as u32)).is_ok() {
                    continue;
                }
                let total = set.iter().map(|&c| own[c as usize]).sum::<Cost>() + node_own;
                if totals[class].is_none_or(|current| total < current) {
                    totals[class] = Some(total);
                    own[class] = node_own;
                    choice[class] = Some(index);
                    needs[class] = set;
                    changed = true;
                }
            }
        }
        if !changed {
            break;
        }
    }
    choice
}

/// Whether the chosen node of a class is a leaf (a constant or an attribute).
fn node_is_leaf(egraph: &EGraph, id: Id, chosen: Option<usize>) -> bool {
    chosen.is_some_and(|index| egraph[id].nodes[index].is_leaf())
}

/// Depth-first walks over the chosen DAG, with reusable colour marks.
struct Walk {
    /// 0: unvisited, 1: on the stack, 2: finished; `touched` lists what to reset.
    colour: Vec<u8>,
    touched: Vec<usize>,
}

impl Walk {
    fn new(len: usize) -> Self {
        Self {
            colour: vec![0; len],
            touched: Vec::new(),
        }
    }

    /// The classes reachable from `roots` in finishing order; `None` on a cycle or a class
    /// without a choice.
    fn reachable(
        &mut self,
        egraph: &EGraph,
        classes: &Classes,
        choice: &Choice,
        roots: &[usize],
    ) -> Option<Vec<usize>> {
        for &index in &self.touched {
            self.colour[index] = 0;
        }
        self.touched.clear();
        let mut finished = Vec::new();
        for &root in roots {
            let mut stack: Vec<(usize, bool)> = vec![(root, false)];
            while let Some((class, expanded)) = stack.pop() {
                if expanded {
                    self.colour[class] = 2;
                    finished.push(class);
                    continue;
                }
                match self.colour[class] {
                    2 => continue,
                    1 => return None,
                    _ => {}
                }
                self.colour[class] = 1;
                self.touched.push(class);
                stack.push((class, true));
                let node = &egraph[classes.id(class)].nodes[choice[class]?];
                for child in node.children() {
                    let child = usize::from(egraph.find(*child));
                    match self.colour[child] {
                        1 => return None,
                        0 => stack.push((child, false)),
                        _ => {}
                    }
                }
            }
        }
        Some(finished)
    }

    /// The cost of the DAG the choice makes from the roots (each class once); `None` if cyclic.
    fn cost(
        &mut self,
        egraph: &EGraph,
        classes: &Classes,
        choice: &Choice,
        roots: &[usize],
    ) -> Option<Cost> {
        self.reachable(egraph, classes, choice, roots)?
            .into_iter()
            .map(|class| {
                let id = classes.id(class);
                node_cost(egraph, id, &egraph[id].nodes[choice[class]?])
            })
            .sum()
    }
}
