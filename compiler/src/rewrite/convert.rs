//! Model IR <-> e-graph: every node becomes an op e-node over its operands' classes and its attribute leaves; the extracted choice becomes a graph again, in the input's node order.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

use egg::Id;

use super::RewriteError;
use super::extract::{self, Cost, op_cost};
use super::language::{EGraph, Model, ModelAnalysis};
use crate::ir::{AttrText, Graph, Handle, Node, Op};

/// The e-graph of a graph, and the class of each of its nodes (by handle index).
pub(super) struct Start {
    pub egraph: EGraph,
    pub classes: Vec<Id>,
}

/// The e-graph holding exactly `graph`.
pub(super) fn to_egraph(graph: &Graph) -> Start {
    let mut egraph = EGraph::new(ModelAnalysis::for_graph(graph));
    let mut classes: Vec<Id> = Vec::with_capacity(graph.nodes().len());
    for (_, node) in graph.nodes().iter() {
        let mut children: Vec<Id> = node
            .op
            .operands()
            .iter()
            .map(|operand| classes[operand.index()])
            .collect();
        for value in node.op.attribute_values() {
            children.push(egraph.add(Model::leaf(value)));
        }
        classes.push(egraph.add(Model::Op(node.op.kind(), children.into())));
    }
    egraph.rebuild();
    Start { egraph, classes }
}

/// The cost of `graph` as it is (the nodes its outputs need), under the extraction cost model.
pub(super) fn graph_cost(graph: &Graph) -> Cost {
    let mut needed = vec![false; graph.nodes().len()];
    for output in graph.outputs() {
        needed[output.value.index()] = true;
    }
    // Arena order is topological: users after operands, so walk backwards.
    for (handle, node) in graph.nodes().iter().collect::<Vec<_>>().into_iter().rev() {
        if needed[handle.index()] {
            for operand in node.op.operands() {
                needed[operand.index()] = true;
            }
        }
    }
    graph
        .nodes()
        .iter()
        .filter(|(handle, _)| needed[handle.index()])
        .map(|(_, node)| {
            let scaled = matches!(node.op, Op::TernaryLinear { scale, .. } if scale.0 != 1.0);
            op_cost(node.op.kind(), Some(node.ty), scaled)
        })
        .sum()
}

