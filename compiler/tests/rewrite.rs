//! The rewrites on real graphs: snapshots of every fixture's rewritten IR, no standalone scale left, and the forward pass unchanged to 1e-12 on the fixtures and on random graphs.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "test helpers: a panic is a failed test"
)]

use std::path::PathBuf;

use ensi_checkpoint::Checkpoint;
use ensi_compiler::forward;
use ensi_compiler::frontend::{self, Options};
use ensi_compiler::ir::{self, AttentionKind, Graph, Handle, Node, Op, Real, Type};
use ensi_compiler::rewrite::{self, RewriteOptions, RewriteReport, StopReason};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

const FIXTURES: [&str; 4] = ["dev-h32", "dev-h64", "dev-h64-online", "dev-h128"];

fn checkpoint(name: &str) -> Checkpoint {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures")
        .join(name);
    Checkpoint::open(dir).expect("fixture opens")
}

/// The report's deterministic summary, for snapshots.
fn summary(report: &RewriteReport) -> String {
    let mut text = format!(
        "; stop: {}, iterations: {}, e-nodes: {}, e-classes: {}\n; cost before: {:?}\n; cost after:  {:?}\n",
        report.stop_reason,
        report.iterations,
        report.egraph_nodes,
        report.egraph_classes,
        report.cost_before,
        report.cost_after
    );
    for rule in report.rules.iter().filter(|rule| rule.applied > 0) {
        text += &format!("; {:>3} × {}\n", rule.applied, rule.rule);
    }
    text
}

/// max |a − b| / max |b| over every output.
fn relative_difference(a: &forward::Outputs, b: &forward::Outputs) -> f64 {
    a.iter()
        .map(|(name, left)| {
            let right = b.get(name).expect("same outputs");
            let error = left
                .data()
                .iter()
                .zip(right.data())
                .map(|(x, y)| (x - y).abs())
                .fold(0.0, f64::max);
            let scale = right.data().iter().map(|y| y.abs()).fold(0.0, f64::max);
            if scale == 0.0 { error } else { error / scale }
        })
        .fold(0.0, f64::max)
}

fn random_tokens(rng: &mut ChaCha8Rng, count: usize, vocab: usize) -> Vec<u32> {
    (0..count)
        .map(|_| rng.random_range(0..vocab as u32))
        .collect()
}

fn scale_count(graph: &Graph) -> usize {
    graph
        .nodes()
        .iter()
        .filter(|(_, node)| match &node.op {
            Op::Scale { .. } => true,
            Op::TernaryLinear { scale, .. } => scale.0 != 1.0,
            _ => false,
        })
        .count()
}

#[test]
fn every_fixture_loses_every_standalone_scale() {
    for fixture in FIXTURES {
        let checkpoint = checkpoint(fixture);
        let options = Options {
            layer_outputs: true,
            ..Options::encrypted(4)
        };
        let graph = frontend::build(&checkpoint, &options).expect("graph");
        let (rewritten, report) =
            rewrite::optimize(&graph, &RewriteOptions::default()).expect("rewrites");
        assert_eq!(report.stop_reason, StopReason::Saturated, "{fixture}");
        assert_eq!(scale_count(&rewritten), 0, "{fixture}");
        assert_eq!(report.cost_after.scalings, 0, "{fixture}");
        assert_eq!(
            report.cost_after.kernels, report.cost_before.kernels,
            "{fixture}"
        );
        let text = ir::print(&rewritten);
        assert_eq!(ir::parse(&text), Ok(rewritten), "{fixture}: parses back");
        insta::assert_snapshot!(
            format!("{fixture}-rewritten"),
            format!("{}{text}", summary(&report))
        );
    }
}

#[test]
fn rewriting_is_deterministic_and_idempotent() {
    let checkpoint = checkpoint("dev-h64");
    let graph = frontend::build(&checkpoint, &Options::encrypted(8)).expect("graph");
    let (first, report) = rewrite::optimize(&graph, &RewriteOptions::default()).expect("first");
    let (second, again) = rewrite::optimize(&graph, &RewriteOptions::default()).expect("second");
    assert_eq!(ir::print(&first), ir::print(&second));
    assert_eq!(report, again);
    let (third, _) = rewrite::optimize(&first, &RewriteOptions::default()).expect("third");
    assert_eq!(
        ir::print(&third),
        ir::print(&first),
        "a rewritten graph is a fixed point"
    );
}

