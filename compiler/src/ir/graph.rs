//! Graphs: nodes (an op and its result type) in an arena, in topological order, plus named outputs.

use std::fmt;

use super::arena::{Arena, Handle};
use super::ops::Op;

/// The type of a node's result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Type {
    /// `ids[len]`: one token id per position.
    Ids {
        /// Number of tokens `T`.
        len: usize,
    },
    /// `[rows, cols]`: a real matrix, one row per token position.
    Tensor {
        /// Number of token positions `T`.
        rows: usize,
        /// Width of each row.
        cols: usize,
    },
}

impl Type {
    /// A `[rows, cols]` tensor type.
    pub fn tensor(rows: usize, cols: usize) -> Self {
        Self::Tensor { rows, cols }
    }
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ids { len } => write!(f, "ids[{len}]"),
            Self::Tensor { rows, cols } => write!(f, "[{rows}, {cols}]"),
        }
    }
}

/// One operation and the type of the value it produces.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Node {
    /// What the node computes.
    pub op: Op,
    /// The declared type of its result (the verifier checks it against the operands).
    pub ty: Type,
}

/// A named value the graph computes for its caller (`hidden`, `logits`, `layer3`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Output {
    /// The name, an identifier (`[A-Za-z_][A-Za-z0-9_]*`).
    pub name: String,
    /// The node whose value is returned.
    pub value: Handle<Node>,
}

/// A model-IR graph: nodes in an arena, each operand defined before its users, so the arena
/// order is a topological order; analyses live in side tables keyed by [`Handle<Node>`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Graph {
    nodes: Arena<Node>,
    outputs: Vec<Output>,
}

impl Graph {
    /// An empty graph.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a node computing `op`, whose result has type `ty`.
    pub fn push(&mut self, op: Op, ty: Type) -> Handle<Node> {
        self.nodes.append(Node { op, ty })
    }

    /// Declares `value` an output called `name`.
    pub fn add_output(&mut self, name: impl Into<String>, value: Handle<Node>) {
        self.outputs.push(Output {
            name: name.into(),
            value,
        });
    }

    /// The nodes, in topological order.
    pub fn nodes(&self) -> &Arena<Node> {
        &self.nodes
    }

    /// The node of `handle`.
    ///
    /// # Panics
    ///
    /// If `handle` dangles (never, for a verified graph's own handles).
    pub fn node(&self, handle: Handle<Node>) -> &Node {
        &self.nodes[handle]
    }

    /// The outputs, in declaration order.
    pub fn outputs(&self) -> &[Output] {
        &self.outputs
    }

    /// The node of the output called `name`.
    pub fn output(&self, name: &str) -> Option<Handle<Node>> {
        self.outputs
            .iter()
            .find(|output| output.name == name)
            .map(|output| output.value)
    }
}
