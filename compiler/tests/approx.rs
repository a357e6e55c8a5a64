//! Approximation selection on the fixtures: targets met (sigmoid and the softmax baseline), determinism, serialization, and the messages of the errors users see.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "test helpers: a panic is a failed test"
)]

use std::path::PathBuf;

use ensi_checkpoint::Checkpoint;
use ensi_compiler::approx::{self, ApproxOptions, Form};
use ensi_compiler::calibrate::{self, Calibration, CalibrationOptions, Site};
use ensi_compiler::forward::{self, Function};
use ensi_compiler::frontend::{self, Options};
use ensi_compiler::ir::{self, AttentionKind, Graph, GraphInfo};
use ensi_compiler::rewrite;

fn checkpoint(name: &str) -> Checkpoint {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures")
        .join(name);
    Checkpoint::open(dir).expect("fixture opens")
}

/// The compiler's pipeline up to calibration: build, rewrite, verify, calibrate (defaults).
fn calibrated(checkpoint: &Checkpoint, options: &Options) -> (Graph, GraphInfo, Calibration) {
    let graph = frontend::build(checkpoint, options).expect("graph");
    let (graph, _) = rewrite::optimize(&graph, &Default::default()).expect("rewrites");
    let info = ir::verify(&graph).expect("verifies");
    let calibration = calibrate::run(&graph, &info, checkpoint, &CalibrationOptions::default())
        .expect("calibrates");
    (graph, info, calibration)
}

fn relative_error(a: &forward::Matrix, b: &forward::Matrix) -> f64 {
    let error = a
        .data()
        .iter()
        .zip(b.data())
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max);
    error / b.data().iter().map(|y| y.abs()).fold(0.0, f64::max)
}

#[test]
fn the_softmax_baseline_meets_the_default_target() {
    let checkpoint = checkpoint("dev-h32");
    let options = Options {
        attention: AttentionKind::Softmax,
        ..Options::encrypted(4)
    };
    let (graph, info, calibration) = calibrated(&checkpoint, &options);
    let (table, prediction) = approx::select(
        &graph,
        &info,
        &checkpoint,
        &calibration,
        &ApproxOptions::default(),
    )
    .expect("selects");
    assert!(prediction.predicted <= prediction.target && prediction.target == 2f64.powi(-12));
    let exp = table
        .iter()
        .find(|a| a.site.function == Function::Exp)
        .expect("an exp site");
    let inverse = table
        .iter()
        .find(|a| a.site.function == Function::Inverse)
        .expect("an inverse site");
    assert_eq!(exp.site.node, inverse.site.node);
    assert_eq!(Some(exp.shift), calibration.softmax_shift(exp.site.node));
    assert_eq!(
        exp.shift, exp.interval.hi,
        "e^(s − c) is at most 1 on the interval"
    );
    assert!(matches!(inverse.form, Form::InverseNewton { .. }));
    assert!(
        inverse.interval.hi <= 4.0 * (1.0 + calibration.margin),
        "row sums of at most T = 4 terms ≤ 1"
    );
    // The prediction is what the approximate forward does on the calibration sequences.
    for tokens in calibration.sequences() {
        let exact = forward::run(&graph, &info, &checkpoint, tokens).expect("runs");
        let approximate =
            approx::forward(&graph, &info, &checkpoint, tokens, &table).expect("runs");
        let error = relative_error(
            approximate.get("hidden").unwrap(),
            exact.get("hidden").unwrap(),
        );
        assert!(
            error <= prediction.calibration,
            "{error:e} > {:e}",
            prediction.calibration
        );
    }
}

#[test]
fn selection_is_deterministic_and_serializes() {
    let checkpoint = checkpoint("dev-h32");
    let (graph, info, calibration) = calibrated(&checkpoint, &Options::encrypted(4));
    let options = ApproxOptions::default();
    let first =
        approx::select(&graph, &info, &checkpoint, &calibration, &options).expect("selects");
    let again =
        approx::select(&graph, &info, &checkpoint, &calibration, &options).expect("selects");
    assert_eq!(first, again);
    let (table, prediction) = first;
    for approximation in table.iter() {
        // The calibration data lie inside the calibrated intervals.
        let measured = approximation.calibration_error.expect("measured");
        assert!(
            measured <= approximation.max_error,
            "{}: {measured} > {}",
            approximation.site,
            approximation.max_error
        );
        assert!(approximation.depth >= 1 && approximation.degree >= 1);
        assert_eq!(approximation.series.a(), approximation.interval.lo);
        assert_eq!(approximation.series.b(), approximation.interval.hi);
    }
    // Fitting at the tolerances the measured run settled on gives the same approximations,
    // without a forward pass (and so without calibration errors).
    let refit =
        approx::fit_at(&graph, &calibration, &prediction.tolerances, &options).expect("fits");
    assert_eq!(refit.len(), table.len());
    for (measured, unmeasured) in table.iter().zip(refit.iter()) {
        assert_eq!(
            (measured.site, measured.form, measured.degree),
            (unmeasured.site, unmeasured.form, unmeasured.degree)
        );
        assert_eq!(measured.series, unmeasured.series);
        assert_eq!(unmeasured.calibration_error, None);
    }
    let json = serde_json::to_value(&table).expect("serializes");
    let first_entry = &json["entries"][0];
    assert_eq!(
        first_entry["site"],
        serde_json::json!({"node": "%2", "function": "inv_sqrt"})
    );
    assert_eq!(
        first_entry["series"].as_array().map(Vec::len),
        Some(table.iter().next().unwrap().degree + 1)
    );
    let json = serde_json::to_value(&prediction).expect("serializes");
    assert!(json["contributions"]["relu2"].is_number(), "{json}");
    assert_eq!(json["output"], "hidden");
}

