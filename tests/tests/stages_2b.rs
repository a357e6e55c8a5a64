//! Time of the model-level stages (rewrite, calibrate, approximation fit) on a synthetic checkpoint with the tensor shapes of bitnet-b1.58-2B-4T at T = 128.
//!
//! Ignored by default: it writes a 1.18 GB synthetic checkpoint. Run it with
//! `cargo test -p ensi-tests --release --test stages_2b -- --ignored --nocapture`.
//! The end-to-end prediction of `approx::select` runs the forward about ten times, too slow
//! for this size at compile time; the 2B table is fitted with `approx::fit_at` at the
//! per-class tolerances a measured `select` run found on dev-h128 (same architecture).

use anyhow::ensure;
use ensi_checkpoint::Checkpoint;
use ensi_checkpoint::synth::SynthSpec;
use ensi_compiler::approx::{self, ApproxOptions};
use ensi_compiler::calibrate::{self, CalibrationOptions, Inputs};
use ensi_compiler::frontend::{self, Options};
use ensi_compiler::rewrite::{self, StopReason};
use ensi_compiler::{forward, ir};
use ensi_tests::{FIXTURES, fixtures_dir};

/// The tolerances a measured selection finds on the largest fixture.
fn measured_tolerances() -> anyhow::Result<std::collections::BTreeMap<forward::Function, f64>> {
    let fixture = FIXTURES[FIXTURES.len() - 1];
    let checkpoint = Checkpoint::open(fixtures_dir().join(fixture))?;
    let graph = frontend::build(&checkpoint, &Options::encrypted(16))?;
    let (graph, _) = rewrite::optimize(&graph, &Default::default())?;
    let info = ir::verify(&graph)?;
    let calibration = calibrate::run(&graph, &info, &checkpoint, &CalibrationOptions::default())?;
    let (_, prediction) = approx::select(
        &graph,
        &info,
        &checkpoint,
        &calibration,
        &ApproxOptions::default(),
    )?;
    eprintln!("{fixture} tolerances: {:?}", prediction.tolerances);
    Ok(prediction.tolerances)
}

#[test]
#[ignore = "writes a 1.18 GB checkpoint; run with --release -- --ignored --nocapture"]
fn model_level_stages_of_the_2b_shapes() -> anyhow::Result<()> {
    let tolerances = measured_tolerances()?;
    let dir = tempfile::tempdir()?;
    SynthSpec::bitnet_2b_4t().write(dir.path())?;
    let checkpoint = Checkpoint::open(dir.path())?;
    let graph = frontend::build(&checkpoint, &Options::encrypted(128))?;

    let started = std::time::Instant::now();
    let (graph, report) = rewrite::optimize(&graph, &Default::default())?;
    let rewritten = started.elapsed();
    ensure!(report.stop_reason == StopReason::Saturated && report.cost_after.scalings == 0);
    let info = ir::verify(&graph)?;

    let started = std::time::Instant::now();
    let options = CalibrationOptions {
        inputs: Inputs::Random {
            sequences: 1,
            seed: 0,
        },
        ..CalibrationOptions::default()
    };
    let calibration = calibrate::run(&graph, &info, &checkpoint, &options)?;
    let calibrated = started.elapsed();

    let started = std::time::Instant::now();
    let table = approx::fit_at(&graph, &calibration, &tolerances, &ApproxOptions::default())?;
    let fitted = started.elapsed();
    let deepest = table.iter().map(|a| a.depth).max().unwrap_or(0);
    let mut by_function = std::collections::BTreeMap::new();
    for a in table.iter() {
        let entry =
            by_function
                .entry(a.site.function)
                .or_insert((usize::MAX, 0usize, u32::MAX, 0u32));
        *entry = (
            entry.0.min(a.degree),
            entry.1.max(a.degree),
            entry.2.min(a.depth),
            entry.3.max(a.depth),
        );
    }
    eprintln!(
        "2B-4T shapes, T = 128: rewrite {rewritten:.2?} ({} iterations, {} e-nodes, {} e-classes, \
         {} scalings -> 0); calibrate 1 sequence {calibrated:.2?}; fit {} sites {fitted:.2?}, deepest {deepest}",
        report.iterations,
        report.egraph_nodes,
        report.egraph_classes,
        report.cost_before.scalings,
        table.len(),
    );
    for (function, (low, high, shallow, deep)) in by_function {
        eprintln!("    {function:<8} degrees {low}..={high}, depths {shallow}..={deep}");
    }
    Ok(())
}
