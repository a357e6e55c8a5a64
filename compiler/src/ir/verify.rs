//! The verifier: graph in, [`GraphInfo`] certificate out (handles ordered, types inferred and matched, attributes sane).

use std::fmt;

use super::arena::Handle;
use super::graph::{Graph, Node, Type};
use super::ops::{Op, OpKind, Real, TensorName};

/// Proof that a graph passed [`verify`], with the facts later stages need.
///
/// Only the verifier makes one, so a stage that takes `&GraphInfo` cannot be handed an
/// unverified graph. It belongs to the graph it was made from ([`GraphInfo::describes`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphInfo {
    node_count: usize,
    output_count: usize,
    tokens: usize,
    input: Handle<Node>,
    last_use: Vec<Option<Handle<Node>>>,
}

impl GraphInfo {
    /// The number of token positions `T` every tensor has as rows.
    pub fn tokens(&self) -> usize {
        self.tokens
    }

    /// The `tokens` node, the graph's input.
    pub fn input(&self) -> Handle<Node> {
        self.input
    }

    /// The last node that reads `value` as an operand (`None` if no node does).
    ///
    /// # Panics
    ///
    /// If `value` is not a node of the verified graph.
    pub fn last_use(&self, value: Handle<Node>) -> Option<Handle<Node>> {
        self.last_use[value.index()]
    }

    /// Whether this certificate could belong to `graph` (same node and output counts).
    pub fn describes(&self, graph: &Graph) -> bool {
        graph.nodes().len() == self.node_count && graph.outputs().len() == self.output_count
    }
}

/// Why a graph is not well formed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// An operand refers to a node that is not defined before its user.
    #[error("{node} ({kind}): operand {operand} is not defined before its use")]
    UndefinedOperand {
        /// The user.
        node: Handle<Node>,
        /// Its op.
        kind: Mnemonic,
        /// The operand.
        operand: Handle<Node>,
    },
    /// An operand's type is not what the op accepts.
    #[error("{node} ({kind}): operand {operand} has type {found}, expected {expected}")]
    OperandType {
        /// The user.
        node: Handle<Node>,
        /// Its op.
        kind: Mnemonic,
        /// The operand.
        operand: Handle<Node>,
        /// The operand's type.
        found: Type,
        /// What was expected, as text.
        expected: String,
    },
    /// A node's declared type differs from what its operands and attributes produce.
    #[error("{node} ({kind}): declared type {declared}, but the op produces {inferred}")]
    ResultType {
        /// The node.
        node: Handle<Node>,
        /// Its op.
        kind: Mnemonic,
        /// The type written on the node.
        declared: Type,
        /// The type its op produces.
        inferred: Type,
    },
    /// A declared type the op can never produce.
    #[error("{node} ({kind}): declared type {declared} {problem}")]
    DeclaredType {
        /// The node.
        node: Handle<Node>,
        /// Its op.
        kind: Mnemonic,
        /// The type written on the node.
        declared: Type,
        /// What it should be, phrased to follow the type.
        problem: String,
    },
    /// An attribute value the op cannot use.
    #[error("{node} ({kind}): attribute `{attribute}` {problem}")]
    Attribute {
        /// The node.
        node: Handle<Node>,
        /// Its op.
        kind: Mnemonic,
        /// The attribute.
        attribute: &'static str,
        /// What is wrong, phrased to follow the attribute name.
        problem: String,
    },
    /// The graph does not have exactly one `tokens` node.
    #[error("graph input: {problem}")]
    Input {
        /// What is wrong.
        problem: String,
    },
    /// An output is misnamed or refers to no node.
    #[error("output `{name}`: {problem}")]
    Output {
        /// The output's name.
        name: String,
        /// What is wrong.
        problem: String,
    },
}

/// An op's mnemonic, for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mnemonic(pub OpKind);

impl fmt::Display for Mnemonic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.mnemonic())
    }
}

