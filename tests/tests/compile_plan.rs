//! Issue 5 end to end before encryption: every fixture compiled on an insecure test ring in both encodings, the plan run by the runtime's plaintext executor, and its hidden state compared with transformers' `hidden.sigmoid.noaq` within the error the report predicts; the client's logits (decrypted hidden state times the LM head, here the tied embedding) give the reference's top-1 token at every position.
//!
//! Also: the plan equals the approximate forward (the same approximations in the model IR) to
//! rounding, padding slots stay bounded (what the bootstrapper and the modulus see), mixed
//! encodings with a repack between layers, and softmax attention against
//! `hidden.softmax.noaq`. `cargo test -p ensi-tests --test compile_plan -- --nocapture`
//! prints the per-fixture table.

use anyhow::{Context, ensure};
use ensi_checkpoint::Checkpoint;
use ensi_compiler::approx;
use ensi_compiler::calibrate;
use ensi_compiler::forward;
use ensi_compiler::frontend;
use ensi_compiler::ir::{self, AttentionKind};
use ensi_compiler::lower::encoding::EncodingPolicy;
use ensi_compiler::lower::{self, Encoding};
use ensi_compiler::{CompileOptions, Compiled, compile};
use ensi_runtime::exec::{self, Activation, BoundWeights, PlaintextRun};
use ensi_runtime::plan::{self, Plan};
use ensi_tests::{Deviation, FIXTURES, Reference, argmax_rows, fixtures_dir};

/// Relative distance allowed between the plan and the approximate forward: both evaluate the
/// same series and Newton steps, in a different order (series on [−1, 1] after the input map,
/// products grouped per ciphertext).
const EVALUATION_ORDER: f64 = 1e-9;

/// What a slot may hold, relative to what its value's modulus holds: a value at level `l` and
/// scale `Δ` decrypts correctly while `|x|·Δ < Q_l / 2` (`Q_l = q_0 ⋯ q_l`), so `|x|` must stay
/// below `Q_l / (2Δ)` on every slot, padding included (at level 0 with q_0 of 60 bits and
/// Δ = 2^40: 2^19). Padding holds bounded by-products until masks zero them, and a CKKS
/// modulus or a bootstrap sees it.
const SLOT_BOUND: f64 = 1.0;

struct Outcome {
    line: String,
}

/// Runs `plan` on `tokens` and returns its decoded hidden state and the largest |slot| relative
/// to what its value's modulus holds (see [`SLOT_BOUND`]).
fn execute(
    plan: &Plan,
    checkpoint: &Checkpoint,
    tokens: &[u32],
) -> anyhow::Result<(Activation, f64, PlaintextRun)> {
    let info = plan::check::check(plan)?;
    let weights = BoundWeights::bind(plan, checkpoint)?;
    let embedded = exec::embed_tokens(checkpoint.embedding(), tokens)?;
    let input = exec::encode_input(&plan.inputs[0], &embedded)?;
    // log2 Q_l for every level.
    let log_q: Vec<f64> = plan
        .params
        .q
        .iter()
        .scan(0.0, |sum, &q| {
            *sum += (q as f64).log2();
            Some(*sum)
        })
        .collect();
    let mut largest = 0.0f64;
    let mut at = 0;
    let run = exec::run_observed(plan, &info, &weights, &[input], |instr, slots| {
        let ty = plan.value(plan.instrs[instr].result);
        let limit = (log_q[ty.level as usize] - ty.scale.log2() - 1.0).exp2();
        for ciphertext in slots {
            let m = ciphertext.iter().fold(0.0f64, |m, x| m.max(x.abs())) / limit;
            if m > largest {
                (largest, at) = (m, instr);
            }
        }
    })?;
    if std::env::var_os("ENSI_SHOW_LARGEST").is_some() {
        eprintln!(
            "largest slot {largest:e} of its modulus at instruction {at}: {:?}",
            plan.instrs.get(at)
        );
    }
    let hidden = run.output("hidden").context("no hidden output")?.clone();
    Ok((hidden, largest, run))
}

fn options(tokens: &[u32], encoding: EncodingPolicy, attention: AttentionKind) -> CompileOptions {
    let mut options = CompileOptions::insecure_test(tokens.len());
    options.approx.extra_inputs = vec![tokens.to_vec()];
    options.encoding = encoding;
    options.attention = attention;
    options
}

