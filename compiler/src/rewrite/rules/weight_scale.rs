//! Weight-scale folding: a projection's `weight_scale` leaves the ternary matmul and travels through linear ops to a free home (a norm gain, attention's score scale, SiLU's input scale).
//!
//! Scales move with the data flow (out of linear ops toward their users), except into the
//! norm right before a projection; moving both ways through projections would let float
//! products of the same scales in different orders (different last bits) feed each other
//! without end.

use egg::rewrite as rw;

use super::super::language::Rewrite;
use super::{is_positive, is_positive_not_one};

/// The rules of the family.
#[rustfmt::skip]
pub(super) fn rules() -> Vec<Rewrite> {
    vec![
        // ternary_linear(x, W, s) == s · ternary_linear(x, W, 1), s > 0, s ≠ 1
        rw!("ternary-linear-extract-scale";
            "(ternary_linear ?x ?w ?s)" => "(scale (ternary_linear ?x ?w 1) ?s)"
            if is_positive_not_one("?s")),
        // ternary_linear(c·x, W, s) == c · ternary_linear(x, W, s)   (linearity)
        rw!("ternary-linear-hoist-scale";
            "(ternary_linear (scale ?x ?c) ?w ?s)" => "(scale (ternary_linear ?x ?w ?s) ?c)"),
        // c · ternary_linear(rms_norm(x; g, gs), W, s) == ternary_linear(rms_norm(x; g, c·gs), W, s),
        // c > 0   (linearity, then the norm's gain: the one move against the data flow, so
        // scales cannot ping-pong through projections and saturation terminates)
        rw!("ternary-linear-sink-scale-into-norm";
            "(scale (ternary_linear (rms_norm ?x ?g ?gs ?eps) ?w ?s) ?c)"
            => "(ternary_linear (rms_norm ?x ?g (* ?gs ?c) ?eps) ?w ?s)"
            if is_positive("?c")),
        // rope(c·x) == c · rope(x)   (a rotation per pair of coordinates is linear)
        rw!("rope-hoist-scale";
            "(rope (scale ?x ?c) ?heads ?dim ?theta)" => "(scale (rope ?x ?heads ?dim ?theta) ?c)"),
        // attention(q, k, c·v) == c · attention(q, k, v)   (the output A·V is linear in V)
        rw!("attention-hoist-value-scale";
            "(attention ?q ?k (scale ?v ?c) ?h ?kv ?d ?kind ?causal ?s)"
            => "(scale (attention ?q ?k ?v ?h ?kv ?d ?kind ?causal ?s) ?c)"),
        // attention(a·q, k, v; s) == attention(q, k, v; a·s), a > 0   (scores are bilinear in q, k)
        rw!("attention-absorb-query-scale";
            "(attention (scale ?q ?a) ?k ?v ?h ?kv ?d ?kind ?causal ?s)"
            => "(attention ?q ?k ?v ?h ?kv ?d ?kind ?causal (* ?s ?a))"
            if is_positive("?a")),
        // attention(q, a·k, v; s) == attention(q, k, v; a·s), a > 0
        rw!("attention-absorb-key-scale";
            "(attention ?q (scale ?k ?a) ?v ?h ?kv ?d ?kind ?causal ?s)"
            => "(attention ?q ?k ?v ?h ?kv ?d ?kind ?causal (* ?s ?a))"
            if is_positive("?a")),
        // c·x + c·y == c · (x + y)
        rw!("add-hoist-common-scale";
            "(add (scale ?x ?c) (scale ?y ?c))" => "(scale (add ?x ?y) ?c)"),
        // lm_head(c·x) == c · lm_head(x)   (a matmul)
        rw!("lm-head-hoist-scale";
            "(lm_head (scale ?x ?c) ?w ?tied)" => "(scale (lm_head ?x ?w ?tied) ?c)"),
        // c · rms_norm(x; g, gs, eps) == rms_norm(x; g, c·gs, eps), c > 0
        rw!("rms-norm-gain-absorbs-scale";
            "(scale (rms_norm ?x ?g ?gs ?eps) ?c)" => "(rms_norm ?x ?g (* ?gs ?c) ?eps)"
            if is_positive("?c")),
        // silu(c·x; s) == silu(x; c·s), c > 0   (SiLU is not homogeneous: the scale goes into
        // the polynomial's input map instead)
        rw!("silu-absorbs-input-scale";
            "(silu (scale ?x ?c) ?s)" => "(silu ?x (* ?s ?c))"
            if is_positive("?c")),
        // b · (a · x) == (a·b) · x
        rw!("scale-of-scale";
            "(scale (scale ?x ?a) ?b)" => "(scale ?x (* ?a ?b))"),
        // 1 · x == x
        rw!("scale-by-one";
            "(scale ?x 1)" => "?x"),
    ]
}
