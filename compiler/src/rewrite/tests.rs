//! One-line rewrite tests: each rule alone turns one term into another (or must not), plus a few identities that need several rules.

use std::collections::BTreeSet;

use egg::{RecExpr, Runner, SimpleScheduler};

use super::language::{EGraph, Model, ModelAnalysis, Rewrite};
use super::rules::catalog;

/// The rules called `names`, or every rule for `["*"]`.
fn rules(names: &[&str]) -> Vec<Rewrite> {
    catalog()
        .into_iter()
        .map(|(_, rule)| rule)
        .filter(|rule| names == ["*"] || names.contains(&rule.name.as_str()))
        .collect()
}

fn expr(text: &str) -> RecExpr<Model> {
    text.parse()
        .unwrap_or_else(|error| panic!("`{text}` does not parse: {error}"))
}

/// Whether running `names` on `from` makes it equal to `to`.
fn reaches(names: &[&str], from: &str, to: &str) -> bool {
    let rules = rules(names);
    assert!(!rules.is_empty(), "no rule {names:?}");
    let mut egraph = EGraph::new(ModelAnalysis::default());
    let root = egraph.add_expr(&expr(from));
    let runner = Runner::default()
        .with_egraph(egraph)
        .with_iter_limit(16)
        .with_scheduler(SimpleScheduler)
        .run(&rules);
    let mut egraph = runner.egraph;
    // Adding the goal finds the existing class if the rules built it; constants in the goal
    // fold to the same bits as the rules' arithmetic.
    let goal = egraph.add_expr(&expr(to));
    egraph.rebuild();
    egraph.find(root) == egraph.find(goal)
}

/// Rule name, term, what it rewrites to.
#[rustfmt::skip]
const REWRITES: &[(&str, &str, &str)] = &[
    ("ternary-linear-extract-scale", "(ternary_linear x w 0.25)", "(scale (ternary_linear x w 1) 0.25)"),
    ("ternary-linear-hoist-scale", "(ternary_linear (scale x 3) w 0.5)", "(scale (ternary_linear x w 0.5) 3)"),
    ("ternary-linear-sink-scale-into-norm", "(scale (ternary_linear (rms_norm x g 2 1e-5) w 1) 3)", "(ternary_linear (rms_norm x g (* 2 3) 1e-5) w 1)"),
    ("rope-hoist-scale", "(rope (scale x 2) :4 :16 500000)", "(scale (rope x :4 :16 500000) 2)"),
    ("attention-hoist-value-scale", "(attention q k (scale v 5) :4 :2 :16 :sigmoid :true 1)", "(scale (attention q k v :4 :2 :16 :sigmoid :true 1) 5)"),
    ("attention-absorb-query-scale", "(attention (scale q 0.5) k v :4 :2 :16 :sigmoid :true 3)", "(attention q k v :4 :2 :16 :sigmoid :true (* 3 0.5))"),
    ("attention-absorb-key-scale", "(attention q (scale k 0.5) v :4 :2 :16 :softmax :true 3)", "(attention q k v :4 :2 :16 :softmax :true (* 3 0.5))"),
    ("add-hoist-common-scale", "(add (scale x 7) (scale y 7))", "(scale (add x y) 7)"),
    ("lm-head-hoist-scale", "(lm_head (scale x 2) w :true)", "(scale (lm_head x w :true) 2)"),
    ("rms-norm-gain-absorbs-scale", "(scale (rms_norm x g 2 1e-5) 0.25)", "(rms_norm x g (* 2 0.25) 1e-5)"),
    ("silu-absorbs-input-scale", "(silu (scale x 0.5) 3)", "(silu x (* 3 0.5))"),
    ("scale-of-scale", "(scale (scale x 2) 3)", "(scale x (* 2 3))"),
    ("scale-by-one", "(scale x 1)", "x"),
    ("rms-norm-absorbs-input-scale", "(rms_norm (scale x 3) g 1 1e-5)", "(rms_norm x g 1 (/ 1e-5 (* 3 3)))"),
    ("relu2-homogeneity", "(relu2 (scale x 3))", "(scale (relu2 x) (* 3 3))"),
    ("mul-hoist-lhs-scale", "(mul (scale x 2) y)", "(scale (mul x y) 2)"),
    ("mul-hoist-rhs-scale", "(mul x (scale y 3))", "(scale (mul x y) 3)"),
];

/// Rule name, term, what it must not rewrite to (a sign or a mismatch makes it illegal).
#[rustfmt::skip]
const REFUSALS: &[(&str, &str, &str)] = &[
    ("relu2-homogeneity", "(relu2 (scale x -2))", "(scale (relu2 x) (* -2 -2))"),
    ("rms-norm-absorbs-input-scale", "(rms_norm (scale x -3) g 1 1e-5)", "(rms_norm x g 1 (/ 1e-5 (* -3 -3)))"),
    ("rms-norm-gain-absorbs-scale", "(scale (rms_norm x g 1 1e-5) -2)", "(rms_norm x g (* 1 -2) 1e-5)"),
    ("attention-absorb-query-scale", "(attention (scale q -1) k v :4 :2 :16 :sigmoid :true 1)", "(attention q k v :4 :2 :16 :sigmoid :true (* 1 -1))"),
    ("attention-absorb-key-scale", "(attention q (scale k -1) v :4 :2 :16 :sigmoid :true 1)", "(attention q k v :4 :2 :16 :sigmoid :true (* 1 -1))"),
    ("silu-absorbs-input-scale", "(silu (scale x -1) 1)", "(silu x (* 1 -1))"),
    ("add-hoist-common-scale", "(add (scale x 2) (scale y 3))", "(scale (add x y) 2)"),
    ("ternary-linear-extract-scale", "(ternary_linear x w 1)", "(scale (ternary_linear x w 1) 1)"),
    ("ternary-linear-sink-scale-into-norm", "(scale (ternary_linear (rms_norm x g 1 1e-5) w 1) -3)", "(ternary_linear (rms_norm x g (* 1 -3) 1e-5) w 1)"),
    ("ternary-linear-sink-scale-into-norm", "(scale (ternary_linear (relu2 x) w 1) 3)", "(ternary_linear (scale (relu2 x) 3) w 1)"),
    ("ternary-linear-extract-scale", "(ternary_linear x w -0.5)", "(scale (ternary_linear x w 1) -0.5)"),
];