/// Checks `graph` and returns its certificate.
///
/// Rules: operands precede their users; there is exactly one `tokens` node, of type
/// `ids[T]` with `T ≥ 1`, and every tensor has `T` rows; each node's declared type is the
/// one its op produces from its operands (embedding, linear and LM-head widths come from
/// the declared type and must be positive); attributes are in range; outputs are uniquely
/// named identifiers referring to nodes.
pub fn verify(graph: &Graph) -> Result<GraphInfo, VerifyError> {
    let nodes = graph.nodes();
    let mut input: Option<Handle<Node>> = None;
    let mut last_use = vec![None; nodes.len()];
    for (handle, node) in nodes.iter() {
        let kind = Mnemonic(node.op.kind());
        for operand in node.op.operands() {
            if operand >= handle {
                return Err(VerifyError::UndefinedOperand {
                    node: handle,
                    kind,
                    operand,
                });
            }
            last_use[operand.index()] = Some(handle);
        }
        if let Op::Tokens {} = node.op {
            if let Some(first) = input {
                return Err(VerifyError::Input {
                    problem: format!("{handle} is a second `tokens` node (the first is {first})"),
                });
            }
            input = Some(handle);
        }
        let checker = Checker {
            graph,
            handle,
            node,
            kind,
        };
        let inferred = checker.infer()?;
        if inferred != node.ty {
            return Err(VerifyError::ResultType {
                node: handle,
                kind,
                declared: node.ty,
                inferred,
            });
        }
    }
    let Some(input) = input else {
        return Err(VerifyError::Input {
            problem: "no `tokens` node".to_owned(),
        });
    };
    let Type::Ids { len: tokens } = graph.node(input).ty else {
        // `infer` only accepts `ids[T]` for a tokens node.
        return Err(VerifyError::Input {
            problem: format!("{input} is not of type ids[T]"),
        });
    };

    if graph.outputs().is_empty() {
        return Err(VerifyError::Input {
            problem: "the graph has no outputs".to_owned(),
        });
    }
    for (position, output) in graph.outputs().iter().enumerate() {
        let problem = if !is_identifier(&output.name) {
            Some("the name is not an identifier ([A-Za-z_][A-Za-z0-9_]*)".to_owned())
        } else if graph.outputs()[..position]
            .iter()
            .any(|other| other.name == output.name)
        {
            Some("the name is used twice".to_owned())
        } else if nodes.get(output.value).is_none() {
            Some(format!("{} is not a node", output.value))
        } else {
            None
        };
        if let Some(problem) = problem {
            return Err(VerifyError::Output {
                name: output.name.clone(),
                problem,
            });
        }
    }

    Ok(GraphInfo {
        node_count: nodes.len(),
        output_count: graph.outputs().len(),
        tokens,
        input,
        last_use,
    })
}

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Type inference for one node, whose operands are already known to precede it.
struct Checker<'a> {
    graph: &'a Graph,
    handle: Handle<Node>,
    node: &'a Node,
    kind: Mnemonic,
}

