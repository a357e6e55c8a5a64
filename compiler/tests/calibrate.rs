//! Calibration: ranges recomputed independently from every node's value, the stated margins, determinism, token files and error messages.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "test helpers: a panic is a failed test"
)]

use std::collections::BTreeMap;
use std::path::PathBuf;

use ensi_checkpoint::Checkpoint;
use ensi_compiler::calibrate::{
    self, CalibrateError, Calibration, CalibrationOptions, Inputs, Interval, Site,
};
use ensi_compiler::forward::{self, Function, Matrix};
use ensi_compiler::frontend::{self, Options};
use ensi_compiler::ir::{self, AttentionKind, Graph, GraphInfo, Handle, Node, Op};
use ensi_compiler::rewrite;

fn checkpoint(name: &str) -> Checkpoint {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures")
        .join(name);
    Checkpoint::open(dir).expect("fixture opens")
}

/// The rewritten graph of a fixture (what the compiler calibrates).
fn graph(checkpoint: &Checkpoint, attention: AttentionKind, tokens: usize) -> (Graph, GraphInfo) {
    let options = Options {
        attention,
        ..Options::encrypted(tokens)
    };
    let graph = frontend::build(checkpoint, &options).expect("graph");
    let (graph, _) = rewrite::optimize(&graph, &Default::default()).expect("rewrites");
    let info = ir::verify(&graph).expect("verifies");
    (graph, info)
}

fn options(sequences: usize, seed: u64) -> CalibrationOptions {
    CalibrationOptions {
        inputs: Inputs::Random { sequences, seed },
        margin: 0.25,
    }
}

/// Smallest and largest argument per node and function.
type Extremes = BTreeMap<(Handle<Node>, Function), (f64, f64)>;

/// Extremes of the arguments of every site, recomputed from the values of every node.
fn recomputed(
    graph: &Graph,
    info: &GraphInfo,
    checkpoint: &Checkpoint,
    sequences: &[Vec<u32>],
) -> (Extremes, Vec<f64>) {
    let mut extremes: Extremes = BTreeMap::new();
    let mut magnitudes = vec![0.0f64; graph.nodes().len()];
    let mut note = |node, function, x: f64| {
        let entry = extremes
            .entry((node, function))
            .or_insert((f64::INFINITY, f64::NEG_INFINITY));
        *entry = (entry.0.min(x), entry.1.max(x));
    };
    for tokens in sequences {
        let mut values: BTreeMap<Handle<Node>, Matrix> = BTreeMap::new();
        forward::run_observed(graph, info, checkpoint, tokens, |node, value| {
            values.insert(node, value.clone());
        })
        .expect("runs");
        for (node, entry) in graph.nodes().iter() {
            // The lm head runs on the client: calibration leaves it out.
            if let Some(value) = values.get(&node)
                && !matches!(entry.op, Op::LmHead { .. })
            {
                let largest = value.data().iter().fold(0.0f64, |m, v| m.max(v.abs()));
                magnitudes[node.index()] = magnitudes[node.index()].max(largest);
            }
            match &entry.op {
                Op::Relu2 { x } => values[x]
                    .data()
                    .iter()
                    .for_each(|&v| note(node, Function::Relu2, v)),
                Op::RmsNorm { x, eps, .. } => {
                    let x = &values[x];
                    for row in 0..x.rows() {
                        let mean = x.row(row).iter().map(|v| v * v).sum::<f64>() / x.cols() as f64;
                        note(node, Function::InvSqrt, mean + eps.0);
                    }
                }
                Op::Attention {
                    q,
                    k,
                    heads,
                    kv_heads,
                    head_dim,
                    score_scale,
                    kind,
                    ..
                } => {
                    let (q, k) = (&values[q], &values[k]);
                    let tokens = q.rows();
                    for head in 0..*heads {
                        let kv = head / (heads / kv_heads);
                        for i in 0..tokens {
                            let mut row = Vec::new();
                            for j in 0..=i {
                                let dot: f64 = (0..*head_dim)
                                    .map(|d| {
                                        q.row(i)[head * head_dim + d] * k.row(j)[kv * head_dim + d]
                                    })
                                    .sum();
                                row.push(dot * score_scale.0 / (*head_dim as f64).sqrt());
                            }
                            match kind {
                                AttentionKind::Sigmoid => row.iter().for_each(|s| {
                                    note(node, Function::Sigmoid, s - (tokens as f64).ln())
                                }),
                                AttentionKind::Softmax => {
                                    row.iter().for_each(|&s| note(node, Function::Exp, s));
                                    let log_sum = row.iter().map(|s| s.exp()).sum::<f64>().ln();
                                    note(node, Function::Inverse, log_sum);
                                }
                            }
                        }
                    }
                }
                _ => {}
            }
        }
    }
    (extremes, magnitudes)
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-12 * a.abs().max(b.abs()).max(1e-300)
}

