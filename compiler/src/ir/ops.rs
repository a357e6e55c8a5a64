//! The op table: every model-IR operation, its operands and its attributes, defined once.
//!
//! [`for_each_op!`] hands the table to a generator macro. [`define_ops!`] below derives from it
//! the [`Op`] enum, the fieldless [`OpKind`], mnemonics, operand and attribute names, and the
//! attribute printing and parsing the text form uses; the verifier's exhaustive `match` makes
//! every new op state its typing rule. The e-graph language of `rewrite` is the table too: its
//! op nodes are an [`OpKind`] with operands and attribute leaves (`attribute_values`), turned
//! back into ops by `Op::build`.

use std::fmt;
use std::hash::{Hash, Hasher};

use super::arena::Handle;
use super::graph::Node;

/// Invokes `$generator!` with the op table.
///
/// Each entry reads `Variant = "mnemonic" (operands...) { attribute: Type, ... }`, preceded
/// by its doc comment. Operands are handles of earlier nodes; attributes are plain values
/// whose types implement [`Attribute`].
macro_rules! for_each_op {
    ($generator:ident) => {
        $generator! {
            /// The token ids, the graph's one input: `ids[T]`.
            Tokens = "tokens" () {},
            /// Rows of the embedding table `table` for each id: `ids[T] -> [T, d]`.
            Embed = "embed" (ids) { table: TensorName },
            /// `gain_scale · gain ⊙ x / sqrt(mean(x²) + eps)` over each row: `[T, d] -> [T, d]`
            /// (`gain_scale` is where the rewrites fold a positive scale that follows the norm).
            RmsNorm = "rms_norm" (x) { gain: TensorName, gain_scale: Real, eps: Real },
            /// Fake-quantizes each row to `bits`-bit integers by its absmax (BitNet's 8-bit
            /// activation quantization; dropped under encryption): `[T, d] -> [T, d]`.
            ActQuant = "act_quant" (x) { bits: u32 },
            /// `scale · (W x)` with `W` the ternary matrix `weight` (`[out, in]`):
            /// `[T, in] -> [T, out]`.
            TernaryLinear = "ternary_linear" (x) { weight: TensorName, scale: Real },
            /// `factor · x` for a positive constant `factor`, elementwise (a standalone scaling:
            /// under encryption it costs a multiplicative level unless the rewrites fold it away).
            Scale = "scale" (x) { factor: Real },
            /// Rotary position embedding (half-split, "rotate_half") of each head, position =
            /// row index: `[T, heads·head_dim] -> same`.
            Rope = "rope" (x) { heads: usize, head_dim: usize, theta: Real },
            /// Grouped-query attention, scores `score_scale · q·k / sqrt(head_dim)`; `softmax`
            /// normalizes each row, `sigmoid` takes `σ(score − ln T)` without normalization;
            /// `causal` keeps key positions ≤ the query's:
            /// `[T, heads·hd], [T, kv·hd] ×2 -> [T, heads·hd]`.
            Attention = "attention" (q, k, v) {
                heads: usize,
                kv_heads: usize,
                head_dim: usize,
                kind: AttentionKind,
                causal: bool,
                score_scale: Real
            },
            /// `relu(x)²`, elementwise.
            Relu2 = "relu2" (x) {},
            /// `silu(input_scale · x)` with `silu(z) = z · σ(z)`, elementwise (SiLU is not
            /// homogeneous, so a scale of its input is folded into the polynomial's input map).
            Silu = "silu" (x) { input_scale: Real },
            /// Elementwise product (the feed-forward gate).
            Mul = "mul" (lhs, rhs) {},
            /// Elementwise sum (the residual connection).
            Add = "add" (lhs, rhs) {},
            /// Logits `x Wᵀ` with `W = weight` (`[vocab, d]`, the embedding table when
            /// `tied`), not quantized: `[T, d] -> [T, vocab]`.
            LmHead = "lm_head" (x) { weight: TensorName, tied: bool },
        }
    };
}
pub(crate) use for_each_op;