impl Checker<'_> {
    fn infer(&self) -> Result<Type, VerifyError> {
        match &self.node.op {
            Op::Tokens {} => match self.node.ty {
                Type::Ids { len } if len > 0 => Ok(self.node.ty),
                _ => Err(self.declared("must be ids[T] with T ≥ 1")),
            },
            &Op::Embed { ids, ref table } => {
                self.name("table", table)?;
                let Type::Ids { len } = self.ty(ids) else {
                    return Err(self.operand(ids, "ids[T]".to_owned()));
                };
                Ok(Type::tensor(len, self.declared_width()?))
            }
            &Op::RmsNorm {
                x,
                ref gain,
                gain_scale,
                eps,
            } => {
                self.name("gain", gain)?;
                self.positive("gain_scale", gain_scale)?;
                self.positive("eps", eps)?;
                self.tensor(x).map(|(rows, cols)| Type::tensor(rows, cols))
            }
            &Op::ActQuant { x, bits } => {
                if !(2..=16).contains(&bits) {
                    return Err(self.attribute("bits", format!("must be in 2..=16, found {bits}")));
                }
                self.tensor(x).map(|(rows, cols)| Type::tensor(rows, cols))
            }
            &Op::TernaryLinear {
                x,
                ref weight,
                scale,
            } => {
                self.name("weight", weight)?;
                self.positive("scale", scale)?;
                let (rows, _) = self.tensor(x)?;
                Ok(Type::tensor(rows, self.declared_width()?))
            }
            &Op::Scale { x, factor } => {
                self.positive("factor", factor)?;
                self.tensor(x).map(|(rows, cols)| Type::tensor(rows, cols))
            }
            &Op::Rope {
                x,
                heads,
                head_dim,
                theta,
            } => {
                self.positive("theta", theta)?;
                if heads == 0 {
                    return Err(self.attribute("heads", "must be positive".to_owned()));
                }
                if head_dim == 0 || head_dim % 2 != 0 {
                    return Err(self.attribute(
                        "head_dim",
                        format!("must be positive and even, found {head_dim}"),
                    ));
                }
                let (rows, cols) = self.tensor(x)?;
                let width = self.width(heads, head_dim)?;
                if cols != width {
                    return Err(self.operand(x, format!("[T, {width}] (heads × head_dim)")));
                }
                Ok(Type::tensor(rows, cols))
            }
            &Op::Attention {
                q,
                k,
                v,
                heads,
                kv_heads,
                head_dim,
                score_scale,
                ..
            } => {
                self.positive("score_scale", score_scale)?;
                self.attention([q, k, v], heads, kv_heads, head_dim)
            }
            &Op::Relu2 { x } => self.tensor(x).map(|(rows, cols)| Type::tensor(rows, cols)),
            &Op::Silu { x, input_scale } => {
                self.positive("input_scale", input_scale)?;
                self.tensor(x).map(|(rows, cols)| Type::tensor(rows, cols))
            }
            &Op::Mul { lhs, rhs } | &Op::Add { lhs, rhs } => {
                let (rows, cols) = self.tensor(lhs)?;
                if self.ty(rhs) != Type::tensor(rows, cols) {
                    return Err(self.operand(rhs, format!("{} (the type of {lhs})", self.ty(lhs))));
                }
                Ok(Type::tensor(rows, cols))
            }
            &Op::LmHead {
                x,
                ref weight,
                tied: _,
            } => {
                self.name("weight", weight)?;
                let (rows, _) = self.tensor(x)?;
                Ok(Type::tensor(rows, self.declared_width()?))
            }
        }
    }

    fn attention(
        &self,
        [q, k, v]: [Handle<Node>; 3],
        heads: usize,
        kv_heads: usize,
        head_dim: usize,
    ) -> Result<Type, VerifyError> {
        if heads == 0 || kv_heads == 0 || !heads.is_multiple_of(kv_heads) {
            return Err(self.attribute(
                "kv_heads",
                format!("must be positive and divide heads = {heads}, found {kv_heads}"),
            ));
        }
        if head_dim == 0 {
            return Err(self.attribute("head_dim", "must be positive".to_owned()));
        }
        let (rows, cols) = self.tensor(q)?;
        let query_width = self.width(heads, head_dim)?;
        if cols != query_width {
            return Err(self.operand(q, format!("[{rows}, {query_width}] (heads × head_dim)")));
        }
        let kv = Type::tensor(rows, self.width(kv_heads, head_dim)?);
        for operand in [k, v] {
            if self.ty(operand) != kv {
                return Err(self.operand(operand, format!("{kv} (kv_heads × head_dim)")));
            }
        }
        Ok(Type::tensor(rows, query_width))
    }

    /// The type of an operand (which precedes this node, so it exists).
    fn ty(&self, operand: Handle<Node>) -> Type {
        self.graph.node(operand).ty
    }

    /// `(rows, cols)` of a tensor operand.
    fn tensor(&self, operand: Handle<Node>) -> Result<(usize, usize), VerifyError> {
        match self.ty(operand) {
            Type::Tensor { rows, cols } => Ok((rows, cols)),
            Type::Ids { .. } => Err(self.operand(operand, "a tensor [T, d]".to_owned())),
        }
    }

    /// The declared output width of an op whose width comes from a weight.
    fn declared_width(&self) -> Result<usize, VerifyError> {
        match self.node.ty {
            Type::Tensor { cols, .. } if cols > 0 => Ok(cols),
            _ => Err(self.declared("must be a tensor [T, d] with d ≥ 1")),
        }
    }

    fn width(&self, heads: usize, head_dim: usize) -> Result<usize, VerifyError> {
        heads
            .checked_mul(head_dim)
            .ok_or_else(|| self.attribute("head_dim", format!("× {heads} heads overflows")))
    }

    fn name(&self, attribute: &'static str, name: &TensorName) -> Result<(), VerifyError> {
        if name.as_str().is_empty() {
            return Err(self.attribute(attribute, "must name a tensor".to_owned()));
        }
        Ok(())
    }

    fn positive(&self, attribute: &'static str, value: Real) -> Result<(), VerifyError> {
        if !(value.0.is_finite() && value.0 > 0.0) {
            return Err(self.attribute(
                attribute,
                format!("must be positive and finite, found {value}"),
            ));
        }
        Ok(())
    }

    fn operand(&self, operand: Handle<Node>, expected: String) -> VerifyError {
        VerifyError::OperandType {
            node: self.handle,
            kind: self.kind,
            operand,
            found: self.ty(operand),
            expected,
        }
    }

    fn declared(&self, problem: &str) -> VerifyError {
        VerifyError::DeclaredType {
            node: self.handle,
            kind: self.kind,
            declared: self.node.ty,
            problem: problem.to_owned(),
        }
    }

    fn attribute(&self, attribute: &'static str, problem: String) -> VerifyError {
        VerifyError::Attribute {
            node: self.handle,
            kind: self.kind,
            attribute,
            problem,
        }
    }
}
