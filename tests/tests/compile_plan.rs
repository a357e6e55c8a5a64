//! Compile every fixture on an insecure test ring, run the plan in the plaintext executor, and compare with transformers' `hidden.sigmoid.noaq` within the error the report predicts.

use anyhow::{Context, ensure};
use ensi_checkpoint::Checkpoint;
use ensi_compiler::lower::Encoding;
use ensi_compiler::lower::encoding::EncodingPolicy;
use ensi_compiler::{CompileOptions, compile};
use ensi_runtime::exec::{self, BoundWeights};
use ensi_runtime::plan;
use ensi_tests::{Deviation, Reference, fixtures_dir};

fn run(fixture: &str, encoding: EncodingPolicy) -> anyhow::Result<()> {
    let checkpoint = Checkpoint::open(fixtures_dir().join(fixture))?;
    let reference = Reference::load(fixture)?;
    let tokens = reference.input_ids().to_vec();
    let mut options = CompileOptions::insecure_test(tokens.len());
    options.approx.extra_inputs = vec![tokens.clone()];
    options.encoding = encoding;
    let compiled = compile(&checkpoint, fixture, &options)?;
    let plan = &compiled.plan;
    let info = plan::check::check(plan)?;
    let weights = BoundWeights::bind(plan, &checkpoint)?;
    let embedded = exec::embed_tokens(checkpoint.embedding(), &tokens)?;
    let input = exec::encode_input(&plan.inputs[0], &embedded)?;
    let run = exec::run(plan, &info, &weights, &[input])?;
    let hidden = run.output("hidden").context("no hidden")?;
    let expected = reference.tensor("hidden.sigmoid.noaq")?;
    let deviation = Deviation::between(hidden.values(), &expected.values)?;
    eprintln!(
        "{fixture} {encoding:?}: {} instrs, error {:.3e}, predicted {:.3e}",
        plan.instrs.len(),
        deviation.relative(),
        compiled.report.summary.predicted_error
    );
    eprintln!("{}", run.diagnostics);
    ensure!(deviation.relative() < 1e-3);
    Ok(())
}

#[test]
fn smoke() -> anyhow::Result<()> {
    run("dev-h32", EncodingPolicy::Fixed(Encoding::Dense))?;
    run("dev-h32", EncodingPolicy::Fixed(Encoding::Columns))?;
    Ok(())
}
