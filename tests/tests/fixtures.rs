//! End to end against the Hugging Face fixtures: checkpoint -> IR -> verify -> f64 forward reproduces transformers.
//!
//! Tolerances (issue 2): for the `noaq` variants, max |error| ≤ 1e-4 · max |reference|; for
//! the stock model (`exact`, 8-bit activation quantization, where a rounding flip moves a
//! value by one step) the same top-1 token at every position and max |error| ≤ 1e-2 ·
//! max |reference|. `cargo test -p ensi-tests --test fixtures -- --nocapture` prints the
//! measured ratios.

use anyhow::{Context, ensure};
use ensi_checkpoint::Checkpoint;
use ensi_compiler::forward;
use ensi_compiler::frontend::{self, Options};
use ensi_compiler::ir::{self, AttentionKind};
use ensi_tests::{Deviation, FIXTURES, Reference, argmax_rows, fixtures_dir};

/// A model variant of the fixtures, with its reference suffix and tolerance.
struct Variant {
    suffix: &'static str,
    attention: AttentionKind,
    act_quant: bool,
    tolerance: f64,
}

const VARIANTS: [Variant; 3] = [
    Variant {
        suffix: "softmax.exact",
        attention: AttentionKind::Softmax,
        act_quant: true,
        tolerance: 1e-2,
    },
    Variant {
        suffix: "softmax.noaq",
        attention: AttentionKind::Softmax,
        act_quant: false,
        tolerance: 1e-4,
    },
    Variant {
        suffix: "sigmoid.noaq",
        attention: AttentionKind::Sigmoid,
        act_quant: false,
        tolerance: 1e-4,
    },
];

/// Runs one fixture in one variant and checks every reference tensor of that variant;
/// returns one line per tensor for the report.
fn check(fixture: &str, variant: &Variant) -> anyhow::Result<Vec<String>> {
    let checkpoint = Checkpoint::open(fixtures_dir().join(fixture))?;
    let reference = Reference::load(fixture)?;
    let tokens = reference.input_ids();
    let options = Options {
        tokens: tokens.len(),
        attention: variant.attention,
        act_quant: variant.act_quant,
        layer_outputs: true,
    };
    let graph = frontend::build(&checkpoint, &options)?;
    let info = ir::verify(&graph)?;
    let outputs = forward::run(&graph, &info, &checkpoint, tokens)?;

    let mut lines = Vec::new();
    let mut compared = 0;
    for name in reference
        .names()
        .filter(|name| name.ends_with(variant.suffix))
    {
        let output = name.trim_end_matches(variant.suffix).trim_end_matches('.');
        let expected = reference.tensor(name)?;
        let actual = outputs
            .get(output)
            .with_context(|| format!("no output {output}"))?;
        let deviation = Deviation::between(actual.data(), &expected.values)?;
        lines.push(format!(
            "{fixture:>15} {name:<22} max|err| {:.3e}  max|ref| {:.3e}  ratio {:.3e}",
            deviation.max_abs_error,
            deviation.max_abs_reference,
            deviation.relative()
        ));
        ensure!(
            deviation.relative() <= variant.tolerance,
            "{fixture} {name}: max|err|/max|ref| = {:.3e} exceeds {:.0e}",
            deviation.relative(),
            variant.tolerance
        );
        if name.starts_with("logits") {
            let cols = actual.cols();
            let top = argmax_rows(actual.data(), cols);
            ensure!(
                top == argmax_rows(&expected.values, cols),
                "{fixture} {name}: top-1 tokens differ"
            );
        }
        compared += 1;
    }
    // hidden, logits, and for the sigmoid variant every layer but the last.
    let layers = checkpoint.config().num_layers;
    let expected = if variant.suffix == "sigmoid.noaq" {
        2 + layers - 1
    } else {
        2
    };
    ensure!(
        compared == expected,
        "{fixture} {}: compared {compared} tensors, expected {expected}",
        variant.suffix
    );
    Ok(lines)
}

#[test]
fn every_fixture_reproduces_transformers_in_every_variant() -> anyhow::Result<()> {
    let mut report = Vec::new();
    for fixture in FIXTURES {
        for variant in &VARIANTS {
            report.extend(check(fixture, variant)?);
        }
    }
    eprintln!("{}", report.join("\n"));
    Ok(())
}

#[test]
fn the_embedding_rows_match_the_reference_embeds() -> anyhow::Result<()> {
    for fixture in FIXTURES {
        let checkpoint = Checkpoint::open(fixtures_dir().join(fixture))?;
        let reference = Reference::load(fixture)?;
        let embeds = reference.tensor("embeds")?;
        let rows: Vec<f64> = reference
            .input_ids()
            .iter()
            .flat_map(|&id| checkpoint.embedding().row(id as usize))
            .map(f64::from)
            .collect();
        ensure!(
            rows == embeds.values,
            "{fixture}: embedding rows differ from the reference"
        );
    }
    Ok(())
}

/// The exact-variant tolerance (1e-2) alone would let a forward without activation
/// quantization pass on some fixtures (the stock and `noaq` references differ by 0.7% to 3%):
/// require the stock forward to be 100 times closer to the stock reference than that gap.
#[test]
fn activation_quantization_is_what_the_stock_model_computes() -> anyhow::Result<()> {
    for fixture in FIXTURES {
        let checkpoint = Checkpoint::open(fixtures_dir().join(fixture))?;
        let reference = Reference::load(fixture)?;
        let tokens = reference.input_ids();
        let graph = frontend::build(&checkpoint, &Options::stock(tokens.len()))?;
        let outputs = forward::run(&graph, &ir::verify(&graph)?, &checkpoint, tokens)?;
        for output in [frontend::HIDDEN, frontend::LOGITS] {
            let exact = reference.tensor(&format!("{output}.softmax.exact"))?;
            let noaq = reference.tensor(&format!("{output}.softmax.noaq"))?;
            let computed = outputs.get(output).context("output")?;
            let ours = Deviation::between(computed.data(), &exact.values)?.relative();
            let gap = Deviation::between(&noaq.values, &exact.values)?.relative();
            ensure!(
                ours * 100.0 < gap,
                "{fixture} {output}: error {ours:.2e} vs act-quant gap {gap:.2e}"
            );
        }
    }
    Ok(())
}

#[test]
fn the_observer_sees_every_tensor_node_once_in_order() -> anyhow::Result<()> {
    let checkpoint = Checkpoint::open(fixtures_dir().join("dev-h32"))?;
    let graph = frontend::build(&checkpoint, &Options::encrypted(3))?;
    let info = ir::verify(&graph)?;
    let mut seen = Vec::new();
    let outputs = forward::run_observed(&graph, &info, &checkpoint, &[1, 2, 3], |node, value| {
        seen.push((node.index(), value.rows()));
    })?;
    // Every node but the tokens input (%0) is a tensor.
    let expected: Vec<(usize, usize)> = (1..graph.nodes().len()).map(|index| (index, 3)).collect();
    ensure!(seen == expected, "observed {seen:?}");
    ensure!(outputs.get(frontend::LOGITS).is_some());
    Ok(())
}
