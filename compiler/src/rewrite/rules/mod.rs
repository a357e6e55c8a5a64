//! The rule families, one file each; every rule has a kebab-case name and states its identity.
//!
//! Scales move toward the places that absorb them for free under encryption: an RMSNorm's
//! `eps` (scale invariance) or `gain_scale`, attention's `score_scale`, SiLU's
//! `input_scale`. A `scale` that stays on the data path costs a multiplicative level.

mod homogeneity;
mod norm_invariance;
mod weight_scale;

use egg::{Id, Subst, Var};

use super::language::{EGraph, Rewrite};

/// A family of rules, as reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Family {
    /// Projection weight scales pulled out of `ternary_linear` and moved through linear ops
    /// into norm gains, attention's score scale and SiLU's input scale.
    WeightScale,
    /// `rms_norm(c·x; eps) = rms_norm(x; eps/c²)` for `c > 0`.
    NormInvariance,
    /// Positive homogeneity of ReLU² and bilinearity of the elementwise product.
    Homogeneity,
}

impl Family {
    /// Every family, in the order their rules are listed.
    pub const ALL: [Family; 3] = [Self::WeightScale, Self::NormInvariance, Self::Homogeneity];

    /// The family's name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::WeightScale => "weight-scale",
            Self::NormInvariance => "norm-invariance",
            Self::Homogeneity => "homogeneity",
        }
    }

    /// The family's rules.
    pub(crate) fn rules(self) -> Vec<Rewrite> {
        match self {
            Self::WeightScale => weight_scale::rules(),
            Self::NormInvariance => norm_invariance::rules(),
            Self::Homogeneity => homogeneity::rules(),
        }
    }
}

/// Every rule of every family with its family, in family order.
pub fn catalog() -> Vec<(Family, Rewrite)> {
    Family::ALL
        .into_iter()
        .flat_map(|family| family.rules().into_iter().map(move |rule| (family, rule)))
        .collect()
}

/// The variable `name` (`"?c"`) of a pattern.
///
/// # Panics
///
/// If `name` is not a variable; rules are written by hand, and the one-line tests run every
/// rule, so a typo panics in the tests.
fn var(name: &str) -> Var {
    #[allow(
        clippy::expect_used,
        reason = "a literal in a rule, exercised by the tests"
    )]
    name.parse().expect("a pattern variable")
}

/// The constant bound to `var`, if its class is one.
fn constant(egraph: &EGraph, subst: &Subst, var: Var) -> Option<f64> {
    egraph[subst[var]].data.constant
}

/// Condition: `var` is a known positive finite constant.
fn is_positive(name: &str) -> impl Fn(&mut EGraph, Id, &Subst) -> bool + use<> {
    let var = var(name);
    move |egraph, _, subst| constant(egraph, subst, var).is_some_and(|c| c.is_finite() && c > 0.0)
}

/// Condition: `var` is a known positive finite constant other than 1.
fn is_positive_not_one(name: &str) -> impl Fn(&mut EGraph, Id, &Subst) -> bool + use<> {
    let var = var(name);
    move |egraph, _, subst| {
        constant(egraph, subst, var).is_some_and(|c| c.is_finite() && c > 0.0 && c != 1.0)
    }
}
