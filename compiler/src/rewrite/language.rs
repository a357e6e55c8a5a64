//! The e-graph language of the model IR (ops from the op table, attribute leaves, constant arithmetic) and its analysis: folded constants and tensor types per e-class.
//!
//! An op node's children are its operands followed by its attributes in table order, so
//! `rms_norm %x, gain="g", gain_scale=1.0, eps=1e-5` is `(rms_norm x "g" 1.0 1e-5)` and
//! `scale %x, factor=0.5` is `(scale x 0.5)`. Real attributes are [`Model::Num`] leaves that
//! rules compute with (`(* ?a ?b)`, `(/ ?a ?b)`, folded by [`ModelAnalysis`]); every other
//! attribute is a [`Model::Attr`] leaf in its text form (`:4`, `:sigmoid`, `"q.weight"`).

use std::collections::BTreeMap;
use std::fmt;

use egg::{Analysis, DidMerge, FromOp, FromOpError, Id, Language};

use crate::ir::{AttrText, AttrValue, Graph, Op, OpKind, Real, RealOrd, Type};

/// A node of the e-graph language.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Model {
    /// A real constant: a real attribute, or a folded product or quotient of them.
    Num(RealOrd),
    /// Any other attribute in its text form, or a free leaf of a test expression (`x`).
    Attr(AttrText),
    /// `a · b` of two constants (folded by the analysis).
    Times([Id; 2]),
    /// `a / b` of two constants (folded by the analysis).
    Divide([Id; 2]),
    /// A model-IR op: its operands, then its attributes in table order.
    Op(OpKind, Box<[Id]>),
}

impl Model {
    /// A real constant leaf.
    pub fn num(value: f64) -> Self {
        Self::Num(RealOrd(Real(value)))
    }

    /// The leaf of an attribute value.
    pub(crate) fn leaf(value: AttrValue) -> Self {
        match value {
            AttrValue::Real(real) => Self::Num(real),
            AttrValue::Text(text) => Self::Attr(text),
        }
    }

    /// Number of children an op of `kind` has: operands plus attributes.
    pub fn arity(kind: OpKind) -> usize {
        kind.operand_names().len() + kind.attribute_names().len()
    }
}

/// What [`Model::matches`] compares: the variant, the op kind and leaf payloads.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum ModelTag {
    /// A constant.
    Num(RealOrd),
    /// An attribute.
    Attr(AttrText),
    /// `*`.
    Times,
    /// `/`.
    Divide,
    /// An op of this kind.
    Op(OpKind),
}

impl Language for Model {
    type Discriminant = ModelTag;

    fn discriminant(&self) -> ModelTag {
        match self {
            Self::Num(value) => ModelTag::Num(*value),
            Self::Attr(text) => ModelTag::Attr(text.clone()),
            Self::Times(_) => ModelTag::Times,
            Self::Divide(_) => ModelTag::Divide,
            Self::Op(kind, _) => ModelTag::Op(*kind),
        }
    }

    fn matches(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Op(a, x), Self::Op(b, y)) => a == b && x.len() == y.len(),
            _ => self.discriminant() == other.discriminant(),
        }
    }

    fn children(&self) -> &[Id] {
        match self {
            Self::Num(_) | Self::Attr(_) => &[],
            Self::Times(children) | Self::Divide(children) => children,
            Self::Op(_, children) => children,
        }
    }

    fn children_mut(&mut self) -> &mut [Id] {
        match self {
            Self::Num(_) | Self::Attr(_) => &mut [],
            Self::Times(children) | Self::Divide(children) => children,
            Self::Op(_, children) => children,
        }
    }
}

impl fmt::Display for Model {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Num(value) => write!(f, "{}", value.0),
            Self::Attr(AttrText::Word(word)) => write!(f, ":{word}"),
            Self::Attr(AttrText::Str(text)) => write!(f, "{text:?}"),
            Self::Times(_) => f.write_str("*"),
            Self::Divide(_) => f.write_str("/"),
            Self::Op(kind, _) => f.write_str(kind.mnemonic()),
        }
    }
}

impl FromOp for Model {
    type Error = FromOpError;

    /// Reads the s-expression form: an op mnemonic with its full arity, `*` and `/` of two
    /// constants, a number, `:word` (a non-real attribute such as `:4` or `:sigmoid`), or any
    /// other atom as a name (`"q.weight"`, or a free leaf `x` in tests).
    fn from_op(op: &str, children: Vec<Id>) -> Result<Self, FromOpError> {
        if let Some(kind) = OpKind::from_mnemonic(op)
            && children.len() == Self::arity(kind)
        {
            return Ok(Self::Op(kind, children.into()));
        }
        match (op, <[Id; 2]>::try_from(children.as_slice())) {
            ("*", Ok(pair)) => return Ok(Self::Times(pair)),
            ("/", Ok(pair)) => return Ok(Self::Divide(pair)),
            _ => {}
        }
        if !children.is_empty() {
            return Err(FromOpError::new(op, children));
        }
        if let Ok(value) = op.parse::<f64>() {
            return Ok(Self::num(value));
        }
        Ok(Self::Attr(match op.strip_prefix(':') {
            Some(word) => AttrText::Word(word.to_owned()),
            None => AttrText::Str(op.to_owned()),
        }))
    }
}