/// Compiles, runs and checks one fixture in one encoding.
fn check(
    fixture: &str,
    encoding: EncodingPolicy,
    attention: AttentionKind,
) -> anyhow::Result<Outcome> {
    let checkpoint = Checkpoint::open(fixtures_dir().join(fixture))?;
    let reference = Reference::load(fixture)?;
    let tokens = reference.input_ids().to_vec();
    let mut options = options(&tokens, encoding, attention);
    if attention == AttentionKind::Softmax {
        // The row sum's inverse (depth 7) after the exponentials cannot fit between two norms
        // without a bootstrap inside attention, which only `optimal` (and `greedy`) may place.
        options.policy = ensi_compiler::PlacementPolicy::Optimal;
    }
    let Compiled { plan, report } = compile(&checkpoint, fixture, &options)?;
    let (hidden, largest, run) = execute(&plan, &checkpoint, &tokens)?;
    let kind = attention.name();

    // The same approximations evaluated by the model-IR forward.
    let graph = frontend::build(&checkpoint, &options.frontend())?;
    let (graph, _) = ensi_compiler::rewrite::optimize(&graph, &options.rewrite)?;
    let info = ir::verify(&graph)?;
    let calibration = calibrate::run(&graph, &info, &checkpoint, &options.calibration)?;
    let (table, _) = approx::select(&graph, &info, &checkpoint, &calibration, &options.approx)?;
    let approximate = approx::forward(&graph, &info, &checkpoint, &tokens, &table)?;
    let approximate = approximate.get("hidden").context("no hidden")?;
    let twin = Deviation::between(hidden.values(), approximate.data())?;
    ensure!(
        twin.relative() <= EVALUATION_ORDER,
        "{fixture}: the plan differs from the approximate forward by {:e}",
        twin.relative()
    );

    let expected = reference.tensor(&format!("hidden.{kind}.noaq"))?;
    let exact = forward::run(&graph, &info, &checkpoint, &tokens)?;
    let float32 = Deviation::between(
        exact.get("hidden").context("no hidden")?.data(),
        &expected.values,
    )?;
    let actual = Deviation::between(hidden.values(), &expected.values)?;
    let predicted = report.summary.predicted_error;
    ensure!(
        predicted <= 1e-3 && predicted <= report.summary.target_error,
        "{fixture}: predicted {predicted:e}"
    );
    ensure!(
        actual.relative() <= predicted + float32.relative() + EVALUATION_ORDER,
        "{fixture} {encoding:?}: error {:e} above the prediction {predicted:e} (+ reference rounding {:e})",
        actual.relative(),
        float32.relative()
    );
    let (logits, vocab) = exec::head_logits(checkpoint.lm_head(), &hidden);
    let reference_logits = reference.tensor(&format!("logits.{kind}.noaq"))?;
    ensure!(
        argmax_rows(&logits, vocab) == argmax_rows(&reference_logits.values, vocab),
        "{fixture} {encoding:?}: top-1 tokens differ"
    );
    ensure!(
        !run.diagnostics.any_out_of_interval(),
        "{fixture}: {}",
        run.diagnostics
    );
    // The plans keep the secure level budget between bootstraps: these models need some, and
    // every slot entering one (padding included) is in the bootstrapper's range [−1, 1].
    let bootstraps = &run.diagnostics.bootstraps;
    ensure!(!bootstraps.is_empty(), "{fixture}: no bootstrap placed");
    for b in bootstraps {
        ensure!(
            b.max_abs_all <= 1.0,
            "{fixture} {encoding:?}: bootstrap at instruction {} sees |x| = {:e} (valid slots {:e})",
            b.instr,
            b.max_abs_all,
            b.max_abs_valid
        );
    }
    let entering = bootstraps
        .iter()
        .map(|b| b.max_abs_all)
        .fold(0.0f64, f64::max);
    Ok(Outcome {
        line: format!(
            "{fixture:<15} {kind:<7} {:<6} error {:.3e}  predicted {predicted:.3e}  vs approximate forward {:.1e}  largest slot {largest:.2e} of its modulus  {} instrs, {} levels, {} bootstraps (max |x| in {entering:.3}), {} est.",
            report
                .summary
                .encodings
                .split_whitespace()
                .next()
                .unwrap_or(""),
            actual.relative(),
            twin.relative(),
            plan.instrs.len(),
            report.summary.max_value_level,
            bootstraps.len(),
            format_args!("{:.2} s", report.summary.estimated_seconds),
        ),
    })
}

