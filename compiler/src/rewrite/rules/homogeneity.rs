//! Homogeneity: ReLU² is positively homogeneous of degree 2, the elementwise product is bilinear; SiLU is neither, so it has no rule here.
//!
//! `silu(c·x) = c·x·σ(c·x)` is not `c^k · silu(x)` for any `k`; its input scale is folded
//! into its polynomial's input map by `silu-absorbs-input-scale` (weight-scale family).

use egg::rewrite as rw;

use super::super::language::Rewrite;
use super::is_positive;

/// The rules of the family.
#[rustfmt::skip]
pub(super) fn rules() -> Vec<Rewrite> {
    vec![
        // relu2(c·x) == c² · relu2(x), c > 0   (relu(c·x) = c·relu(x) needs c ≥ 0)
        rw!("relu2-homogeneity";
            "(relu2 (scale ?x ?c))" => "(scale (relu2 ?x) (* ?c ?c))"
            if is_positive("?c")),
        // (a·x) ⊙ y == a · (x ⊙ y)
        rw!("mul-hoist-lhs-scale";
            "(mul (scale ?x ?a) ?y)" => "(scale (mul ?x ?y) ?a)"),
        // x ⊙ (b·y) == b · (x ⊙ y)
        rw!("mul-hoist-rhs-scale";
            "(mul ?x (scale ?y ?b))" => "(scale (mul ?x ?y) ?b)"),
    ]
}