#[test]
fn every_rule_rewrites_its_term() {
    for (rule, from, to) in REWRITES {
        assert!(reaches(&[rule], from, to), "{rule}: {from} => {to}");
    }
}

#[test]
fn rules_refuse_illegal_rewrites() {
    for (rule, from, to) in REFUSALS {
        assert!(
            !reaches(&[rule], from, to),
            "{rule} must not turn {from} into {to}"
        );
    }
}

#[test]
fn every_rule_has_a_one_line_test_and_a_unique_name() {
    let names: Vec<String> = catalog()
        .iter()
        .map(|(_, rule)| rule.name.to_string())
        .collect();
    let unique: BTreeSet<&str> = names.iter().map(String::as_str).collect();
    assert_eq!(unique.len(), names.len(), "rule names are unique");
    let tested: BTreeSet<&str> = REWRITES.iter().map(|(rule, _, _)| *rule).collect();
    assert_eq!(unique, tested, "every rule has a rewrite test");
    for name in &names {
        let kebab = name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        assert!(kebab, "{name} is kebab-case");
    }
}

/// Identities that take several rules (the whole rule set).
#[rustfmt::skip]
const IDENTITIES: &[(&str, &str)] = &[
    // (a·x) ⊙ (b·y) == (a·b) · (x ⊙ y)
    ("(mul (scale x 2) (scale y 3))", "(scale (mul x y) (* 2 3))"),
    // ReLU²-gated product, then the sub-norm: β_gate² · β_up vanishes into eps.
    ("(rms_norm (mul (relu2 (ternary_linear x wg 0.5)) (ternary_linear x wu 0.25)) g 1 1e-5)",
     "(rms_norm (mul (relu2 (ternary_linear x wg 1)) (ternary_linear x wu 1)) g 1 (/ 1e-5 (* (* (* 0.5 0.5) 0.25) (* (* 0.5 0.5) 0.25))))"),
    // β_q and β_k land in the score scale through RoPE.
    ("(attention (rope (ternary_linear n wq 0.5) :4 :16 10000) (rope (ternary_linear n wk 0.25) :2 :16 10000) v :4 :2 :16 :sigmoid :true 1)",
     "(attention (rope (ternary_linear n wq 1) :4 :16 10000) (rope (ternary_linear n wk 1) :2 :16 10000) v :4 :2 :16 :sigmoid :true (* (* 1 0.5) 0.25))"),
    // β_o lands in the gain of the norm before the projection.
    ("(ternary_linear (rms_norm a g 1 1e-5) wo 0.125)", "(ternary_linear (rms_norm a g (* 1 0.125) 1e-5) wo 1)"),
];

#[test]
fn scales_reach_their_absorbers() {
    for (from, to) in IDENTITIES {
        assert!(reaches(&["*"], from, to), "{from} => {to}");
    }
}

/// SiLU is not homogeneous: no rule may pull a scale out of it.
#[test]
fn silu_keeps_its_scale_inside() {
    for to in ["(scale (silu x 1) 2)", "(scale (silu x 1) (* 2 2))"] {
        assert!(!reaches(&["*"], "(silu (scale x 2) 1)", to), "{to}");
    }
    assert!(reaches(&["*"], "(silu (scale x 2) 1)", "(silu x 2)"));
}

/// Names (and free leaves) print quoted, other attributes as `:word`, constants as numbers.
#[test]
fn terms_print_as_they_parse() {
    for text in [
        "(rms_norm (scale \"x\" 3.0) \"model.norm.weight\" 1.0 1e-5)",
        "(attention \"q\" \"k\" \"v\" :4 :2 :16 :sigmoid :true 0.5)",
        "(scale (ternary_linear \"x\" \"w\" 1.0) (* 2.0 3.0))",
    ] {
        assert_eq!(expr(text).to_string(), text);
    }
}

/// Greedy extraction costs each output alone; two outputs sharing `W·x·0.3` would each keep a
/// scaling of its own (`rope(W x) · 0.3` and `W x 0.3`). Local improvement shares one.
#[test]
fn extraction_shares_a_scaling_between_outputs() {
    let mut egraph = EGraph::new(ModelAnalysis::default());
    let shared = egraph.add_expr(&expr("(ternary_linear x w 0.3)"));
    let rotated = egraph.add_expr(&expr("(rope (ternary_linear x w 0.3) :2 :16 10000)"));
    let runner = Runner::default()
        .with_egraph(egraph)
        .with_scheduler(SimpleScheduler)
        .run(&rules(&["*"]));
    let extraction = super::extract::extract(&runner.egraph, &[rotated, shared]).expect("extracts");
    assert_eq!(extraction.cost.scalings, 1, "{:?}", extraction.choice);
    assert_eq!(extraction.cost.kernels, 2, "{:?}", extraction.choice);
}