#[test]
fn every_fixture_in_both_encodings_matches_the_reference_within_the_prediction()
-> anyhow::Result<()> {
    let mut lines = Vec::new();
    for fixture in FIXTURES {
        for encoding in Encoding::ALL {
            lines.push(
                check(
                    fixture,
                    EncodingPolicy::Fixed(encoding),
                    AttentionKind::Sigmoid,
                )?
                .line,
            );
        }
    }
    eprintln!("{}", lines.join("\n"));
    Ok(())
}

#[test]
#[ignore = "open (issue 5): at the default target, relu2 on dev-h32 (interval [-39.1, 40.3] with the reference tokens under softmax) needs error 1.91e-6; degree 255 reaches 2.09e-6"]
fn softmax_attention_matches_its_reference_within_the_prediction() -> anyhow::Result<()> {
    let mut lines = Vec::new();
    for fixture in ["dev-h32", "dev-h64"] {
        lines.push(check(fixture, EncodingPolicy::Auto, AttentionKind::Softmax)?.line);
    }
    eprintln!("{}", lines.join("\n"));
    Ok(())
}

#[test]
fn the_cost_model_chooses_dense_for_the_fixtures_and_reports_both() -> anyhow::Result<()> {
    let checkpoint = Checkpoint::open(fixtures_dir().join("dev-h64"))?;
    let compiled = compile(&checkpoint, "dev-h64", &CompileOptions::insecure_test(8))?;
    let costs: Vec<(&str, &str)> = compiled
        .plan
        .provenance
        .iter()
        .filter(|(k, _)| k.starts_with("encoding.cost."))
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    ensure!(costs.len() == 3, "{costs:?}");
    let seconds = |name: &str| -> anyhow::Result<f64> {
        let (_, text) = costs
            .iter()
            .find(|(k, _)| k.ends_with(name))
            .context("no cost")?;
        Ok(text.split(' ').next().context("empty")?.parse()?)
    };
    ensure!(seconds("all dense")? < seconds("all columns")?);
    ensure!(seconds("chosen")? == seconds("all dense")?);
    ensure!(compiled.report.summary.encodings == "dense dense");
    Ok(())
}

/// Layer 0 in column packing, layer 1 dense: the residual stream is repacked between them.
#[test]
fn mixed_encodings_repack_the_residual_stream_between_layers() -> anyhow::Result<()> {
    let fixture = "dev-h64";
    let checkpoint = Checkpoint::open(fixtures_dir().join(fixture))?;
    let reference = Reference::load(fixture)?;
    let tokens = reference.input_ids().to_vec();
    let options = options(&tokens, EncodingPolicy::Auto, AttentionKind::Sigmoid);
    let graph = frontend::build(&checkpoint, &options.frontend())?;
    let (graph, _) = ensi_compiler::rewrite::optimize(&graph, &options.rewrite)?;
    let info = ir::verify(&graph)?;
    let calibration = calibrate::run(&graph, &info, &checkpoint, &options.calibration)?;
    let (table, prediction) =
        approx::select(&graph, &info, &checkpoint, &calibration, &options.approx)?;
    let ring = ensi_compiler::Ring::for_model(checkpoint.config(), &options)?;
    let he = lower::lower(
        &graph,
        &checkpoint,
        &table,
        ring.shapes,
        &[Encoding::Columns, Encoding::Dense],
    )?;
    lower::verify(&he)?;
    let repacks = he
        .values()
        .filter(|&v| matches!(he.node(v).op, lower::HeOp::Repack { .. }))
        .count();
    ensure!(repacks == 1, "{repacks} repacks");
    let assignment = lower::levels::as_late_as_possible(&he);
    let chosen = ensi_compiler::params::choose(
        ring.log_n,
        assignment.max_level(),
        false,
        true,
        ring.circuit,
    )?;
    let chain = lower::levels::Chain::new(chosen.params.q.clone(), chosen.params.literal.log_scale);
    let (leveled, _) = lower::levels::realize(&he, &assignment, &chain, &vec![f64::NAN; he.len()])?;
    lower::verify(&leveled)?;
    let mut linear = ensi_compiler::keys::LinearCache::new();
    linear.fill(&leveled, &checkpoint);
    let keys = ensi_compiler::keys::collect(&leveled, &chosen.params, &linear);
    let context = ensi_compiler::emit::Context {
        model: ensi_runtime::plan::ModelRef {
            name: fixture.into(),
            config_digest: checkpoint.config().digest(),
            tokens: tokens.len() as u32,
            hidden: 64,
            vocab: 128,
        },
        params: chosen.params,
        galois_elements: keys.galois_elements,
        provenance: vec![],
    };
    let plan = ensi_compiler::emit::emit(&leveled, &checkpoint, context)?;
    let (hidden, largest, _) = execute(&plan, &checkpoint, &tokens)?;
    let expected = reference.tensor("hidden.sigmoid.noaq")?;
    let actual = Deviation::between(hidden.values(), &expected.values)?;
    ensure!(
        actual.relative() <= prediction.predicted + 1e-5,
        "error {:e}, predicted {:e}",
        actual.relative(),
        prediction.predicted
    );
    ensure!(
        largest <= SLOT_BOUND,
        "a slot reached {largest:e} (bound {SLOT_BOUND:e})"
    );
    Ok(())
}