/// The e-graph of the model language.
pub(crate) type EGraph = egg::EGraph<Model, ModelAnalysis>;
/// A rewrite rule of the model language.
pub(crate) type Rewrite = egg::Rewrite<Model, ModelAnalysis>;

/// What the analysis knows about an e-class.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Facts {
    /// The class's value if it is a constant.
    pub constant: Option<f64>,
    /// The tensor type if the class is a value of the graph (not a leaf).
    pub ty: Option<Type>,
}

/// Two merged classes had different tensor types: a rule changed a shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TypeConflict {
    /// The type of one class.
    pub left: Type,
    /// The type of the other.
    pub right: Type,
}

/// Constant folding and tensor types.
///
/// Types follow the verifier's rules: every op has its first operand's type, except the
/// ops whose width comes from a weight (`embed`, `ternary_linear`, `lm_head`), whose width
/// is looked up by weight name in the graph being rewritten, and `tokens`.
#[derive(Debug, Clone, Default)]
pub(crate) struct ModelAnalysis {
    /// Output width of each weight-reading op, by op and weight name (an embedding table is
    /// also the tied LM head, with the other width).
    widths: BTreeMap<(OpKind, String), usize>,
    /// Token count `T` of the graph.
    tokens: Option<usize>,
    /// Merges of differently typed classes (there should be none).
    pub(crate) conflicts: Vec<TypeConflict>,
}

impl ModelAnalysis {
    /// The analysis for rewriting `graph`: weight widths and `T` read from its nodes.
    pub fn for_graph(graph: &Graph) -> Self {
        let mut analysis = Self::default();
        for (_, node) in graph.nodes().iter() {
            match (&node.op, node.ty) {
                (Op::Tokens {}, Type::Ids { len }) => analysis.tokens = Some(len),
                (
                    Op::Embed { table: weight, .. }
                    | Op::TernaryLinear { weight, .. }
                    | Op::LmHead { weight, .. },
                    Type::Tensor { cols, .. },
                ) => {
                    let key = (node.op.kind(), weight.0.clone());
                    analysis.widths.entry(key).or_insert(cols);
                }
                _ => {}
            }
        }
        analysis
    }

    fn ty(egraph: &EGraph, kind: OpKind, children: &[Id]) -> Option<Type> {
        let rows = |id: Id| match egraph[id].data.ty? {
            Type::Tensor { rows, .. } => Some(rows),
            Type::Ids { len } => Some(len),
        };
        let weight_width = |id: Id| {
            egraph[id].nodes.iter().find_map(|node| match node {
                Model::Attr(AttrText::Str(name)) => {
                    egraph.analysis.widths.get(&(kind, name.clone())).copied()
                }
                _ => None,
            })
        };
        match kind {
            OpKind::Tokens => egraph.analysis.tokens.map(|len| Type::Ids { len }),
            OpKind::Embed | OpKind::TernaryLinear | OpKind::LmHead => {
                Some(Type::tensor(rows(children[0])?, weight_width(children[1])?))
            }
            _ => egraph[children[0]].data.ty,
        }
    }
}

impl Analysis<Model> for ModelAnalysis {
    type Data = Facts;

    fn make(egraph: &mut EGraph, enode: &Model, _id: Id) -> Facts {
        let constant = |id: Id| egraph[id].data.constant;
        match enode {
            Model::Num(value) => Facts {
                constant: Some(value.0.0),
                ty: None,
            },
            Model::Attr(_) => Facts::default(),
            Model::Times([a, b]) => Facts {
                constant: constant(*a).zip(constant(*b)).map(|(a, b)| a * b),
                ty: None,
            },
            Model::Divide([a, b]) => Facts {
                constant: constant(*a)
                    .zip(constant(*b))
                    .filter(|&(_, b)| b != 0.0)
                    .map(|(a, b)| a / b),
                ty: None,
            },
            Model::Op(kind, children) => Facts {
                constant: None,
                ty: Self::ty(egraph, *kind, children),
            },
        }
    }

    fn merge(&mut self, a: &mut Facts, b: Facts) -> DidMerge {
        let mut did = DidMerge(false, false);
        // Rules never equate two different constants; keep the first if they ever did.
        match (a.constant, b.constant) {
            (None, Some(_)) => {
                a.constant = b.constant;
                did.0 = true;
            }
            (Some(_), None) => did.1 = true,
            _ => {}
        }
        match (a.ty, b.ty) {
            (None, Some(_)) => {
                a.ty = b.ty;
                did.0 = true;
            }
            (Some(_), None) => did.1 = true,
            (Some(left), Some(right)) if left != right => {
                self.conflicts.push(TypeConflict { left, right });
            }
            _ => {}
        }
        did
    }

    /// A folded constant class gets its [`Model::Num`] and loses the arithmetic nodes, so
    /// that extraction always finds the number.
    fn modify(egraph: &mut EGraph, id: Id) {
        if let Some(value) = egraph[id].data.constant {
            let leaf = egraph.add(Model::num(value));
            egraph.union(id, leaf);
            let id = egraph.find(id);
            egraph[id].nodes.retain(|node| node.is_leaf());
        }
    }
}
