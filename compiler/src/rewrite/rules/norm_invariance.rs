//! RMSNorm scale invariance: a positive scale of a norm's input disappears into its `eps`, exactly.

use egg::rewrite as rw;

use super::super::language::Rewrite;
use super::is_positive;

/// The rules of the family.
#[rustfmt::skip]
pub(super) fn rules() -> Vec<Rewrite> {
    vec![
        // rms_norm(c·x; g, gs, eps) == rms_norm(x; g, gs, eps/c²), c > 0
        // (c·x / sqrt(c²·mean(x²) + eps) = x / sqrt(mean(x²) + eps/c²), no approximation)
        rw!("rms-norm-absorbs-input-scale";
            "(rms_norm (scale ?x ?c) ?g ?gs ?eps)" => "(rms_norm ?x ?g ?gs (/ ?eps (* ?c ?c)))"
            if is_positive("?c")),
    ]
}