/// Generates [`Op`], [`OpKind`] and their table-driven methods from [`for_each_op!`].
macro_rules! define_ops {
    ($(
        $(#[doc = $doc:literal])*
        $name:ident = $mnemonic:literal ( $($operand:ident),* ) { $($attr:ident : $attr_ty:ty),* $(,)? }
    ),* $(,)?) => {
        /// An operation: its operands (handles of earlier nodes) and its attributes.
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum Op {
            $(
                $(#[doc = $doc])*
                #[allow(missing_docs, reason = "fields are described by the op's doc comment")]
                $name { $($operand: Handle<Node>,)* $($attr: $attr_ty,)* },
            )*
        }

        /// The kind of an [`Op`], without operands or attributes.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum OpKind {
            $( $(#[doc = $doc])* $name, )*
        }

        impl OpKind {
            /// Every kind, in table order.
            pub const ALL: &'static [OpKind] = &[$(OpKind::$name),*];

            /// The name in the text form (`rms_norm`).
            pub const fn mnemonic(self) -> &'static str {
                match self { $(OpKind::$name => $mnemonic,)* }
            }

            /// The kind whose mnemonic is `text`.
            pub fn from_mnemonic(text: &str) -> Option<Self> {
                match text { $($mnemonic => Some(OpKind::$name),)* _ => None }
            }

            /// Operand names, in order.
            pub const fn operand_names(self) -> &'static [&'static str] {
                match self { $(OpKind::$name => &[$(stringify!($operand)),*],)* }
            }

            /// Attribute names, in the order the printer writes them.
            pub const fn attribute_names(self) -> &'static [&'static str] {
                match self { $(OpKind::$name => &[$(stringify!($attr)),*],)* }
            }
        }

        impl Op {
            /// The op's kind.
            pub fn kind(&self) -> OpKind {
                match self { $(Op::$name { .. } => OpKind::$name,)* }
            }

            /// The operands, in table order.
            pub fn operands(&self) -> Operands {
                match self {
                    $(Op::$name { $($operand,)* .. } => Operands::from_slice(&[$(*$operand),*]),)*
                }
            }

            /// The operands, mutably, for passes that renumber nodes.
            pub fn operands_mut(&mut self) -> Vec<&mut Handle<Node>> {
                match self {
                    $(Op::$name { $($operand,)* .. } => vec![$($operand),*],)*
                }
            }

            /// The attribute values, in table order (the e-graph language's attribute leaves).
            pub(crate) fn attribute_values(&self) -> Vec<AttrValue> {
                match self {
                    $(Op::$name { $($attr,)* .. } => vec![$(Attribute::value($attr)),*],)*
                }
            }

            /// Appends `, name=value` for each attribute, in table order.
            pub(crate) fn print_attributes(&self, out: &mut String) {
                match self {
                    $(Op::$name { $($attr,)* .. } => {
                        $(
                            out.push_str(concat!(", ", stringify!($attr), "="));
                            Attribute::print($attr, out);
                        )*
                    })*
                }
            }

            /// Builds an op of `kind` from its operands (exactly the kind's arity) and a source
            /// of attributes by name.
            pub(crate) fn build(
                kind: OpKind,
                operands: &[Handle<Node>],
                attributes: &mut impl FnMut(&'static str) -> Result<AttrText, String>,
            ) -> Result<Op, String> {
                let expected = kind.operand_names().len();
                if operands.len() != expected {
                    return Err(format!(
                        "`{}` takes {expected} operands, found {}",
                        kind.mnemonic(),
                        operands.len()
                    ));
                }
                #[allow(unused_variables, unused_mut, reason = "ops without operands")]
                let mut operands = operands.iter().copied();
                match kind {
                    $(OpKind::$name => Ok(Op::$name {
                        $($operand: operands.next().ok_or("too few operands")?,)*
                        $($attr: {
                            let name = stringify!($attr);
                            let text = attributes(name)?;
                            <$attr_ty as Attribute>::parse(&text)
                                .map_err(|problem| format!("attribute `{name}`: {problem}"))?
                        },)*
                    }),)*
                }
            }
        }
    };
}

for_each_op!(define_ops);

/// Most operands any op has (attention's q, k, v).
pub const MAX_OPERANDS: usize = 3;

const _: () = {
    let mut index = 0;
    while index < OpKind::ALL.len() {
        assert!(OpKind::ALL[index].operand_names().len() <= MAX_OPERANDS);
        index += 1;
    }
};

/// An op's operands, stored inline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Operands {
    items: [Option<Handle<Node>>; MAX_OPERANDS],
    len: usize,
}

impl Operands {
    fn from_slice(handles: &[Handle<Node>]) -> Self {
        let mut items = [None; MAX_OPERANDS];
        for (slot, &handle) in items.iter_mut().zip(handles) {
            *slot = Some(handle);
        }
        Self {
            items,
            len: handles.len().min(MAX_OPERANDS),
        }
    }

    /// Number of operands.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the op takes no operands.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The operands, in order.
    pub fn iter(&self) -> impl Iterator<Item = Handle<Node>> + '_ {
        self.items[..self.len].iter().flatten().copied()
    }
}

impl IntoIterator for Operands {
    type Item = Handle<Node>;
    type IntoIter = std::iter::Flatten<std::array::IntoIter<Option<Handle<Node>>, MAX_OPERANDS>>;

    fn into_iter(self) -> Self::IntoIter {
        // Slots past `len` are `None`, so flattening yields exactly the operands.
        self.items.into_iter().flatten()
    }
}

/// An attribute value as written in the text form: a bare word or an (unescaped) string.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum AttrText {
    /// Numbers, booleans, enum names: `1e-5`, `true`, `softmax`.
    Word(String),
    /// A quoted string, escapes resolved.
    Str(String),
}

impl fmt::Display for AttrText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Word(word) => f.write_str(word),
            Self::Str(text) => write!(f, "{text:?}"),
        }
    }
}