#[test]
fn the_forward_pass_is_unchanged_on_every_fixture() {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    for fixture in FIXTURES {
        let checkpoint = checkpoint(fixture);
        let vocab = checkpoint.embedding().rows();
        for (attention, act_quant) in [
            (AttentionKind::Sigmoid, false),
            (AttentionKind::Softmax, false),
            (AttentionKind::Softmax, true),
        ] {
            let options = Options {
                tokens: 8,
                attention,
                act_quant,
                layer_outputs: true,
            };
            let graph = frontend::build(&checkpoint, &options).expect("graph");
            let (rewritten, _) =
                rewrite::optimize(&graph, &RewriteOptions::default()).expect("rewrites");
            let info = ir::verify(&graph).expect("verifies");
            let rewritten_info = ir::verify(&rewritten).expect("verifies");
            for _ in 0..3 {
                let tokens = random_tokens(&mut rng, 8, vocab);
                let before = forward::run(&graph, &info, &checkpoint, &tokens).expect("runs");
                let after =
                    forward::run(&rewritten, &rewritten_info, &checkpoint, &tokens).expect("runs");
                let difference = relative_difference(&after, &before);
                // Activation quantization rounds: a rounding flip is a legitimate difference
                // of one 8-bit step, so the quantized model only gets the float check.
                let bound = if act_quant { 1e-2 } else { 1e-12 };
                assert!(
                    difference <= bound,
                    "{fixture} {attention} aq={act_quant}: {difference:e}"
                );
            }
        }
    }
}

/// The projections of dev-h64 layer 0 by (input width, output width).
const WEIGHTS: [(&str, usize, usize); 7] = [
    ("model.layers.0.self_attn.q_proj.weight", 64, 64),
    ("model.layers.0.self_attn.k_proj.weight", 64, 32),
    ("model.layers.0.self_attn.v_proj.weight", 64, 32),
    ("model.layers.0.self_attn.o_proj.weight", 64, 64),
    ("model.layers.0.mlp.gate_proj.weight", 64, 176),
    ("model.layers.0.mlp.up_proj.weight", 64, 176),
    ("model.layers.0.mlp.down_proj.weight", 176, 64),
];

/// Norm gains of dev-h64 by width.
const GAINS: [(&str, usize); 2] = [
    ("model.layers.0.input_layernorm.weight", 64),
    ("model.layers.0.mlp.ffn_sub_norm.weight", 176),
];