fn check_against_recomputation(
    calibration: &Calibration,
    graph: &Graph,
    info: &GraphInfo,
    checkpoint: &Checkpoint,
) {
    let (extremes, magnitudes) = recomputed(graph, info, checkpoint, calibration.sequences());
    let tokens = calibration.tokens as f64;
    for (&(node, function), &(lo, hi)) in &extremes {
        let range = calibration
            .range(Site { node, function })
            .expect("every site is calibrated");
        let (lo, hi) = if function == Function::Inverse {
            // The recomputation holds ln Σ e^s; the calibration holds Σ e^(s − c).
            let shift = calibration.softmax_shift(node).expect("a shift");
            ((lo - shift).exp(), (hi - shift).exp())
        } else {
            (lo, hi)
        };
        assert!(
            close(range.observed.lo, lo) && close(range.observed.hi, hi),
            "{function} at {node}: {:?} vs [{lo}, {hi}]",
            range.observed
        );
        let margin = calibration.margin;
        let expected = match function {
            Function::Relu2 | Function::Silu => {
                Interval::new(lo.min(0.0), hi.max(0.0)).widened(margin)
            }
            Function::Sigmoid => {
                Interval::new(lo.min(-tokens.ln()), hi.max(-tokens.ln())).widened(margin)
            }
            Function::Exp => Interval::new(lo, hi).widened(margin),
            Function::InvSqrt | Function::Inverse => {
                Interval::new(lo / (1.0 + margin), hi * (1.0 + margin))
            }
        };
        assert!(
            close(range.interval.lo, expected.lo) && close(range.interval.hi, expected.hi),
            "{function} at {node}"
        );
        if function == Function::Exp {
            assert_eq!(calibration.softmax_shift(node), Some(range.interval.hi));
        }
    }
    let sites = calibration.sites().count();
    assert_eq!(sites, extremes.len(), "no site more, none less");
    for (node, _) in graph.nodes().iter() {
        assert!(
            close(calibration.magnitude(node), magnitudes[node.index()]),
            "{node}"
        );
    }
}

#[test]
fn ranges_are_the_arguments_of_every_nonlinearity() {
    let checkpoint = checkpoint("dev-h64");
    for attention in [AttentionKind::Sigmoid, AttentionKind::Softmax] {
        let (graph, info) = graph(&checkpoint, attention, 6);
        let calibration =
            calibrate::run(&graph, &info, &checkpoint, &options(3, 9)).expect("calibrates");
        check_against_recomputation(&calibration, &graph, &info, &checkpoint);
        // 2 layers: 4 norms each plus the final one, one attention each (two sites for
        // softmax), one relu2 each.
        let expected =
            9 + 2 * if attention == AttentionKind::Softmax {
                2
            } else {
                1
            } + 2;
        assert_eq!(calibration.sites().count(), expected, "{attention}");
    }
}