/// An attribute's value as later stages see it: a real number they may compute with, or
/// an opaque text (names, counts, flags) they only compare.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum AttrValue {
    /// A [`Real`] attribute.
    Real(RealOrd),
    /// Any other attribute, in its text form.
    Text(AttrText),
}

/// A [`Real`] ordered by its bits, for values that must be `Ord` (e-graph nodes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct RealOrd(pub Real);

impl PartialOrd for RealOrd {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for RealOrd {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.0.to_bits().cmp(&other.0.0.to_bits())
    }
}

/// A type that can be an op attribute: printed and parsed in the text form.
pub(crate) trait Attribute: Sized {
    /// Appends the value's text form.
    fn print(&self, out: &mut String);
    /// Reads a value from its text form.
    fn parse(text: &AttrText) -> Result<Self, String>;
    /// The value as later stages see it: text unless the type is [`Real`].
    fn value(&self) -> AttrValue {
        let mut word = String::new();
        self.print(&mut word);
        AttrValue::Text(AttrText::Word(word))
    }
}

/// Reads a bare word as a `T: FromStr`, naming what was expected on failure.
fn parse_word<T: std::str::FromStr>(text: &AttrText, what: &str) -> Result<T, String> {
    match text {
        AttrText::Word(word) => word
            .parse()
            .map_err(|_| format!("expected {what}, found `{word}`")),
        AttrText::Str(_) => Err(format!("expected {what}, found the string {text}")),
    }
}

impl Attribute for usize {
    fn print(&self, out: &mut String) {
        out.push_str(&self.to_string());
    }

    fn parse(text: &AttrText) -> Result<Self, String> {
        parse_word(text, "a non-negative integer")
    }
}

impl Attribute for u32 {
    fn print(&self, out: &mut String) {
        out.push_str(&self.to_string());
    }

    fn parse(text: &AttrText) -> Result<Self, String> {
        parse_word(text, "a non-negative integer")
    }
}

impl Attribute for bool {
    fn print(&self, out: &mut String) {
        out.push_str(if *self { "true" } else { "false" });
    }

    fn parse(text: &AttrText) -> Result<Self, String> {
        parse_word(text, "`true` or `false`")
    }
}

/// A real-valued attribute, compared and hashed by its bits.
///
/// Bitwise identity makes ops `Eq + Hash` (as e-graphs need) and makes the text round trip
/// exact: values print in the shortest form that parses back to the same bits.
#[derive(Clone, Copy)]
pub struct Real(pub f64);

impl PartialEq for Real {
    fn eq(&self, other: &Self) -> bool {
        self.0.to_bits() == other.0.to_bits()
    }
}

impl Eq for Real {}

impl Hash for Real {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.to_bits().hash(state);
    }
}

impl fmt::Debug for Real {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl fmt::Display for Real {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `{:?}` is Rust's shortest round-trip form (`1e-5`, `500000.0`).
        write!(f, "{:?}", self.0)
    }
}

impl Attribute for Real {
    fn print(&self, out: &mut String) {
        out.push_str(&self.to_string());
    }

    fn parse(text: &AttrText) -> Result<Self, String> {
        parse_word(text, "a number").map(Real)
    }

    fn value(&self) -> AttrValue {
        AttrValue::Real(RealOrd(*self))
    }
}

/// The name of a checkpoint tensor; the IR refers to weights by name, never copies them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TensorName(pub String);

impl TensorName {
    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TensorName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for TensorName {
    fn from(name: &str) -> Self {
        Self(name.to_owned())
    }
}

impl Attribute for TensorName {
    fn print(&self, out: &mut String) {
        out.push('"');
        for c in self.0.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
                c => out.push(c),
            }
        }
        out.push('"');
    }

    fn value(&self) -> AttrValue {
        AttrValue::Text(AttrText::Str(self.0.clone()))
    }

    fn parse(text: &AttrText) -> Result<Self, String> {
        match text {
            AttrText::Str(name) => Ok(Self(name.clone())),
            AttrText::Word(word) => Err(format!("expected a quoted tensor name, found `{word}`")),
        }
    }
}

/// How attention turns scores into weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AttentionKind {
    /// `softmax` over each query's (causal) key positions: the stock model.
    Softmax,
    /// `σ(score − ln T)` on each (causal) position, no normalization: the HE-friendly form.
    Sigmoid,
}

impl AttentionKind {
    /// The name in the text form and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Self::Softmax => "softmax",
            Self::Sigmoid => "sigmoid",
        }
    }
}

impl fmt::Display for AttentionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Attribute for AttentionKind {
    fn print(&self, out: &mut String) {
        out.push_str(self.name());
    }

    fn parse(text: &AttrText) -> Result<Self, String> {
        match text {
            AttrText::Word(word) if word == "softmax" => Ok(Self::Softmax),
            AttrText::Word(word) if word == "sigmoid" => Ok(Self::Sigmoid),
            _ => Err(format!("expected `softmax` or `sigmoid`, found {text}")),
        }
    }
}
