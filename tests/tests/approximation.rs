//! Issue 5 before encryption: rewrite -> calibrate -> approximate on every fixture; the approximate forward reproduces transformers' `hidden.sigmoid.noaq` within the predicted error, and the prediction meets the default target (≤ 1e-3 · max|reference| with headroom).
//!
//! The prediction covers the calibration sequences (16 random ones) and the fixture's own
//! tokens; the reference itself is float32, so the comparison allows the exact forward's own
//! distance to it on top (measured, about 1e-6). `cargo test -p ensi-tests --test
//! approximation -- --nocapture` prints the table per fixture.

use anyhow::{Context, ensure};
use ensi_checkpoint::Checkpoint;
use ensi_compiler::approx::{self, ApproxOptions};
use ensi_compiler::calibrate::{self, CalibrationOptions};
use ensi_compiler::forward;
use ensi_compiler::frontend::{self, Options};
use ensi_compiler::ir::{self, Op};
use ensi_compiler::rewrite;
use ensi_tests::{Deviation, FIXTURES, Reference, argmax_rows, fixtures_dir};

/// Runs the pipeline on one fixture and checks it; returns the report lines.
fn check(fixture: &str) -> anyhow::Result<Vec<String>> {
    let checkpoint = Checkpoint::open(fixtures_dir().join(fixture))?;
    let reference = Reference::load(fixture)?;
    let tokens = reference.input_ids().to_vec();

    let graph = frontend::build(&checkpoint, &Options::encrypted(tokens.len()))?;
    let (graph, rewrites) = rewrite::optimize(&graph, &Default::default())?;
    let info = ir::verify(&graph)?;
    let calibration = calibrate::run(&graph, &info, &checkpoint, &CalibrationOptions::default())?;
    let options = ApproxOptions {
        extra_inputs: vec![tokens.clone()],
        ..ApproxOptions::default()
    };
    let (table, prediction) = approx::select(&graph, &info, &checkpoint, &calibration, &options)?;

    ensure!(
        rewrites.cost_after.scalings == 0,
        "{fixture}: a standalone scale is left"
    );
    let scales = graph
        .nodes()
        .iter()
        .filter(|(_, node)| matches!(node.op, Op::Scale { .. }))
        .count();
    ensure!(scales == 0, "{fixture}: {scales} scale nodes");
    ensure!(
        prediction.predicted <= prediction.target && prediction.target <= 1e-3 / 4.0,
        "{fixture}: predicted {:e}, target {:e}",
        prediction.predicted,
        prediction.target
    );

    let approximate = approx::forward(&graph, &info, &checkpoint, &tokens, &table)?;
    let exact = forward::run(&graph, &info, &checkpoint, &tokens)?;
    let expected = reference.tensor("hidden.sigmoid.noaq")?;
    let hidden = approximate.get("hidden").context("no hidden")?;
    let actual = Deviation::between(hidden.data(), &expected.values)?;
    let float32 = Deviation::between(
        exact.get("hidden").context("no hidden")?.data(),
        &expected.values,
    )?;
    ensure!(
        actual.relative() <= prediction.predicted + float32.relative(),
        "{fixture}: actual {:e} > predicted {:e} + reference rounding {:e}",
        actual.relative(),
        prediction.predicted,
        float32.relative()
    );
    let logits = approximate.get("logits").context("no logits")?;
    let reference_logits = reference.tensor("logits.sigmoid.noaq")?;
    ensure!(
        argmax_rows(logits.data(), logits.cols())
            == argmax_rows(&reference_logits.values, logits.cols()),
        "{fixture}: top-1 tokens differ"
    );

    let mut lines = vec![format!(
        "{fixture}: predicted {:.3e} (calibration {:.3e} on {} sequences, own tokens {:.3e}), actual vs reference {:.3e}, exact vs reference {:.3e}; target {:.3e}, {} rounds, max depth {}",
        prediction.predicted,
        prediction.calibration,
        prediction.calibration_sequences,
        prediction.extra[0],
        actual.relative(),
        float32.relative(),
        prediction.target,
        prediction.rounds,
        prediction.max_depth
    )];
    for (function, contribution) in &prediction.contributions {
        lines.push(format!(
            "    {function:<8} contributes {contribution:.2e} alone (site tolerance {:.2e})",
            prediction.tolerances[function]
        ));
    }
    for a in table.iter() {
        lines.push(format!(
            "    {:<17} {:<22} on {}  degree {:>3}  depth {:>2}  max error {:.2e}  on calibration data {:.2e}{}",
            a.site.to_string(),
            a.form.to_string(),
            a.interval,
            a.degree,
            a.depth,
            a.max_error,
            a.calibration_error.unwrap_or(f64::NAN),
            a.alternative.map_or(String::new(), |alt| format!(
                "  ({} degree {} at depth {}: {:.2e})",
                alt.form, alt.degree, alt.depth, alt.max_error
            ))
        ));
    }
    Ok(lines)
}

#[test]
fn the_approximate_forward_reproduces_sigmoid_attention_within_the_prediction() -> anyhow::Result<()>
{
    let mut report = Vec::new();
    for fixture in FIXTURES {
        report.extend(check(fixture)?);
    }
    eprintln!("{}", report.join("\n"));
    Ok(())
}
