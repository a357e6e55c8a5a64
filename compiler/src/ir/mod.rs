//! The model IR: an arena of typed tensor operations from one op table, a verifier, and a text form that parses back.
//!
//! A [`Graph`] holds [`Node`]s (an [`Op`] and its result [`Type`]) in an arena; operands are
//! [`Handle`]s of earlier nodes, so arena order is a topological order. [`verify`] checks a
//! graph and returns the [`GraphInfo`] certificate later stages require. [`print()`] and
//! [`parse()`] convert to and from the text form, with `parse(&print(&g)) == Ok(g)`.
//!
//! ```text
//! %0: ids[4] = tokens
//! %1: [4, 32] = embed %0, table="model.embed_tokens.weight"
//! %2: [4, 32] = rms_norm %1, gain="model.layers.0.input_layernorm.weight", eps=1e-5
//! ...
//! output logits = %40
//! ```

mod arena;
mod graph;
mod ops;
mod parse;
mod print;
mod verify;

#[cfg(test)]
mod tests;

pub use arena::{Arena, Handle};
pub use graph::{Graph, Node, Output, Type};
#[allow(
    unused_imports,
    reason = "the op table, for generators of later stages"
)]
pub(crate) use ops::for_each_op;
pub use ops::{AttentionKind, MAX_OPERANDS, Op, OpKind, Operands, Real, TensorName};
pub(crate) use ops::{AttrText, AttrValue, RealOrd};
pub use parse::{ParseError, parse};
pub use print::print;
pub use verify::{GraphInfo, Mnemonic, VerifyError, verify};
