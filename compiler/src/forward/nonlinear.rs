//! The scalar nonlinearities of the model, and the [`Nonlinear`] hook through which the forward pass evaluates them (exactly, recorded, or approximated).

use std::fmt;

use serde::Serialize;

use crate::ir::{Handle, Node};

/// A scalar function the model applies, as a polynomial would have to approximate it under
/// encryption.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Function {
    /// `max(x, 0)²` (the `relu2` op).
    Relu2,
    /// `z · σ(z)` (the `silu` op; `z` includes its input scale).
    Silu,
    /// `σ(z) = 1 / (1 + e^−z)` of sigmoid attention, `z = score − ln T`.
    Sigmoid,
    /// `e^s` of softmax attention, `s` a score (the softmax baseline).
    Exp,
    /// `1/S` of softmax attention, `S` a row sum of `e^s` (the softmax baseline).
    Inverse,
    /// `1/√m` of an RMSNorm, `m = mean(x²) + eps` of a row.
    InvSqrt,
}

impl Function {
    /// Every function, in a fixed order.
    pub const ALL: [Function; 6] = [
        Self::Relu2,
        Self::Silu,
        Self::Sigmoid,
        Self::Exp,
        Self::Inverse,
        Self::InvSqrt,
    ];

    /// The name in reports (`inv_sqrt`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Relu2 => "relu2",
            Self::Silu => "silu",
            Self::Sigmoid => "sigmoid",
            Self::Exp => "exp",
            Self::Inverse => "inverse",
            Self::InvSqrt => "inv_sqrt",
        }
    }

    /// The function's exact value at `x`.
    pub fn exact(self, x: f64) -> f64 {
        match self {
            Self::Relu2 => x.max(0.0) * x.max(0.0),
            Self::Silu => x / (1.0 + (-x).exp()),
            Self::Sigmoid => 1.0 / (1.0 + (-x).exp()),
            Self::Exp => x.exp(),
            Self::Inverse => 1.0 / x,
            Self::InvSqrt => 1.0 / x.sqrt(),
        }
    }
}

impl fmt::Display for Function {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How the forward pass evaluates the nonlinearities of each node.
///
/// Each method receives the node it evaluates for, so an implementation can use a
/// different approximation per node, or record per-node argument ranges.
pub trait Nonlinear {
    /// `max(x, 0)²` at a `relu2` node.
    fn relu2(&mut self, node: Handle<Node>, x: f64) -> f64;
    /// `z · σ(z)` at a `silu` node, `z = input_scale · x`.
    fn silu(&mut self, node: Handle<Node>, z: f64) -> f64;
    /// `σ(z)` at a sigmoid `attention` node, `z = score − ln T`.
    fn sigmoid(&mut self, node: Handle<Node>, z: f64) -> f64;
    /// Replaces the scores of one query's (causal) keys at a softmax `attention` node by
    /// their softmax weights.
    fn softmax(&mut self, node: Handle<Node>, scores: &mut [f64]);
    /// `1/√m` at an `rms_norm` node, `m = mean(x²) + eps` of one row.
    fn inv_sqrt(&mut self, node: Handle<Node>, m: f64) -> f64;
}

/// The exact functions (in f64), as the reference forward computes them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Exact;

impl Nonlinear for Exact {
    fn relu2(&mut self, _: Handle<Node>, x: f64) -> f64 {
        Function::Relu2.exact(x)
    }

    fn silu(&mut self, _: Handle<Node>, z: f64) -> f64 {
        Function::Silu.exact(z)
    }

    fn sigmoid(&mut self, _: Handle<Node>, z: f64) -> f64 {
        Function::Sigmoid.exact(z)
    }

    fn softmax(&mut self, _: Handle<Node>, scores: &mut [f64]) {
        // Subtracting the row's max changes nothing mathematically and keeps e^s finite.
        let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let mut total = 0.0;
        for score in scores.iter_mut() {
            *score = (*score - max).exp();
            total += *score;
        }
        scores.iter_mut().for_each(|weight| *weight /= total);
    }

    fn inv_sqrt(&mut self, _: Handle<Node>, m: f64) -> f64 {
        Function::InvSqrt.exact(m)
    }
}
