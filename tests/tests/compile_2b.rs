//! `ensi compile` on a synthetic checkpoint with the tensor shapes of bitnet-b1.58-2B-4T at T = 128 (hidden 2560, FFN 6912, 30 layers, 20/5 heads), secure parameters, under the `rmsnorm` and `optimal` policies: compile time (budget 2 minutes each), 128-bit parameters, bootstrap count and placement, and both reports' summaries.
//!
//! Ignored by default: it writes a 1.18 GB synthetic checkpoint. Run it with
//! `cargo test -p ensi-tests --release --test compile_2b -- --ignored --nocapture`.
//! As `ensi compile` it is `ensi compile DIR --tokens 128 --policy P --calibration-sequences 1
//! --tolerances ...`: the end-to-end prediction runs the forward about ten times, too slow
//! for this size, so approximations are fitted at the per-class tolerances a measured
//! selection finds on dev-h128 (same architecture).

use std::time::{Duration, Instant};

use anyhow::ensure;
use ensi_checkpoint::Checkpoint;
use ensi_checkpoint::synth::SynthSpec;
use ensi_compiler::approx::{self, ApproxOptions};
use ensi_compiler::calibrate::{self, CalibrationOptions, Inputs};
use ensi_compiler::frontend::{self, Options};
use ensi_compiler::report::Format;
use ensi_compiler::{CompileOptions, PlacementPolicy, compile, ir, rewrite};
use ensi_runtime::ckks::scheme::Security;
use ensi_tests::{FIXTURES, fixtures_dir};

/// The tolerances a measured selection finds on the largest fixture.
fn measured_tolerances()
-> anyhow::Result<std::collections::BTreeMap<ensi_compiler::forward::Function, f64>> {
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
    Ok(prediction.tolerances)
}

#[test]
#[ignore = "writes a 1.18 GB checkpoint; run with --release -- --ignored --nocapture"]
fn the_2b_shapes_compile_in_two_minutes_with_both_policies() -> anyhow::Result<()> {
    let tolerances = measured_tolerances()?;
    let dir = tempfile::tempdir()?;
    SynthSpec::bitnet_2b_4t().write(dir.path())?;
    let checkpoint = Checkpoint::open(dir.path())?;
    let mut costs = Vec::new();
    for policy in [PlacementPolicy::RmsNorm, PlacementPolicy::Optimal] {
        let mut options = CompileOptions::new(128);
        options.policy = policy;
        options.calibration.inputs = Inputs::Random {
            sequences: 1,
            seed: 0,
        };
        options.tolerances = Some(tolerances.clone());
        let started = Instant::now();
        let compiled = compile(&checkpoint, "bitnet-2b-4t-synthetic", &options)?;
        let elapsed = started.elapsed();
        let text = compiled.report.render(&compiled.plan, Format::Text);
        let summary: Vec<&str> = text.lines().take_while(|l| !l.trim().is_empty()).collect();
        let placement = compiled
            .plan
            .provenance
            .iter()
            .find(|(k, _)| k == "placement.cost_ns")
            .map(|(_, v)| v.parse::<u64>())
            .transpose()?
            .unwrap_or(u64::MAX);
        eprintln!(
            "--- {} ({elapsed:.2?}) ---\n{}",
            policy.name(),
            summary.join("\n")
        );
        let boots: Vec<&String> = compiled
            .plan
            .provenance
            .iter()
            .filter(|(k, _)| k.starts_with("bootstrap.reason."))
            .map(|(_, v)| v)
            .take(8)
            .collect();
        for b in boots {
            eprintln!("  bootstrap: {b}");
        }
        ensure!(
            elapsed < Duration::from_secs(120),
            "{}: {elapsed:?}",
            policy.name()
        );
        ensure!(compiled.plan.params.security == Security::Bits128);
        costs.push(placement);
    }
    ensure!(
        costs[1] <= costs[0],
        "optimal {} ns > rmsnorm {} ns",
        costs[1],
        costs[0]
    );
    Ok(())
}