#[test]
fn an_unreachable_target_names_the_function_interval_and_best_error() {
    let checkpoint = checkpoint("dev-h32");
    let (graph, info, calibration) = calibrated(&checkpoint, &Options::encrypted(4));
    let options = ApproxOptions {
        precision_bits: 40,
        max_poly_depth: 6,
        ..ApproxOptions::default()
    };
    let error =
        approx::select(&graph, &info, &checkpoint, &calibration, &options).expect_err("40 bits");
    let relu2 = calibration
        .sites()
        .find(|(site, _)| site.function == Function::Relu2)
        .expect("a relu2 site");
    assert_eq!(
        error.to_string(),
        format!(
            "cannot meet the precision target of 40 bits (9.09e-13 relative error of `hidden`): \
             relu2 at %14 on {} needs error 9.09e-13, \
             the best within degree 63 and 4 Newton steps is 3.58e-5 (polynomial, degree 63, depth 6)",
            relu2.1.interval
        )
    );
}

#[test]
fn bad_requests_are_named() {
    let checkpoint = checkpoint("dev-h32");
    let (graph, info, calibration) = calibrated(&checkpoint, &Options::encrypted(4));
    let select =
        |graph: &Graph, info: &GraphInfo, calibration: &Calibration, options: &ApproxOptions| {
            approx::select(graph, info, &checkpoint, calibration, options)
                .expect_err("fails")
                .to_string()
        };
    let defaults = ApproxOptions::default();
    assert_eq!(
        select(
            &graph,
            &info,
            &calibration,
            &ApproxOptions {
                precision_bits: 0,
                ..defaults.clone()
            }
        ),
        "precision_bits must be in 1..=52, found 0"
    );
    assert_eq!(
        select(
            &graph,
            &info,
            &calibration,
            &ApproxOptions {
                output: "logit".to_owned(),
                ..defaults.clone()
            }
        ),
        "the graph has no output `logit`"
    );

    assert_eq!(
        select(
            &graph,
            &info,
            &calibration,
            &ApproxOptions {
                max_poly_depth: 13,
                ..defaults.clone()
            }
        ),
        "max_poly_depth must be in 1..=12, found 13"
    );
    assert_eq!(
        select(
            &graph,
            &info,
            &calibration,
            &ApproxOptions {
                prediction_sequences: Some(0),
                ..defaults.clone()
            }
        ),
        "the error prediction needs at least one input (no calibration sequence is used and \
         there are no extra inputs); approx::fit_at fits without a prediction"
    );

    let stock = frontend::build(&checkpoint, &Options::stock(4)).expect("graph");
    let stock_info = ir::verify(&stock).expect("verifies");
    assert_eq!(
        select(&stock, &stock_info, &calibration, &defaults),
        "%3 (act_quant) cannot be evaluated under encryption"
    );

    let softmax = Options {
        attention: AttentionKind::Softmax,
        ..Options::encrypted(4)
    };
    let (softmax, softmax_info, _) = calibrated(&checkpoint, &softmax);
    assert_eq!(
        select(&softmax, &softmax_info, &calibration, &defaults),
        "exp at %8 was not calibrated (calibrate the graph that is approximated)"
    );

    let (table, _) =
        approx::select(&graph, &info, &checkpoint, &calibration, &defaults).expect("selects");
    let tight = [(Function::Relu2, 1e-9)].into_iter().collect();
    let shallow = ApproxOptions {
        max_poly_depth: 4,
        max_newton_steps: 1,
        ..defaults.clone()
    };
    let error = approx::fit_at(&graph, &calibration, &tight, &shallow).expect_err("too tight");
    let relu2 = table
        .iter()
        .find(|a| a.site.function == Function::Relu2)
        .expect("relu2");
    assert_eq!(
        error.to_string(),
        format!(
            "cannot meet the precision target of 12 bits (2.44e-4 relative error of `hidden`): \
             relu2 at %14 on {} needs error 1.00e-9, \
             the best within degree 15 and 1 Newton steps is 6.28e-4 (polynomial, degree 15, depth 4)",
            relu2.interval
        )
    );
    let tokens = &calibration.sequences()[0];
    let error = approx::forward(&softmax, &softmax_info, &checkpoint, tokens, &table)
        .expect_err("mismatch");
    assert_eq!(
        error.to_string(),
        "exp at %8 was not calibrated (calibrate the graph that is approximated)"
    );
    let sigmoid = table
        .iter()
        .find(|a| a.site.function == Function::Sigmoid)
        .expect("sigmoid");
    assert_eq!(sigmoid.site.node.index(), 8);
    assert!(
        table
            .get(Site {
                node: sigmoid.site.node,
                function: Function::Exp
            })
            .is_none()
    );
}