/// Extracts the cheapest graph with the outputs of `input` (whose nodes had the classes
/// `classes`) from the saturated e-graph.
///
/// Node order: a value that is (equal to) an input node takes that node's position; any
/// other value takes the position of its first user; ties go by a post-order walk from the
/// outputs, so operands still precede their users.
pub(super) fn from_egraph(
    egraph: &EGraph,
    classes: &[Id],
    input: &Graph,
) -> Result<(Graph, Cost), RewriteError> {
    let roots: Vec<Id> = input
        .outputs()
        .iter()
        .map(|output| egraph.find(classes[output.value.index()]))
        .collect();
    let extraction =
        extract::extract(egraph, &roots).ok_or_else(|| RewriteError::Unextractable {
            what: "an output".to_owned(),
        })?;
    let choice = &extraction.choice;
    let operands = |class: Id| -> Vec<Id> {
        match choice.get(&class) {
            Some(Model::Op(kind, children)) => children[..kind.operand_names().len()]
                .iter()
                .map(|&child| egraph.find(child))
                .collect(),
            _ => Vec::new(),
        }
    };

    // Post-order from the outputs, operands in order.
    let mut postorder: BTreeMap<Id, usize> = BTreeMap::new();
    let mut order: Vec<Id> = Vec::new();
    for &root in &roots {
        let mut stack: Vec<(Id, bool)> = vec![(root, false)];
        while let Some((class, expanded)) = stack.pop() {
            if postorder.contains_key(&class) {
                continue;
            }
            if expanded {
                postorder.insert(class, order.len());
                order.push(class);
            } else {
                stack.push((class, true));
                stack.extend(
                    operands(class)
                        .into_iter()
                        .rev()
                        .map(|child| (child, false)),
                );
            }
        }
    }

    // Positions: the earliest input node of the class, else the earliest user's position.
    let mut original: BTreeMap<Id, usize> = BTreeMap::new();
    for (index, &class) in classes.iter().enumerate() {
        original.entry(egraph.find(class)).or_insert(index);
    }
    let mut key: BTreeMap<Id, usize> = BTreeMap::new();
    let mut users: BTreeMap<Id, Vec<Id>> = BTreeMap::new();
    for &class in &order {
        for child in operands(class) {
            users.entry(child).or_default().push(class);
        }
    }
    for &class in order.iter().rev() {
        let position = original.get(&class).copied().unwrap_or_else(|| {
            users
                .get(&class)
                .into_iter()
                .flatten()
                .filter_map(|user| key.get(user).copied())
                .min()
                .unwrap_or(usize::MAX)
        });
        key.insert(class, position);
    }

    // Kahn's algorithm, smallest (position, post-order index) first.
    let mut pending: BTreeMap<Id, usize> = order
        .iter()
        .map(|&class| (class, operands(class).len()))
        .collect();
    let mut ready: BinaryHeap<Reverse<(usize, usize, Id)>> = pending
        .iter()
        .filter(|&(_, &count)| count == 0)
        .map(|(&class, _)| Reverse((key[&class], postorder[&class], class)))
        .collect();
    let mut graph = Graph::new();
    let mut handles: BTreeMap<Id, Handle<Node>> = BTreeMap::new();
    while let Some(Reverse((_, _, class))) = ready.pop() {
        let handle = emit(egraph, choice, class, &handles, &mut graph)?;
        handles.insert(class, handle);
        for &user in users.get(&class).into_iter().flatten() {
            if let Some(count) = pending.get_mut(&user) {
                *count -= 1;
                if *count == 0 {
                    ready.push(Reverse((key[&user], postorder[&user], user)));
                }
            }
        }
    }
    for (output, root) in input.outputs().iter().zip(&roots) {
        let handle = handles
            .get(root)
            .ok_or_else(|| RewriteError::Unextractable {
                what: format!("output `{}`", output.name),
            })?;
        graph.add_output(output.name.clone(), *handle);
    }
    Ok((graph, extraction.cost))
}

/// Appends the chosen node of `class`, whose operands are already in `graph`.
fn emit(
    egraph: &EGraph,
    choice: &BTreeMap<Id, Model>,
    class: Id,
    handles: &BTreeMap<Id, Handle<Node>>,
    graph: &mut Graph,
) -> Result<Handle<Node>, RewriteError> {
    let unextractable = |what: String| RewriteError::Unextractable { what };
    let Some(Model::Op(kind, children)) = choice.get(&class) else {
        return Err(unextractable(format!("e-class {class}: not an op")));
    };
    let operand_count = kind.operand_names().len();
    let operands: Vec<Handle<Node>> = children[..operand_count]
        .iter()
        .map(|child| handles[&egraph.find(*child)])
        .collect();
    let mut attribute = |name: &'static str| -> Result<AttrText, String> {
        let position = kind
            .attribute_names()
            .iter()
            .position(|&attribute| attribute == name)
            .ok_or_else(|| format!("no attribute `{name}`"))?;
        let leaf = egraph.find(children[operand_count + position]);
        match choice.get(&leaf) {
            Some(Model::Num(value)) => Ok(AttrText::Word(value.0.to_string())),
            Some(Model::Attr(text)) => Ok(text.clone()),
            _ => Err(format!("attribute `{name}` is not a constant")),
        }
    };
    let op = Op::build(*kind, &operands, &mut attribute)
        .map_err(|problem| unextractable(format!("a `{}` node: {problem}", kind.mnemonic())))?;
    let ty = egraph[class]
        .data
        .ty
        .ok_or_else(|| unextractable(format!("the type of a `{}` node", kind.mnemonic())))?;
    Ok(graph.push(op, ty))
}