/// A random well-typed graph over dev-h64's weights: a random mix of every op, with random
/// positive scales in random places.
fn random_graph(rng: &mut ChaCha8Rng, tokens: usize) -> Graph {
    let mut graph = Graph::new();
    let ids = graph.push(Op::Tokens {}, Type::Ids { len: tokens });
    let embed = graph.push(
        Op::Embed {
            ids,
            table: "model.embed_tokens.weight".into(),
        },
        Type::tensor(tokens, 64),
    );
    let mut values: Vec<(Handle<Node>, usize)> = vec![(embed, 64)];
    // Powers of two make products of scales hit exactly 1 now and then (`scale-by-one`).
    let positive = |rng: &mut ChaCha8Rng| {
        const FACTORS: [f64; 9] = [0.125, 0.25, 0.5, 2.0, 4.0, 8.0, 0.3, 1.7, 6.1];
        Real(FACTORS[rng.random_range(0..FACTORS.len())])
    };
    let steps = rng.random_range(6..24);
    for _ in 0..steps {
        let (x, width) = values[rng.random_range(0..values.len())];
        let same_width: Vec<Handle<Node>> = values
            .iter()
            .filter(|(_, w)| *w == width)
            .map(|(h, _)| *h)
            .collect();
        let other = same_width[rng.random_range(0..same_width.len())];
        let (op, out) = match rng.random_range(0..10) {
            0 => (
                Op::Scale {
                    x,
                    factor: positive(rng),
                },
                width,
            ),
            1 => match GAINS.iter().find(|(_, w)| *w == width) {
                Some((gain, _)) => (
                    Op::RmsNorm {
                        x,
                        gain: (*gain).into(),
                        gain_scale: positive(rng),
                        eps: Real(1e-5 * positive(rng).0),
                    },
                    width,
                ),
                None => (Op::Relu2 { x }, width),
            },
            2 | 3 => {
                let choices: Vec<_> = WEIGHTS.iter().filter(|(_, i, _)| *i == width).collect();
                if choices.is_empty() {
                    (
                        Op::Scale {
                            x,
                            factor: positive(rng),
                        },
                        width,
                    )
                } else {
                    let (weight, _, out) = choices[rng.random_range(0..choices.len())];
                    let scale = if rng.random_range(0..3) == 0 {
                        Real(1.0)
                    } else {
                        positive(rng)
                    };
                    (
                        Op::TernaryLinear {
                            x,
                            weight: (*weight).into(),
                            scale,
                        },
                        *out,
                    )
                }
            }
            4 if width == 64 || width == 32 => (
                Op::Rope {
                    x,
                    heads: width / 16,
                    head_dim: 16,
                    theta: Real(10000.0),
                },
                width,
            ),
            5 if width == 64 => {
                let kv: Vec<Handle<Node>> = values
                    .iter()
                    .filter(|(_, w)| *w == 32)
                    .map(|(h, _)| *h)
                    .collect();
                if kv.is_empty() {
                    (Op::Relu2 { x }, width)
                } else {
                    let k = kv[rng.random_range(0..kv.len())];
                    let v = kv[rng.random_range(0..kv.len())];
                    let kind = if rng.random_range(0..2) == 0 {
                        AttentionKind::Sigmoid
                    } else {
                        AttentionKind::Softmax
                    };
                    (
                        Op::Attention {
                            q: x,
                            k,
                            v,
                            heads: 4,
                            kv_heads: 2,
                            head_dim: 16,
                            kind,
                            causal: rng.random_range(0..4) != 0,
                            score_scale: positive(rng),
                        },
                        64,
                    )
                }
            }
            6 if width == 64 && rng.random_range(0..3) == 0 => (
                Op::LmHead {
                    x,
                    weight: "model.embed_tokens.weight".into(),
                    tied: true,
                },
                128,
            ),
            6 => (Op::Relu2 { x }, width),
            7 => (
                Op::Silu {
                    x,
                    input_scale: positive(rng),
                },
                width,
            ),
            8 => (Op::Mul { lhs: x, rhs: other }, width),
            _ => (Op::Add { lhs: x, rhs: other }, width),
        };
        let handle = graph.push(op, Type::tensor(tokens, out));
        values.push((handle, out));
    }
    let last = values.len() - 1;
    graph.add_output("last", values[last].0);
    graph.add_output("any", values[rng.random_range(0..last)].0);
    graph
}

#[test]
fn the_forward_pass_is_unchanged_on_random_graphs() {
    let checkpoint = checkpoint("dev-h64");
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let mut fired = std::collections::BTreeSet::new();
    for case in 0..200 {
        let graph = random_graph(&mut rng, 5);
        let info = ir::verify(&graph).unwrap_or_else(|e| panic!("case {case}: {e}\n{graph}"));
        let (rewritten, report) = rewrite::optimize(&graph, &RewriteOptions::default())
            .unwrap_or_else(|e| panic!("case {case}: {e}\n{graph}"));
        assert_eq!(
            report.stop_reason,
            StopReason::Saturated,
            "case {case}\n{graph}"
        );
        assert!(
            report.cost_after <= report.cost_before,
            "case {case}: {report:?}\n{graph}\n=>\n{rewritten}"
        );
        fired.extend(
            report
                .rules
                .iter()
                .filter(|r| r.applied > 0)
                .map(|r| r.rule.clone()),
        );
        let rewritten_info = ir::verify(&rewritten).expect("verifies");
        let tokens = random_tokens(&mut rng, 5, 128);
        let before = forward::run(&graph, &info, &checkpoint, &tokens).expect("runs");
        let after = forward::run(&rewritten, &rewritten_info, &checkpoint, &tokens).expect("runs");
        let difference = relative_difference(&after, &before);
        assert!(
            difference <= 1e-12,
            "case {case}: {difference:e}\n{graph}\n=>\n{rewritten}"
        );
    }
    // The random graphs exercise every rule.
    let missing: Vec<String> = rewrite::rules()
        .into_iter()
        .map(|(_, rule)| rule)
        .filter(|rule| !fired.contains(rule))
        .collect();
    assert!(missing.is_empty(), "rules never fired: {missing:?}");
}