#[test]
fn calibration_is_deterministic_and_follows_the_seed() {
    let checkpoint = checkpoint("dev-h32");
    let (graph, info) = graph(&checkpoint, AttentionKind::Sigmoid, 4);
    let first = calibrate::run(&graph, &info, &checkpoint, &options(5, 1)).expect("calibrates");
    let again = calibrate::run(&graph, &info, &checkpoint, &options(5, 1)).expect("calibrates");
    let other = calibrate::run(&graph, &info, &checkpoint, &options(5, 2)).expect("calibrates");
    assert_eq!(first, again);
    assert_ne!(first.sequences(), other.sequences());
    assert_ne!(first, other);
    assert_eq!(first.sequences().len(), 5);
    assert!(
        first
            .sequences()
            .iter()
            .flatten()
            .all(|&id| (id as usize) < checkpoint.embedding().rows())
    );
    assert_eq!(
        serde_json::to_value(&first.source).expect("serializes"),
        serde_json::json!({"kind": "random", "sequences": 5, "seed": 1})
    );
    // Supplied sequences give the same ranges as the random ones they copy.
    let supplied = CalibrationOptions {
        inputs: Inputs::Sequences(first.sequences().to_vec()),
        margin: 0.25,
    };
    let copied = calibrate::run(&graph, &info, &checkpoint, &supplied).expect("calibrates");
    assert_eq!(
        copied.sites().collect::<Vec<_>>(),
        first.sites().collect::<Vec<_>>()
    );
}

#[test]
fn the_calibration_serializes_for_the_plan() {
    let checkpoint = checkpoint("dev-h32");
    let (graph, info) = graph(&checkpoint, AttentionKind::Softmax, 4);
    let calibration =
        calibrate::run(&graph, &info, &checkpoint, &options(2, 0)).expect("calibrates");
    let json = serde_json::to_value(&calibration).expect("serializes");
    assert_eq!(json["margin"], 0.25);
    let first = &json["sites"][0];
    assert_eq!(
        first["site"],
        serde_json::json!({"node": "%2", "function": "inv_sqrt"})
    );
    assert!(first["range"]["interval"]["lo"].is_number());
    assert!(json["shifts"]["%8"].is_number(), "{}", json["shifts"]);
}

#[test]
fn token_files_hold_one_sequence_per_line() {
    let text = "# calibration tokens\n1 2 3\n\n  4 5 6  \n";
    assert_eq!(
        calibrate::parse_token_sequences(text, "tokens.txt"),
        Ok(vec![vec![1, 2, 3], vec![4, 5, 6]])
    );
    let error = calibrate::parse_token_sequences("1 2\n3 x4\n", "tokens.txt").expect_err("x4");
    assert_eq!(
        error.to_string(),
        "tokens.txt, line 2: `x4` is not a token id"
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("tokens.txt");
    std::fs::write(&path, "7 8 9 10\n").expect("writes");
    assert_eq!(
        calibrate::read_token_file(&path),
        Ok(vec![vec![7, 8, 9, 10]])
    );
    let missing = dir.path().join("missing.txt");
    let error = calibrate::read_token_file(&missing).expect_err("missing");
    assert!(
        error
            .to_string()
            .starts_with(&format!("cannot read token file {}: ", missing.display())),
        "{error}"
    );
}

#[test]
fn bad_inputs_are_named() {
    let checkpoint = checkpoint("dev-h32");
    let (graph, info) = graph(&checkpoint, AttentionKind::Sigmoid, 4);
    let run = |inputs, margin| {
        calibrate::run(
            &graph,
            &info,
            &checkpoint,
            &CalibrationOptions { inputs, margin },
        )
    };
    let cases: [(Result<Calibration, CalibrateError>, &str); 5] = [
        (
            run(
                Inputs::Random {
                    sequences: 0,
                    seed: 0,
                },
                0.1,
            ),
            "calibration needs at least one token sequence",
        ),
        (
            run(
                Inputs::Sequences(vec![vec![1, 2, 3, 4], vec![1, 2, 3]]),
                0.1,
            ),
            "calibration sequence 2 has 3 tokens, the graph takes 4",
        ),
        (
            run(Inputs::Sequences(vec![vec![1, 2, 3, 999]]), 0.1),
            "calibration sequence 1: token 999 at position 3 is not below the vocabulary size 64",
        ),
        (
            run(
                Inputs::Random {
                    sequences: 1,
                    seed: 0,
                },
                -0.5,
            ),
            "the calibration margin must be finite and non-negative, found -0.5",
        ),
        (
            run(
                Inputs::Random {
                    sequences: 1,
                    seed: 0,
                },
                f64::NAN,
            ),
            "the calibration margin must be finite and non-negative, found NaN",
        ),
    ];
    for (result, message) in cases {
        assert_eq!(result.expect_err(message).to_string(), message);
    }
}