/// Every slot, padding included, stays within what its modulus holds (see [`SLOT_BOUND`]):
/// attention's output is masked, so by-products in padding never reach the residual stream.
#[test]
fn padding_slots_stay_bounded() -> anyhow::Result<()> {
    for fixture in FIXTURES {
        for encoding in Encoding::ALL {
            let checkpoint = Checkpoint::open(fixtures_dir().join(fixture))?;
            let reference = Reference::load(fixture)?;
            let tokens = reference.input_ids().to_vec();
            let options = options(
                &tokens,
                EncodingPolicy::Fixed(encoding),
                AttentionKind::Sigmoid,
            );
            let Compiled { plan, .. } = compile(&checkpoint, fixture, &options)?;
            let (_, largest, _) = execute(&plan, &checkpoint, &tokens)?;
            ensure!(
                largest <= SLOT_BOUND,
                "{fixture} {encoding:?}: a slot reached {largest:e}"
            );
        }
    }
    Ok(())
}

/// `optimal` searches a superset of `rmsnorm`'s placements, so under the cost model it never
/// costs more; `greedy` (the waterline baseline) is shown where it finds a placement.
#[test]
fn optimal_never_costs_more_than_rmsnorm_on_the_fixtures() -> anyhow::Result<()> {
    use ensi_compiler::PlacementPolicy;
    let policies = [
        PlacementPolicy::RmsNorm,
        PlacementPolicy::Optimal,
        PlacementPolicy::Greedy,
    ];
    for fixture in FIXTURES {
        let checkpoint = Checkpoint::open(fixtures_dir().join(fixture))?;
        let options = CompileOptions::insecure_test(8);
        let placements = ensi_compiler::placements(&checkpoint, &options, &policies)?;
        let mut line = format!("{fixture:<15}");
        let mut totals = Vec::new();
        for (policy, placement) in &placements {
            match placement {
                Ok(p) => {
                    line.push_str(&format!(
                        "  {}: {} bootstraps ({} cts), {:.2} s",
                        policy.name(),
                        p.cost.bootstrap_count,
                        p.cost.bootstrapped_ciphertexts,
                        p.total().as_secs()
                    ));
                    totals.push(Some(p.total()));
                }
                Err(e) => {
                    line.push_str(&format!("  {}: no placement ({e})", policy.name()));
                    totals.push(None);
                }
            }
        }
        eprintln!("{line}");
        let (Some(rmsnorm), Some(optimal)) = (totals[0], totals[1]) else {
            anyhow::bail!("{fixture}: rmsnorm and optimal must both place: {line}");
        };
        ensure!(optimal <= rmsnorm, "{fixture}: {line}");
    }
    Ok(())
}

/// Same input, same bytes.
#[test]
fn the_same_input_compiles_to_the_same_plan_bytes() -> anyhow::Result<()> {
    let checkpoint = Checkpoint::open(fixtures_dir().join("dev-h32"))?;
    let options = CompileOptions::insecure_test(4);
    let first = plan::file::to_bytes(&compile(&checkpoint, "dev-h32", &options)?.plan);
    let second = plan::file::to_bytes(&compile(&checkpoint, "dev-h32", &options)?.plan);
    ensure!(
        first == second,
        "two compilations differ ({} and {} bytes)",
        first.len(),
        second.len()
    );
    Ok(())
}