/// Two outputs share a scaled projection: extraction must not give each its own scaling.
#[test]
fn a_shared_value_is_scaled_once() {
    let graph = ir::parse(
        "%0: ids[5] = tokens
         %1: [5, 64] = embed %0, table=\"model.embed_tokens.weight\"
         %2: [5, 32] = ternary_linear %1, weight=\"model.layers.0.self_attn.v_proj.weight\", scale=0.3
         %3: [5, 32] = rope %2, heads=2, head_dim=16, theta=10000.0
         output last = %3
         output any = %2",
    )
    .expect("parses");
    let (rewritten, report) =
        rewrite::optimize(&graph, &RewriteOptions::default()).expect("rewrites");
    assert_eq!(report.cost_after.scalings, 1, "{rewritten}");
    assert_eq!(report.cost_after, report.cost_before);
    assert_eq!(scale_count(&rewritten), 1, "{rewritten}");
}

#[test]
fn an_invalid_graph_is_refused_and_the_report_serializes() {
    let graph = ir::parse(
        "%0: ids[2] = tokens
         %1: [2, 8] = embed %0, table=\"e\"
         %2: [2, 8] = scale %1, factor=-1.0
         output hidden = %2",
    )
    .expect("parses");
    let error = rewrite::optimize(&graph, &RewriteOptions::default()).expect_err("invalid");
    assert_eq!(
        error.to_string(),
        "the input graph is invalid: %2 (scale): attribute `factor` must be positive and finite, found -1.0"
    );

    let graph = frontend::build(&checkpoint("dev-h32"), &Options::encrypted(4)).expect("graph");
    let (_, report) = rewrite::optimize(&graph, &RewriteOptions::default()).expect("rewrites");
    let json = serde_json::to_value(&report).expect("serializes");
    assert_eq!(
        json["stop_reason"],
        serde_json::json!({"reason": "saturated"})
    );
    assert_eq!(json["cost_after"]["scalings"], 0);
    assert_eq!(json["rules"][0]["family"], "weight-scale");
    assert_eq!(
        json["rules"].as_array().map(Vec::len),
        Some(rewrite::rules().len())
    );
}

/// A limit that stops the run is recorded, and the graph is still rewritten soundly: after
/// two iterations the scales are gone only by giving q, k and v norms of their own (each
/// absorbs one weight scale); saturation finds the form that shares one norm.
#[test]
fn an_iteration_limit_is_the_recorded_stop_reason() {
    let checkpoint = checkpoint("dev-h64");
    let graph = frontend::build(&checkpoint, &Options::encrypted(4)).expect("graph");
    let options = RewriteOptions {
        iteration_limit: 2,
        ..RewriteOptions::default()
    };
    let (rewritten, report) = rewrite::optimize(&graph, &options).expect("rewrites");
    assert_eq!(report.stop_reason, StopReason::IterationLimit { limit: 2 });
    assert_eq!(report.stop_reason.to_string(), "iteration limit (2)");
    let (_, saturated) = rewrite::optimize(&graph, &RewriteOptions::default()).expect("rewrites");
    assert!(report.cost_after < report.cost_before, "{report:?}");
    assert!(report.cost_after > saturated.cost_after, "{report:?}");
    assert!(
        report.cost_after.kernels > saturated.cost_after.kernels,
        "{report:?}"
    );
    let info = ir::verify(&graph).expect("verifies");
    let rewritten_info = ir::verify(&rewritten).expect("verifies");
    let tokens = [5, 6, 7, 8];
    let before = forward::run(&graph, &info, &checkpoint, &tokens).expect("runs");
    let after = forward::run(&rewritten, &rewritten_info, &checkpoint, &tokens).expect("runs");
    assert!(relative_difference(&after, &before) <= 1e-12);
}
